/**
 * The liveness layer of one worker process: the heartbeat gateway, the lease table and its writer, the
 * credential cache, and the detector (active in one worker of the site at a time).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Pool } from 'pg';
import type { MassFailurePolicy } from '../domain/liveness';
import type { Logger } from '../infra/logger';
import { CredentialCache } from './credential-cache';
import { Detector } from './detector';
import type { GatewayOptions } from './gateway';
import { HeartbeatGateway } from './gateway';
import { LeaseTable } from './lease-table';
import { LeaseWriter } from './lease-writer';
import { PgSession } from './pg-session';
import type { SessionListener } from './pg-session';
import type { Reporter } from './reporter';
import type { VmsControlPlane } from '../vms/control-plane';
import type { FailoverTuning } from '../domain/contracts';
import type { TakeOversHere } from '../failover/take-over';
import { createTakeOver } from '../failover/take-over';

export interface LivenessOptions {
  gateway: GatewayOptions;
  leaseWriteIntervalMs: number;
  checkpointPeriodMs: number;
  massFailure: MassFailurePolicy;
  /** How often the VMS's server status is polled while a server is watched through it. */
  vmsPollIntervalMs: number;
}

export interface LivenessDeps {
  /** The site whose Slaves are watched: the detector opens their failovers under the ids their monitors use. */
  site: string;
  db: Pool;
  databaseUrl: string;
  reporter: Reporter;
  /**
   * The VMS: servers without an agent are heard through its server status, and the detector's take-overs
   * promote, fence and rebind through it.
   */
  vms: VmsControlPlane;
  /** The failover settings the take-over's steps follow. */
  failover: Pick<FailoverTuning, 'serverUpTimeoutMs' | 'standbyBudgetMs'>;
  /** Shared with the worker of the same process, whose take-over activities await the detector's runs. */
  takeOversHere?: TakeOversHere;
  /** Names this process in the leases it writes and in the detector's term. */
  identity: string;
  logger: Logger;
}

/** Credentials are read again this often besides when PostgreSQL says they changed. */
const CREDENTIALS_RELOAD_MS = 60_000;

export class LivenessService {
  readonly instance: string;
  readonly leases: LeaseTable;
  readonly credentials: CredentialCache;
  readonly gateway: HeartbeatGateway;
  readonly detector: Detector;
  private readonly writer: LeaseWriter;
  private readonly session: PgSession;
  private credentialsTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(deps: LivenessDeps, options: LivenessOptions) {
    const logger = deps.logger.child({ component: 'liveness' });
    // Two workers on one host still write as two gateways.
    this.instance = `${deps.identity}#${randomBytes(3).toString('hex')}`;
    this.leases = new LeaseTable(this.instance);
    this.credentials = new CredentialCache(deps.db);
    this.gateway = new HeartbeatGateway(options.gateway, this.credentials, this.leases, logger);
    this.writer = new LeaseWriter(deps.db, this.leases, options.leaseWriteIntervalMs, logger);
    this.session = new PgSession(deps.databaseUrl, logger);
    const reloadCredentials = () =>
      this.credentials.reload().catch((error: unknown) => {
        logger.warn({ err: (error as Error).message }, 'Agent credentials not reloaded: kept as they were');
      });
    this.session.addListener({
      connected: reloadCredentials,
      lost: () => undefined,
      notified: (channel) => {
        if (channel === 'vms_agent_credentials') void reloadCredentials();
      },
    });
    this.detector = new Detector(
      deps.db,
      this.session,
      this.leases,
      deps.reporter,
      {
        instance: this.instance,
        site: deps.site,
        checkpointPeriodMs: options.checkpointPeriodMs,
        massFailure: options.massFailure,
        leaseWriteIntervalMs: options.leaseWriteIntervalMs,
        writeLeasesNow: () => this.writer.writeNow(),
        takeOver: createTakeOver({
          db: deps.db,
          vms: deps.vms,
          tuning: deps.failover,
          log: {
            info: (message, fields) => logger.info(fields, message),
            warn: (message, fields) => logger.warn(fields, message),
          },
        }),
        ...(deps.takeOversHere !== undefined && { takeOversHere: deps.takeOversHere }),
        vms: { controlPlane: deps.vms, pollIntervalMs: options.vmsPollIntervalMs },
      },
      logger,
    );
    this.credentialsTimer = setInterval(() => void reloadCredentials(), CREDENTIALS_RELOAD_MS);
  }

  /** Hears what PostgreSQL notifies on the layer's channels (and each reconnection), as the layer does. */
  listen(listener: SessionListener): void {
    this.session.addListener(listener);
  }

  /**
   * Starts listening for heartbeats and competing for the detector's lead; returns the gateway's address once
   * the gateway has read the agents' credentials. Until then it can tell no agent apart and refuses every
   * heartbeat (503), so whoever waits for this (the service's readiness) must not count it as serving.
   */
  async start(): Promise<AddressInfo> {
    this.session.start();
    this.writer.start();
    const address = await this.gateway.listen();
    await this.credentials.reload();
    return address;
  }

  /** Stops once, however often it is asked (a signal, then the service's own shutdown). */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    clearInterval(this.credentialsTimer);
    await this.gateway.close();
    await this.detector.stop();
    await this.writer.stop();
    await this.session.stop();
  }
}
