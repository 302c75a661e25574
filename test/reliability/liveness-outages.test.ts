/**
 * Outages of the orchestrator longer than the failover timeout, while every agent keeps heartbeating: the
 * Temporal server stopped, PostgreSQL unreachable, the worker running the detector killed. None may fail a
 * Slave over; after each, a Slave whose agent stops fails over within its timeout and a second. The worker
 * runs as its own process, the way it runs on the Master; agents heartbeat to it over HTTP.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createFleet } from '../../app/fleet';
import { currentTerm } from '../../store/detector-term';
import { findFailover } from '../../store/failovers';
import { TestAgents } from '../support/agents';
import { terminateRunningWorkflows } from '../support/cleanup';
import { failoverRows } from '../support/db';
import type { HeartbeatLoop } from '../support/heartbeat-loop';
import { keepHeartbeating } from '../support/heartbeat-loop';
import { buildService, killAllServices, startService } from '../support/service-process';
import type { ServiceProcess } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import type { TcpProxy } from '../support/tcp-proxy';
import { startTcpProxy } from '../support/tcp-proxy';
import type { DevServer } from '../support/temporal-dev-server';
import { createDevServer } from '../support/temporal-dev-server';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';

const TIMEOUT_MS = 4_000;
const INTERVAL_MS = 1_000;
const OUTAGE_MS = 3 * TIMEOUT_MS;
const SLAVES = ['rec-01', 'rec-02', 'rec-03', 'rec-04', 'rec-05', 'rec-06'];
const STANDBYS = ['fo-01', 'fo-02'];
/** Agents run on the Slaves and on the standbys alike. */
const AGENTS = [...SLAVES, ...STANDBYS];

let agents: HeartbeatLoop | undefined;
let proxy: TcpProxy | undefined;
let devServer: DevServer | undefined;
let workDir: string | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  await agents?.stop();
  agents = undefined;
  await killAllServices();
  await proxy?.close();
  proxy = undefined;
  await devServer?.stop('SIGKILL');
  devServer = undefined;
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  workDir = undefined;
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

// Declared after the hooks above, so that they run while the test's world still exists.
const world = useTestWorld();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const seedSite = () =>
  world.current.seed(
    site(
      ...SLAVES.map((id) => slave({ id, timeout: `${TIMEOUT_MS}ms` })),
      standby('fo-01'),
      standby('fo-02'),
    ),
  );

/** The gateway a worker service listens on, from its ready file. */
const gatewayOf = (service: ServiceProcess): string =>
  (JSON.parse(readFileSync(service.readyFile, 'utf8')) as { gateway: string }).gateway;

const livenessEnv = (identity: string): Record<string, string> => ({
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  LEASE_WRITE_INTERVAL: '200ms',
  LIVENESS_CHECKPOINT_PERIOD: '5s',
  WORKER_IDENTITY: identity,
});

/**
 * After an outage: nobody failed over, then the agent of rec-01 stops and rec-01 fails over within its
 * timeout and a second of its last heartbeat.
 */
const expectOnlyRealSilencesFailOver = async (client: Client, loop: HeartbeatLoop): Promise<void> => {
  const w = world.current;
  // Two more timeouts of heartbeats after the outage: still nobody.
  await sleep(2 * TIMEOUT_MS);
  expect(await failoverRows(w.db)).toEqual([]);

  await loop.stop('rec-01');
  const lastHeartbeatMs = loop.lastDeliveredAt('rec-01') ?? 0;
  const failover = await eventually(
    'rec-01 to fail over',
    async () => (await failoverRows(w.db)).find((row) => row.slave_id === 'rec-01'),
    { timeoutMs: 30_000 },
  );
  const record = await findFailover(w.db, failover.id);
  expect(record?.reason).toBe('heartbeat-timeout');
  expect((record?.startedAt.getTime() ?? 0) - lastHeartbeatMs).toBeLessThan(TIMEOUT_MS + 1_000);
  expect((await failoverRows(w.db)).map((row) => row.slave_id)).toEqual(['rec-01']);
  // The standby's agent heartbeats too: the promoted server is covered from its first second.
  const fleet = createFleet({ config: w.config, client, db: w.db });
  const completed = await eventually('the failover to complete', async () => {
    const current = await findFailover(w.db, failover.id);
    return current?.status === 'completed' ? current : undefined;
  });
  const promoted = await fleet.monitorState(completed.failoverServerId ?? '');
  expect(promoted).toMatchObject({ phase: 'monitoring' });
  await sleep(2 * TIMEOUT_MS);
  expect((await failoverRows(w.db)).map((row) => row.slave_id)).toEqual(['rec-01']);
};

