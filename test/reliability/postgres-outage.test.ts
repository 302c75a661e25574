/**
 * PostgreSQL unreachable for a while in the middle of two failovers. The worker service reaches PostgreSQL
 * through a TCP proxy that the test cuts (every connection reset, new ones refused) and restores; the
 * machine's PostgreSQL is never touched. Activities retry, the state stays consistent throughout, the
 * failovers complete once, and the worker's log says what happened. A Slave whose agent heartbeats to the
 * worker's gateway all along is not failed over, though the outage lasts longer than its timeout (the
 * gateway keeps taking heartbeats; the detector's new term gives every Slave a full timeout).
 */
import { TestAgents } from '../support/agents';
import { eventsOf, failoverRows, serverRow, siteInvariantViolations } from '../support/db';
import { terminateRunningWorkflows } from '../support/cleanup';
import type { HeartbeatLoop } from '../support/heartbeat-loop';
import { keepHeartbeating } from '../support/heartbeat-loop';
import { breakAllDisks } from '../support/heartbeats';
import { buildService, killAllServices, startService } from '../support/service-process';
import type { LogLine } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import type { TcpProxy } from '../support/tcp-proxy';
import { startTcpProxy } from '../support/tcp-proxy';
import { holdEventTransaction, holdReached } from '../support/transaction-hold';
import { eventually, monitorReaches } from '../support/wait';
import { useTestWorld } from '../support/world';

let proxy: TcpProxy | undefined;
let agents: TestAgents | undefined;
let heartbeats: HeartbeatLoop | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  await heartbeats?.stop();
  heartbeats = undefined;
  agents?.close();
  agents = undefined;
  await killAllServices();
  await proxy?.close();
  proxy = undefined;
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const SLAVES = ['rec-01', 'rec-02'];
/** A Slave whose agent heartbeats throughout, with a timeout far shorter than the outage. */
const HEALTHY = 'rec-03';
const HEALTHY_TIMEOUT_MS = 3_000;

/**
 * Failed attempts at a failover step: the step as its own activity of the failover workflow, or the monitor's
 * take-over that runs it (a take-over retried after an outage starts again from its first, idempotent step).
 */
const failedAttempts = (logs: LogLine[], step: string): number[] =>
  logs
    .filter(
      (line) =>
        line.msg === 'Activity failed' &&
        (line.activityType === step || line.activityType === 'takeOverRecording'),
    )
    .map((line) => line.attempt as number);

const FAILOVER_STEPS = ['beginFailover', 'claimMatchedStandby', 'promoteStandby', 'rebindIpCameras'];

/** What the worker logs of a failed step: as its own activity, or as the step of a take-over that failed. */
const stepFailures = (logs: LogLine[], step: string): { failoverId: unknown; error: unknown }[] =>
  logs.flatMap((line) => {
    if (line.msg === 'Activity failed' && line.activityType === step)
      return [{ failoverId: line.workflowId, error: line.error }];
    if (line.msg === 'Take-over step failed' && line.step === step)
      return [{ failoverId: line.failoverId, error: line.error }];
    return [];
  });

