/**
 * One PostgreSQL connection of the liveness layer's own, outside the pool: it listens for the changes the
 * layer must hear of at once (credentials, the roster, holds) and holds the detector's advisory lock, which
 * PostgreSQL releases when the connection ends. Lost, it is opened again; listeners are told so that they
 * reload what they may have missed.
 */
import { Client } from 'pg';
import type { Logger } from '../infra/logger';

export const LIVENESS_CHANNELS = [
  'vms_agent_credentials',
  'vms_liveness_roster',
  'vms_mass_failure_holds',
  'vms_alerts',
] as const;
export type LivenessChannel = (typeof LIVENESS_CHANNELS)[number];

export interface SessionListener {
  /** A new connection is open and listening (first or again): anything may have changed meanwhile. */
  connected(connection: Client): void | Promise<void>;
  /** The connection was lost: locks held on it are gone. */
  lost(): void;
  notified(channel: LivenessChannel, payload: string): void;
}

const RECONNECT_MS = 1_000;
/** PostgreSQL notices a peer gone without a word (host down, cable cut) within about 11 s. */
const KEEPALIVE_SETTINGS =
  'SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3';

export class PgSession {
  private connection: Client | undefined;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly listeners: SessionListener[] = [];

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {}

  addListener(listener: SessionListener): void {
    this.listeners.push(listener);
  }

  get current(): Client | undefined {
    return this.connection;
  }

  start(): void {
    void this.connect();
  }

  /**
   * Ends the session. Listeners hear it lost, as when PostgreSQL drops it: whatever they started on it and
   * finishes later (a detector's term begun as it was stopped) must not arm its timers on a closed
   * connection, which would keep the process from exiting.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined) return;
    for (const listener of this.listeners) listener.lost();
    await connection.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const connection = new Client({
      connectionString: this.databaseUrl,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5_000,
    });
    connection.on('error', () => this.drop(connection));
    connection.on('end', () => this.drop(connection));
    connection.on('notification', (message) => {
      const channel = message.channel as LivenessChannel;
      for (const listener of this.listeners) listener.notified(channel, message.payload ?? '');
    });
    try {
      await connection.connect();
      await connection.query(KEEPALIVE_SETTINGS);
      for (const channel of LIVENESS_CHANNELS) await connection.query(`LISTEN ${channel}`);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'Liveness database session not open: trying again');
      await connection.end().catch(() => undefined);
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) {
      await connection.end().catch(() => undefined);
      return;
    }
    this.connection = connection;
    for (const listener of this.listeners) {
      // Stopped (or lost) while an earlier listener was told: the later ones are not told of a closed connection.
      if (this.connection !== connection) return;
      try {
        await listener.connected(connection);
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'Liveness session listener failed on connect');
      }
    }
  }

  private drop(connection: Client): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.logger.warn({}, 'Liveness database session lost');
    for (const listener of this.listeners) listener.lost();
    void connection.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(), RECONNECT_MS);
  }
}
