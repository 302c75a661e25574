/**
 * A simulated Mirasys site, kept in PostgreSQL (schema vms_sim) so that every worker process sees the
 * same site and tests can inject faults and count side effects: servers that are down, plugin installs
 * that fail a given number of times, calls held after their effect until released (to crash a worker at
 * a chosen step), and a log of every call with whether it changed anything.
 */
import type { Pool } from 'pg';
import type { VmsControlPlane } from './control-plane';
import { VmsCallFailed } from './control-plane';

const SCHEMA_LOCK_ID = 7_263_914_002;
/** First key of the advisory locks that holds wait on; the second key is the hold's id. */
const HOLD_LOCK_CLASS = 72_639_140;
const TABLES = [
  'recorders',
  'camera_bindings',
  'plugins',
  'down_servers',
  'plugin_install_faults',
  'calls',
  'holds',
];

const SCHEMA = `
  CREATE SCHEMA IF NOT EXISTS vms_sim;
  CREATE TABLE IF NOT EXISTS vms_sim.recorders (
    server_id       text PRIMARY KEY,
    replaces_server text,
    promoted_at     timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS vms_sim.camera_bindings (
    camera_id text PRIMARY KEY,
    server_id text NOT NULL,
    bound_at  timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS vms_sim.plugins (
    server_id    text NOT NULL,
    plugin       text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, plugin)
  );
  CREATE TABLE IF NOT EXISTS vms_sim.down_servers (server_id text PRIMARY KEY);
  CREATE TABLE IF NOT EXISTS vms_sim.plugin_install_faults (
    server_id text NOT NULL,
    plugin    text NOT NULL,
    remaining integer NOT NULL CHECK (remaining >= 0),
    PRIMARY KEY (server_id, plugin)
  );
  CREATE TABLE IF NOT EXISTS vms_sim.calls (
    id         bigserial PRIMARY KEY,
    operation  text NOT NULL,
    request_id text NOT NULL,
    subject    text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('applied', 'already-applied', 'failed')),
    at         timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS vms_sim.holds (
    id         serial PRIMARY KEY,
    operation  text NOT NULL,
    subject    text,
    request_id text,
    reached_at timestamptz
  );
`;

export type VmsOperation = 'promote' | 'rebind' | 'install-plugin';

/** A call held by {@link VmsSimulator.hold}: its effect is applied, its caller waits for `release()`. */
export interface VmsHold {
  /** Whether a matching call has arrived and waits. */
  reached(): Promise<boolean>;
  /** Lets the held call return (and any later call pass: a hold catches one call). */
  release(): Promise<void>;
}

export type CallOutcome = 'applied' | 'already-applied' | 'failed';

export class VmsSimulator implements VmsControlPlane {
  constructor(private readonly db: Pool) {}

