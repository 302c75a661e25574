/**
 * A simulated Mirasys site, kept in PostgreSQL (schema vms_sim) so that every worker process sees the
 * same site and tests can inject faults and count side effects: servers that are down, plugin installs
 * that fail a given number of times, and a log of every call with whether it changed anything.
 */
import type { Pool } from 'pg';
import { withTransaction } from '../infra/database';
import type { VmsControlPlane } from './control-plane';
import { VmsCallFailed } from './control-plane';

const SCHEMA_LOCK_ID = 7_263_914_002;

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
`;

export type CallOutcome = 'applied' | 'already-applied' | 'failed';

export class VmsSimulator implements VmsControlPlane {
  constructor(private readonly db: Pool) {}

  /** Creates the simulator's tables when missing; safe when several processes do it at once. */
  async install(): Promise<void> {
    await withTransaction(this.db, async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_ID]);
      await tx.query(SCHEMA);
    });
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