test("PostgreSQL cut off during two failovers, for longer than a Slave's timeout: activities retry, state stays consistent, both complete once, the Slave that kept heartbeating stays in service", async () => {
  const w = world.current;
  await w.seed(
    site(
      ...SLAVES.map((id) => slave({ id, timeout: '1h', plugins: ['ANPR+'] })),
      slave({ id: HEALTHY, timeout: `${HEALTHY_TIMEOUT_MS}ms` }),
      standby('fo-01'),
      standby('fo-02'),
    ),
  );
  const database = new URL(w.databaseUrl);
  proxy = await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) });
  const throughProxy = new URL(w.databaseUrl);
  throughProxy.port = String(proxy.port);
  // Both failovers stop once the VMS has rebound their cameras, before PostgreSQL records it.
  const holds = [await w.vms.hold('rebind', 'fo-01'), await w.vms.hold('rebind', 'fo-02')];
  const worker = startService({ ...serviceEnv(w), DATABASE_URL: throughProxy.toString() });

  try {
    await worker.ready();
    for (const id of [...SLAVES, HEALTHY]) await w.fleet.startMonitor(id);
    agents = new TestAgents(w.db, () => [worker.gateway()]);
    heartbeats = keepHeartbeating(agents, [HEALTHY], 500);
    for (const serverId of SLAVES) {
      await breakAllDisks(agents, serverId);
    }
    for (const hold of holds) await holdReached(hold, 'both failovers to be rebinding cameras');
    await proxy.cut();
  } finally {
    for (const hold of holds) await hold.release();
  }
  const cutAtMs = Date.now();
  const heartbeatFailuresAtCut = heartbeats.failures();

  const logsDuringOutage = await eventually(
    'the worker to retry both camera rebinds several times',
    () => {
      const logs = worker.logs();
      const attempts = failedAttempts(logs, 'rebindIpCameras');
      return Promise.resolve(attempts.filter((attempt) => attempt >= 4).length >= 2 ? logs : undefined);
    },
    { timeoutMs: 60_000 },
  );
  const duringOutage = await failoverRows(w.db);
  expect(duringOutage.map((row) => row.status)).toEqual(['promoted', 'promoted']);
  expect(await siteInvariantViolations(w.db)).toEqual([]);
  expect(worker.child.exitCode).toBeNull();

  // Longer than the healthy Slave's timeout, twice over.
  await eventually('the outage to outlast two timeouts', () =>
    Promise.resolve(Date.now() > cutAtMs + 2 * HEALTHY_TIMEOUT_MS),
  );
  expect(heartbeats.delivered(HEALTHY)).toBeGreaterThan(0);
  await proxy.restore();
  const outageMs = Date.now() - cutAtMs;
  const failovers = await eventually(
    'both failovers to complete once PostgreSQL is back',
    async () => {
      const rows = await failoverRows(w.db);
      return rows.every((row) => row.status === 'completed') ? rows : undefined;
    },
    { timeoutMs: 60_000 },
  );

  expect(failovers).toHaveLength(2);
  expect(outageMs).toBeGreaterThan(2 * HEALTHY_TIMEOUT_MS);
  // The gateway took every heartbeat of the healthy Slave while PostgreSQL was away (credentials in memory).
  expect(heartbeats.failures()).toBe(heartbeatFailuresAtCut);
  // Two more of its timeouts after the recovery: still in service.
  const recoveredAtMs = Date.now();
  await eventually('two timeouts after the recovery', () =>
    Promise.resolve(Date.now() > recoveredAtMs + 2 * HEALTHY_TIMEOUT_MS),
  );
  expect((await failoverRows(w.db)).map((row) => row.slave_id).sort()).toEqual(SLAVES);
  expect(await monitorReaches(w, HEALTHY, (state) => state.phase === 'monitoring')).toMatchObject({
    broken: null,
    refutedFailovers: 0,
  });
  expect(await serverRow(w.db, HEALTHY)).toMatchObject({ status: 'active', folder: 'Servers' });
  const rebinds = await w.vms.calls('rebind');
  for (const failover of failovers) {
    const outcomes = rebinds.filter((call) => call.requestId === failover.id).map((call) => call.outcome);
    expect(outcomes[0]).toBe('applied');
    expect(outcomes.slice(1).every((outcome) => outcome === 'already-applied')).toBe(true);
  }
  // Per failover: promote, fence the broken Slave, rebind, install its plugin; each applied once.
  expect((await w.vms.calls()).filter((call) => call.outcome === 'applied')).toHaveLength(8);
  for (const id of SLAVES) {
    expect(await eventsOf(w.db, id)).toEqual([
      'disks-degraded',
      'moved-to-broken-recorders',
      'standby-claimed',
      'standby-promoted',
      'slave-fenced',
      'cameras-rebound',
      'plugin-reinstalled',
      'failover-completed',
    ]);
  }
  // What an operator reads: which step failed, for which failover, how often, and why.
  const rebindFailures = stepFailures(logsDuringOutage, 'rebindIpCameras');
  expect(new Set(rebindFailures.map((failure) => failure.failoverId))).toEqual(
    new Set(failovers.map((row) => row.id)),
  );
  const failures = FAILOVER_STEPS.flatMap((step) => stepFailures(logsDuringOutage, step));
  const causes = new Set(failures.map((failure) => (failure.error as { code?: string } | undefined)?.code));
  expect(causes).toContain('ECONNREFUSED');
  expect(worker.child.exitCode).toBeNull();
});

/*
 * A connection lost while a transaction is open: withTransaction (infra/database.ts) listens for the lost
 * connection, so the query fails, the activity is retried and the worker process lives on.
 */
test('PostgreSQL cut off while a failover transaction is open: the worker survives and the failover completes', async () => {
  const w = world.current;
  await w.seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));
  const database = new URL(w.databaseUrl);
  proxy = await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) });
  const throughProxy = new URL(w.databaseUrl);
  throughProxy.port = String(proxy.port);
  const hold = await holdEventTransaction(w.db, 'standby-claimed', 'rec-01');
  const worker = startService({ ...serviceEnv(w), DATABASE_URL: throughProxy.toString() });

  try {
    await worker.ready();
    await w.fleet.startMonitor('rec-01');
    agents = new TestAgents(w.db, () => [worker.gateway()]);
    await breakAllDisks(agents, 'rec-01');
    await holdReached(hold, 'the claim transaction to be open');
    await proxy.cut();
  } finally {
    await hold.release();
  }
  await eventually('the worker to retry the claim', () => {
    if (worker.child.exitCode !== null) throw new Error(`the worker died:\n${worker.output().slice(-600)}`);
    const attempts = failedAttempts(worker.logs(), 'claimMatchedStandby');
    return Promise.resolve(attempts.some((attempt) => attempt >= 3) ? true : undefined);
  });
  await proxy.restore();

  const failover = await eventually('the failover to complete', async () => {
    if (worker.child.exitCode !== null) throw new Error(`the worker died:\n${worker.output().slice(-600)}`);
    const rows = await failoverRows(w.db);
    return rows[0]?.status === 'completed' ? rows[0] : undefined;
  });
  expect(failover).toMatchObject({ slave_id: 'rec-01', failover_server_id: 'fo-01' });
});