test(`Temporal stopped for ${OUTAGE_MS / 1_000}s while agents heartbeat: no failover; afterwards a silent Slave fails over on time`, async () => {
  const w = world.current;
  await seedSite();
  workDir = mkdtempSync(join(tmpdir(), 'vms-liveness-temporal-'));
  devServer = await createDevServer(join(workDir, 'temporal.sqlite'));
  await devServer.start();
  const client = new Client({ connection: await Connection.connect({ address: devServer.address }) });
  try {
    const service = startService({
      ...serviceEnv(w),
      ...livenessEnv('outage-worker'),
      TEMPORAL_ADDRESS: devServer.address,
    });
    await service.ready();
    const fleet = createFleet({ config: w.config, client, db: w.db });
    for (const id of SLAVES) await fleet.startMonitor(id);
    agents = keepHeartbeating(new TestAgents(w.db, () => [gatewayOf(service)]), AGENTS, INTERVAL_MS);
    await sleep(2 * INTERVAL_MS);
    const failuresBefore = agents.failures();

    await devServer.stop('SIGKILL');
    await sleep(OUTAGE_MS);
    await devServer.start();

    await expectOnlyRealSilencesFailOver(client, agents);
    // The gateway took every heartbeat during the outage: nothing of it needs Temporal.
    expect(agents.failures()).toBe(failuresBefore);
  } finally {
    await client.connection.close();
  }
});

test(`PostgreSQL unreachable for ${OUTAGE_MS / 1_000}s while agents heartbeat: no failover; afterwards a silent Slave fails over on time`, async () => {
  const w = world.current;
  await seedSite();
  const database = new URL(w.databaseUrl);
  proxy = await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) });
  const throughProxy = new URL(w.databaseUrl);
  throughProxy.port = String(proxy.port);
  const service = startService({
    ...serviceEnv(w),
    ...livenessEnv('outage-worker'),
    DATABASE_URL: throughProxy.toString(),
  });
  await service.ready();
  for (const id of SLAVES) await w.fleet.startMonitor(id);
  agents = keepHeartbeating(new TestAgents(w.db, () => [gatewayOf(service)]), AGENTS, INTERVAL_MS);
  await sleep(2 * INTERVAL_MS);
  const termBefore = await currentTerm(w.db);
  const failuresBefore = agents.failures();

  await proxy.cut();
  await sleep(OUTAGE_MS);
  await proxy.restore();

  // The detector lost its connection, and with it its lead: a new term observes from the recovery on.
  const termAfter = await eventually('a new detector term', async () => {
    const term = await currentTerm(w.db);
    return term !== undefined && term.term > (termBefore?.term ?? 0) ? term : undefined;
  });
  expect(termAfter.observingSinceMs).toBeGreaterThan(Date.now() - 2 * TIMEOUT_MS);
  await expectOnlyRealSilencesFailOver(w.client, agents);
  // The gateway took every heartbeat during the outage: credentials are checked from memory.
  expect(agents.failures()).toBe(failuresBefore);
  expect(service.logs().some((line) => line.msg === 'Lease write failed: kept for the next one')).toBe(true);
});

test('the worker running the detector killed: the other worker takes detection over within seconds, no failover', async () => {
  const w = world.current;
  await seedSite();
  const first = startService({ ...serviceEnv(w), ...livenessEnv('worker-a') });
  await first.ready();
  const leader = await eventually('worker-a to lead the detector', async () => {
    const term = await currentTerm(w.db);
    return term?.leader.startsWith('worker-a#') === true ? term : undefined;
  });
  const second = startService({ ...serviceEnv(w), ...livenessEnv('worker-b') });
  await second.ready();
  for (const id of SLAVES) await w.fleet.startMonitor(id);
  // Each agent knows both gateways, the Master's first.
  const gateways = [gatewayOf(first), gatewayOf(second)];
  agents = keepHeartbeating(new TestAgents(w.db, () => gateways), AGENTS, INTERVAL_MS);
  await sleep(2 * INTERVAL_MS);

  const killedAt = Date.now();
  await first.kill();
  const takeover = await eventually('worker-b to lead the detector', async () => {
    const term = await currentTerm(w.db);
    return term?.leader.startsWith('worker-b#') === true ? term : undefined;
  });
  expect(takeover.term).toBe(leader.term + 1);
  // Taken over within 3 s of the kill (PostgreSQL frees the lock as the connection ends; others try each second).
  expect(takeover.observingSinceMs - killedAt).toBeLessThan(3_000);

  await sleep(OUTAGE_MS);
  await expectOnlyRealSilencesFailOver(w.client, agents);
});
