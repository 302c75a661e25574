/**
 * The simulated site of one run, in its own fresh PostgreSQL database: a Master, S protected Slaves with
 * drives C (system), D and E and their IP cameras, F standby failover servers with the same drives.
 * Seeded with set-based SQL: `vms site import` checks each camera on its own, which is right for an operator's
 * file and far too slow for 5,000 Slaves.
 */
import { Pool } from 'pg';
import { issueAgentCredential } from '../app/agent-credentials';
import type { Site, SiteServer } from '../domain/site-file';
import { createPool } from '../infra/database';
import { mapLimited } from '../infra/limit';
import type { Logger } from '../infra/logger';
import { migrate } from '../infra/migrate';
import { VmsSimulator } from '../vms/simulator';

export interface SiteShape {
  slaves: number;
  standbys: number;
  ipCamerasPerSlave: number;
  timeoutMs: number;
}

export const slaveId = (index: number): string => `slave-${String(index + 1).padStart(5, '0')}`;
export const standbyId = (index: number): string => `standby-${String(index + 1).padStart(4, '0')}`;
export const ipCameraIds = (serverId: string, perSlave: number): string[] =>
  Array.from({ length: perSlave }, (_, index) => `${serverId}-ip-${index + 1}`);

const DRIVES = [
  { letter: 'C', material: false },
  { letter: 'D', material: true },
  { letter: 'E', material: true },
];

const withDatabase = (serverUrl: string, database: string): string => {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

const admin = async <T>(serverUrl: string, work: (pool: Pool) => Promise<T>): Promise<T> => {
  const pool = new Pool({ connectionString: withDatabase(serverUrl, 'postgres'), max: 1 });
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
};

/** Creates the run's database (the name is generated, never user input) and applies the migrations. */
export const createRunDatabase = async (
  serverUrl: string,
  database: string,
  logger: Logger,
): Promise<{ url: string; db: Pool }> => {
  await admin(serverUrl, (pool) => pool.query(`CREATE DATABASE ${database}`));
  const url = withDatabase(serverUrl, database);
  const db = createPool(url, logger, { max: 4 });
  await migrate(db, logger);
  await new VmsSimulator(db).install();
  return { url, db };
};

export const dropRunDatabase = (serverUrl: string, database: string): Promise<unknown> =>
  admin(serverUrl, (pool) => pool.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));

export const seedSite = async (db: Pool, shape: SiteShape): Promise<void> => {
  const slaveIds = Array.from({ length: shape.slaves }, (_, index) => slaveId(index));
  const standbyIds = Array.from({ length: shape.standbys }, (_, index) => standbyId(index));
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO servers (id, hostname, role, status) VALUES ('master', 'master.bench.local', 'master', 'active')`,
    );
    await client.query(
      `INSERT INTO servers (id, hostname, role, status, protected, failover_timeout_ms)
       SELECT id, id || '.bench.local', 'slave', 'active', true, $2 FROM unnest($1::text[]) AS id`,
      [slaveIds, shape.timeoutMs],
    );
    await client.query(
      `INSERT INTO servers (id, hostname, role, status)
       SELECT id, id || '.bench.local', 'failover', 'standby' FROM unnest($1::text[]) AS id`,
      [standbyIds],
    );
    await client.query(
      `INSERT INTO drives (server_id, letter, material)
       SELECT id, drive.letter, drive.material FROM servers,
              (VALUES ('C', false), ('D', true), ('E', true)) AS drive (letter, material)`,
    );
    await client.query(
      `INSERT INTO cameras (id, name, kind, server_id)
       SELECT id || '-ip-' || n, 'IP camera ' || n || ' of ' || id, 'ip', id
         FROM unnest($1::text[]) AS id, generate_series(1, $2::int) AS n`,
      [slaveIds, shape.ipCamerasPerSlave],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
};

/**
 * The same site as the VMS knows it, for the simulator the worker drives (vms/simulator-site.ts putSite):
 * every camera bound to and recorded by its Slave from the start, so that the VMS's view of every camera
 * can be compared with PostgreSQL's at the end.
 */
export const simulatedSite = (shape: SiteShape): Site => {
  const server = (id: string, role: SiteServer['role'], cameras: string[]): SiteServer => ({
    id,
    hostname: `${id}.bench.local`,
    role,
    drives: DRIVES,
    protected: role === 'slave',
    timeoutMs: shape.timeoutMs,
    liveness: 'agent',
    cameras: cameras.map((cameraId) => ({ id: cameraId, name: cameraId, kind: 'ip', address: null })),
    plugins: [],
  });
  return {
    servers: [
      server('master', 'master', []),
      ...Array.from({ length: shape.slaves }, (_, index) =>
        server(slaveId(index), 'slave', ipCameraIds(slaveId(index), shape.ipCamerasPerSlave)),
      ),
      ...Array.from({ length: shape.standbys }, (_, index) => server(standbyId(index), 'failover', [])),
    ],
  };
};

/**
 * An agent token for every Slave and standby (a promoted standby heartbeats as a Slave), issued the way
 * `vms agent-token issue` does, a few at a time.
 */
export const issueAgentTokens = async (db: Pool, serverIds: string[]): Promise<Map<string, string>> => {
  const issued = await mapLimited(serverIds, 4, (serverId) => issueAgentCredential(db, serverId));
  return new Map(issued.map((credential) => [credential.serverId, credential.token]));
};
