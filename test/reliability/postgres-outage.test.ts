/**
 * PostgreSQL unreachable for a while in the middle of two failovers. The worker service reaches PostgreSQL
 * through a TCP proxy that the test cuts (every connection reset, new ones refused) and restores; the
 * machine's PostgreSQL is never touched. Activities retry, the state stays consistent throughout, the
 * failovers complete once, and the worker's log says what happened.
 */
import { eventsOf, failoverRows, siteInvariantViolations } from '../support/db';
import { terminateRunningWorkflows } from '../support/cleanup';
import { breakAllDisks } from '../support/heartbeats';
import { buildService, killAllServices, startService } from '../support/service-process';
import type { LogLine } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import type { TcpProxy } from '../support/tcp-proxy';
import { startTcpProxy } from '../support/tcp-proxy';
import { holdEventTransaction, holdReached } from '../support/transaction-hold';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';

let proxy: TcpProxy | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  await killAllServices();
  await proxy?.close();
  proxy = undefined;
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const SLAVES = ['rec-01', 'rec-02'];

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

test('PostgreSQL cut off during two failovers: activities retry, state stays consistent, both complete once', async () => {
  const w = world.current;
  await w.seed(
    site(
      ...SLAVES.map((id) => slave({ id, timeout: '1h', plugins: ['ANPR+'] })),
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
    for (const id of SLAVES) await w.fleet.startMonitor(id);
    for (const serverId of SLAVES) {
      await breakAllDisks(w.fleet, serverId);
    }
    for (const hold of holds) await holdReached(hold, 'both failovers to be rebinding cameras');
    await proxy.cut();
  } finally {
    for (const hold of holds) await hold.release();
  }

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

  await proxy.restore();
  const failovers = await eventually(
    'both failovers to complete once PostgreSQL is back',
    async () => {
      const rows = await failoverRows(w.db);
      return rows.every((row) => row.status === 'completed') ? rows : undefined;
    },
    { timeoutMs: 60_000 },
  );

  expect(failovers).toHaveLength(2);
  const rebinds = await w.vms.calls('rebind');
  for (const failover of failovers) {
    const outcomes = rebinds.filter((call) => call.requestId === failover.id).map((call) => call.outcome);
    expect(outcomes[0]).toBe('applied');
    expect(outcomes.slice(1).every((outcome) => outcome === 'already-applied')).toBe(true);
  }
  expect((await w.vms.calls()).filter((call) => call.outcome === 'applied')).toHaveLength(6);
  for (const id of SLAVES) {
    expect(await eventsOf(w.db, id)).toEqual([
      'disks-degraded',
      'moved-to-broken-recorders',
      'standby-claimed',
      'standby-promoted',
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
    await breakAllDisks(w.fleet, 'rec-01');
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