  /** Creates the simulator's tables when missing; safe when several processes do it at once. */
  async install(): Promise<void> {
    // Installed already: nothing to create, so a role without CREATE rights (the worker's) may start.
    const present = await this.db.query<{ missing: number }>(
      "SELECT count(*) FILTER (WHERE to_regclass('vms_sim.' || name) IS NULL)::int AS missing FROM unnest($1::text[]) AS name",
      [TABLES],
    );
    if (present.rows[0]?.missing === 0) return;
    // A session lock, then a transaction of its own: a transaction that starts after the lock is granted
    // sees the schema another process just created (a transaction that took the lock itself may not, and
    // its CREATE SCHEMA IF NOT EXISTS then fails on a duplicate key).
    const connection = await this.db.connect();
    // A lost connection fails the running query; unheard, its 'error' event would end the process.
    const ignoreLostConnection = (): void => undefined;
    connection.on('error', ignoreLostConnection);
    try {
      await connection.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK_ID]);
      await connection.query('BEGIN');
      await connection.query(SCHEMA);
      await connection.query('COMMIT');
    } catch (error) {
      await connection.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      await connection.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK_ID]).catch(() => undefined);
      connection.off('error', ignoreLostConnection);
      connection.release();
    }
  }

  async promoteToRecorder(request: {
    requestId: string;
    serverId: string;
    replacesServerId: string;
  }): Promise<void> {
    await this.failIfDown('promote', request.requestId, request.serverId);
    const { rowCount } = await this.db.query(
      `INSERT INTO vms_sim.recorders (server_id, replaces_server) VALUES ($1, $2)
       ON CONFLICT (server_id) DO UPDATE SET replaces_server = excluded.replaces_server
       WHERE vms_sim.recorders.replaces_server IS DISTINCT FROM excluded.replaces_server`,
      [request.serverId, request.replacesServerId],
    );
    await this.record(
      'promote',
      request.requestId,
      request.serverId,
      rowCount === 0 ? 'already-applied' : 'applied',
    );
    await this.waitIfHeld('promote', request.requestId, request.serverId);
  }

  async rebindCameras(request: {
    requestId: string;
    cameraIds: string[];
    toServerId: string;
  }): Promise<void> {
    await this.failIfDown('rebind', request.requestId, request.toServerId);
    const { rowCount } = await this.db.query(
      `INSERT INTO vms_sim.camera_bindings (camera_id, server_id) SELECT unnest($1::text[]), $2
       ON CONFLICT (camera_id) DO UPDATE SET server_id = excluded.server_id, bound_at = now()
       WHERE vms_sim.camera_bindings.server_id <> excluded.server_id`,
      [request.cameraIds, request.toServerId],
    );
    await this.record(
      'rebind',
      request.requestId,
      request.toServerId,
      rowCount === 0 ? 'already-applied' : 'applied',
    );
    await this.waitIfHeld('rebind', request.requestId, request.toServerId);
  }

  async installPlugin(request: { requestId: string; serverId: string; plugin: string }): Promise<void> {
    await this.failIfDown('install-plugin', request.requestId, request.serverId);
    const subject = `${request.serverId}/${request.plugin}`;
    const fault = await this.db.query(
      `UPDATE vms_sim.plugin_install_faults SET remaining = remaining - 1
        WHERE server_id = $1 AND plugin = $2 AND remaining > 0 RETURNING remaining`,
      [request.serverId, request.plugin],
    );
    if (fault.rowCount !== 0) {
      await this.record('install-plugin', request.requestId, subject, 'failed');
      throw new VmsCallFailed(
        `installing ${request.plugin} on ${request.serverId} failed: installer exited with code 1603`,
      );
    }
    const { rowCount } = await this.db.query(
      'INSERT INTO vms_sim.plugins (server_id, plugin) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [request.serverId, request.plugin],
    );
    await this.record(
      'install-plugin',
      request.requestId,
      subject,
      rowCount === 0 ? 'already-applied' : 'applied',
    );
    await this.waitIfHeld('install-plugin', request.requestId, subject);
  }

  async isServerUp(serverId: string): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM vms_sim.down_servers WHERE server_id = $1', [
      serverId,
    ]);
    return rowCount === 0;
  }

  // Fault injection, for tests, the benchmark and demonstrations.

  async setServerDown(serverId: string, down: boolean): Promise<void> {
    await this.db.query(
      down
        ? 'INSERT INTO vms_sim.down_servers (server_id) VALUES ($1) ON CONFLICT DO NOTHING'
        : 'DELETE FROM vms_sim.down_servers WHERE server_id = $1',
      [serverId],
    );
  }

  async failPluginInstalls(serverId: string, plugin: string, times: number): Promise<void> {
    await this.db.query(
      `INSERT INTO vms_sim.plugin_install_faults (server_id, plugin, remaining) VALUES ($1, $2, $3)
       ON CONFLICT (server_id, plugin) DO UPDATE SET remaining = excluded.remaining`,
      [serverId, plugin, times],
    );
  }

  /**
   * Holds the next call of `operation` (on `subject`, or on any subject) once its effect is applied and
   * logged, before it returns: the VMS did the work but the caller has not heard back yet. The hold is an
   * advisory lock kept on a connection of its own until `release()`.
   */
  async hold(operation: VmsOperation, subject?: string): Promise<VmsHold> {
    const connection = await this.db.connect();
    try {
      const { rows } = await connection.query<{ id: number }>(
        'INSERT INTO vms_sim.holds (operation, subject) VALUES ($1, $2) RETURNING id',
        [operation, subject ?? null],
      );
      const id = (rows[0] as { id: number }).id;
      await connection.query('SELECT pg_advisory_lock($1, $2)', [HOLD_LOCK_CLASS, id]);
      let released = false;
      return {
        reached: async () => {
          const reached = await this.db.query(
            'SELECT 1 FROM vms_sim.holds WHERE id = $1 AND reached_at IS NOT NULL',
            [id],
          );
          return reached.rowCount !== 0;
        },
        release: async () => {
          if (released) return;
          released = true;
          // Consumed even if no call came: a later call must not wait on a hold nobody will release.
          await connection.query(
            'UPDATE vms_sim.holds SET reached_at = coalesce(reached_at, now()) WHERE id = $1',
            [id],
          );
          await connection.query('SELECT pg_advisory_unlock($1, $2)', [HOLD_LOCK_CLASS, id]);
          connection.release();
        },
      };
    } catch (error) {
      connection.release();
      throw error;
    }
  }

  async calls(
    operation?: string,
  ): Promise<{ operation: string; requestId: string; subject: string; outcome: CallOutcome }[]> {
    const { rows } = await this.db.query<{
      operation: string;
      requestId: string;
      subject: string;
      outcome: CallOutcome;
    }>(
      `SELECT operation, request_id AS "requestId", subject, outcome FROM vms_sim.calls
        WHERE $1::text IS NULL OR operation = $1 ORDER BY id`,
      [operation ?? null],
    );
    return rows;
  }

  async cameraBindings(): Promise<Map<string, string>> {
    const { rows } = await this.db.query<{ camera_id: string; server_id: string }>(
      'SELECT camera_id, server_id FROM vms_sim.camera_bindings',
    );
    return new Map(rows.map((row) => [row.camera_id, row.server_id]));
  }

  private async waitIfHeld(operation: VmsOperation, requestId: string, subject: string): Promise<void> {
    const { rows } = await this.db.query<{ id: number }>(
      `UPDATE vms_sim.holds SET reached_at = now(), request_id = $3
        WHERE id = (SELECT id FROM vms_sim.holds
                     WHERE operation = $1 AND (subject IS NULL OR subject = $2) AND reached_at IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING id`,
      [operation, subject, requestId],
    );
    const hold = rows[0];
    if (hold === undefined) return;
    // Autocommit: the lock is granted once the test releases it, and let go as the statement ends.
    await this.db.query('SELECT pg_advisory_xact_lock($1, $2)', [HOLD_LOCK_CLASS, hold.id]);
  }

  private async failIfDown(operation: string, requestId: string, serverId: string): Promise<void> {
    if (await this.isServerUp(serverId)) return;
    await this.record(operation, requestId, serverId, 'failed');
    throw new VmsCallFailed(`server ${serverId} does not answer`);
  }

  private async record(
    operation: string,
    requestId: string,
    subject: string,
    outcome: CallOutcome,
  ): Promise<void> {
    await this.db.query(
      'INSERT INTO vms_sim.calls (operation, request_id, subject, outcome) VALUES ($1, $2, $3, $4)',
      [operation, requestId, subject, outcome],
    );
  }
}
