/**
 * The embedded PostgreSQL (PGlite) that `npm start` falls back to on a machine without PostgreSQL, run as
 * `scripts/postgres.sh` runs it (the built dist/infra/embedded-postgres.js; `npm test` builds it first): the
 * real migrations, site import and standby claims run on it through `pg` with the worker's pool, SIGTERM
 * stops it cleanly, and its data survives a restart.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Pool } from 'pg';
import { parseSite } from '../domain/site-file';
import { createPool, ensureDatabase } from '../infra/database';
import { createLogger } from '../infra/logger';
import { migrate } from '../infra/migrate';
import { projectRoot } from '../infra/paths';
import { claimMatchedStandby, findFailover, openFailover } from '../store/failovers';
import { findServer, listServers } from '../store/servers';
import { importSite } from '../store/site-import';
import { VmsSimulator } from '../vms/simulator';
import { master, site, slave, standby, systemDrive } from './support/site';

const SERVER_SCRIPT = join(projectRoot(), 'dist', 'infra', 'embedded-postgres.js');
/** The folders of the modules the server script runs (infra/ and the domain/ modules config reads). */
const SERVER_SOURCE_DIRS = ['infra', 'domain'];
const IN_USE_WARNING =
  'Embedded PostgreSQL (PGlite) in use: for development only, one backend shared by all connections';

const logger = createLogger({ log: { level: 'silent', format: 'json' } });
const dataDirs: string[] = [];
const running = new Set<ChildProcess>();

/** Sources whose build is missing or older than them: the script would run code that is not there. */
const staleBuilds = (): string[] =>
  SERVER_SOURCE_DIRS.flatMap((dir) =>
    readdirSync(join(projectRoot(), dir))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => join(dir, name))
      .filter((source) => {
        const built = statSync(join(projectRoot(), 'dist', source.replace(/\.ts$/, '.js')), {
          throwIfNoEntry: false,
        });
        return built === undefined || built.mtimeMs < statSync(join(projectRoot(), source)).mtimeMs;
      }),
  );

beforeAll(() => {
  const stale = staleBuilds();
  if (stale.length > 0) {
    throw new Error(
      `${SERVER_SCRIPT} runs a build older than ${stale.join(', ')}: run "npm run build" first`,
    );
  }
});

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

const newDataDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'vms-pglite-'));
  dataDirs.push(dir);
  return dir;
};

interface LogLine {
  level: number;
  msg: string;
  port?: number;
}

interface RunningServer {
  port: number;
  logs: LogLine[];
  /** Sends SIGTERM and resolves with the exit code once the process has ended. */
  stop(): Promise<number | null>;
}

/** Starts the server on a port the system picks; ready once it logs the in-use warning with that port. */
const startServer = (dataDir: string): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER_SCRIPT], {
      env: { ...process.env, EMBEDDED_PG_PORT: '0', EMBEDDED_PG_DATA_DIR: dataDir, LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const exited = once(child, 'exit').then(([code]) => {
      running.delete(child);
      return code as number | null;
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const logs: LogLine[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as LogLine;
      logs.push(entry);
      if (entry.msg === IN_USE_WARNING && entry.port !== undefined) {
        resolve({
          port: entry.port,
          logs,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`the embedded PostgreSQL exited (${code}): ${stderr}`)));
  });

/**
 * Prepares the database as the worker does (ensureDatabase, migrate, simulator schema), runs `work`, then
 * stops the server with SIGTERM and tells how it ended.
 */
const withEmbeddedPostgres = async (
  dataDir: string,
  work: (db: Pool) => Promise<void>,
): Promise<{ exitCode: number | null; logs: LogLine[] }> => {
  const server = await startServer(dataDir);
  const url = `postgres://postgres@127.0.0.1:${server.port}/vms_failover`;
  let exitCode: number | null = null;
  try {
    await ensureDatabase(url, logger);
    const db = createPool(url, logger);
    try {
      await migrate(db, logger);
      await new VmsSimulator(db).install();
      await work(db);
    } finally {
      await db.end();
    }
  } finally {
    exitCode = await server.stop();
  }
  return { exitCode, logs: server.logs };
};

const startFailover = (db: Pool, slaveId: string) =>
  openFailover(
    db,
    { failoverId: `failover-${slaveId}`, slaveId, reason: 'heartbeat-timeout', deadlineMs: Date.now() },
    'monitor',
  );

test('the migrated schema takes a site import and concurrent standby claims pick different servers', async () => {
  await withEmbeddedPostgres(newDataDir(), async (db) => {
    const summary = await importSite(
      db,
      parseSite(
        site(
          slave({ id: 'rec-01', ipCameras: 2, plugins: ['ANPR+'] }),
          slave({ id: 'rec-02' }),
          standby('spare-01'),
          standby('spare-02'),
          standby('spare-other-drives', [systemDrive, 'F']),
        ),
      ),
    );
    expect(summary.serversCreated).toHaveLength(6);
    expect(summary.camerasCreated).toBe(4);

    await Promise.all([startFailover(db, 'rec-01'), startFailover(db, 'rec-02')]);
    const claims = await Promise.all([
      claimMatchedStandby(db, 'failover-rec-01'),
      claimMatchedStandby(db, 'failover-rec-02'),
    ]);

    const claimedIds = claims.map((claim) => (claim.claimed ? claim.serverId : 'none')).sort();
    expect(claimedIds).toEqual(['spare-01', 'spare-02']);
    expect(await findServer(db, 'rec-01')).toMatchObject({ status: 'broken', folder: 'BrokenRecorders' });
    expect(await findServer(db, 'spare-other-drives')).toMatchObject({ replacesServerId: null });
    const { rows: events } = await db.query<{ event: string }>(
      "SELECT event FROM failover_events WHERE failover_id = 'failover-rec-01' ORDER BY id",
    );
    expect(events.map((row) => row.event)).toEqual(['moved-to-broken-recorders', 'standby-claimed']);
  });
});

test('a failed transaction rolls back and the server goes on serving, triggers included', async () => {
  await withEmbeddedPostgres(newDataDir(), async (db) => {
    await importSite(db, parseSite(site(slave({ id: 'rec-01' }))));

    const secondMaster = { ...master, id: 'master-2', hostname: 'master-2.site.local' };
    const withSecondMaster = parseSite({ servers: [slave({ id: 'rec-02' }), secondMaster] });
    await expect(importSite(db, withSecondMaster)).rejects.toMatchObject({ type: 'InvalidSiteFile' });
    await startFailover(db, 'rec-01');
    await expect(db.query("UPDATE failover_events SET event = 'edited'")).rejects.toThrow(
      'failover_events is append-only',
    );

    expect((await listServers(db)).map((server) => server.id).sort()).toEqual(['master', 'rec-01']);
  });
});

test('SIGTERM stops the server cleanly and the data survives a restart', async () => {
  const dataDir = newDataDir();
  const first = await withEmbeddedPostgres(dataDir, async (db) => {
    await importSite(db, parseSite(site(slave({ id: 'rec-01' }), standby('spare-01'))));
    await startFailover(db, 'rec-01');
    await claimMatchedStandby(db, 'failover-rec-01');
  });
  expect(first.exitCode).toBe(0);
  expect(first.logs.map((line) => line.msg)).toEqual(
    expect.arrayContaining(['Embedded PostgreSQL stopping', 'Embedded PostgreSQL stopped']),
  );

  const second = await withEmbeddedPostgres(dataDir, async (db) => {
    expect(await migrate(db, logger)).toBe(0);
    expect(await findFailover(db, 'failover-rec-01')).toMatchObject({
      status: 'standby-claimed',
      failoverServerId: 'spare-01',
    });
    expect(await findServer(db, 'spare-01')).toMatchObject({
      folder: 'FailoverServers',
      replacesServerId: 'rec-01',
    });
  });
  expect(second.exitCode).toBe(0);
});
