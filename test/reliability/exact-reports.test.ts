/**
 * What the orchestrator reports is what happened: a step run again after it committed answers what it did
 * the first time, and records its event once; a settings change racing a deadline is applied before the
 * deadline is acted on, or refused.
 *
 * "Run again after it committed" is made deterministic: the step is held inside its PostgreSQL transaction
 * (test/support/transaction-hold.ts), the worker's link to Temporal is cut (a TCP proxy), the step is let
 * commit, and the worker is killed before Temporal can hear of it. A new worker runs the step again.
 */
import { rootFailure } from '../../app/failures';
import { findFailover } from '../../store/failovers';
import { TestAgents } from '../support/agents';
import { terminateRunningWorkflows } from '../support/cleanup';
import { eventsOf, failoverRows, serverRow } from '../support/db';
import { temporalAddress } from '../support/environment';
import { breakAllDisks, broken, healthy, heartbeat } from '../support/heartbeats';
import type { ServiceProcess } from '../support/service-process';
import { buildService, killAllServices, startService } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import type { TcpProxy } from '../support/tcp-proxy';
import { startTcpProxy } from '../support/tcp-proxy';
import { holdEventTransaction, holdReached } from '../support/transaction-hold';
import type { TestContext } from '../support/world';
import { useTestWorld } from '../support/world';
import { eventually, failoverOf, monitorHandle, monitorReaches } from '../support/wait';

let proxy: TcpProxy | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  await killAllServices();
  await proxy?.close();
  proxy = undefined;
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const committedEvents = async (world: TestContext, event: string, serverId: string): Promise<number> => {
  const { rows } = await world.db.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM failover_events WHERE event = $1 AND server_id = $2',
    [event, serverId],
  );
  return rows[0]?.count ?? 0;
};

/**
 * Runs a worker service whose link to Temporal goes through a proxy, has `start` make it append `event` for
 * `serverId`, and lets that step commit only once the link is cut; then kills the worker, which Temporal
 * never heard finish the step, and starts another that runs it again.
 */
const commitThenLoseWorker = async (
  world: TestContext,
  event: string,
  serverId: string,
  start: (service: ServiceProcess) => Promise<void>,
): Promise<void> => {
  const [host = '127.0.0.1', port = '7233'] = temporalAddress().split(':');
  proxy = await startTcpProxy({ host, port: Number(port) });
  const hold = await holdEventTransaction(world.db, event, serverId);
  try {
    const first = startService({ ...serviceEnv(world), TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}` });
    await first.ready();
    await start(first);
    await holdReached(hold, `the step that records "${event}" to wait inside its transaction`);
    await proxy.cut();
    await hold.release();
    await eventually(`"${event}" to commit`, async () => (await committedEvents(world, event, serverId)) > 0);
    await first.kill();
  } finally {
    await hold.release();
  }
  await startService(serviceEnv(world)).ready();
};

/** The attempt at which each take-over activity of a Slave's monitor completed. */
const takeOverAttempts = async (world: TestContext, serverId: string): Promise<number[]> => {
  const events = (await monitorHandle(world, serverId).fetchHistory()).events ?? [];
  const takeOvers = new Set(
    events
      .filter(
        (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'takeOverRecording',
      )
      .map((event) => String(event.eventId)),
  );
  return events.flatMap((event) => {
    const started = event.activityTaskStartedEventAttributes;
    return started && takeOvers.has(String(started.scheduledEventId)) ? [started.attempt ?? 0] : [];
  });
};

test('a take-over run again after its camera move committed reports the cameras it moved', async () => {
  const { db, vms, fleet } = world.current;
  await world.current.seed(
    site(slave({ id: 'rec-01', timeout: '1h', ipCameras: 2, analogCameras: 1 }), standby('fo-01')),
  );

  await commitThenLoseWorker(world.current, 'cameras-rebound', 'rec-01', async (service) => {
    await fleet.startMonitor('rec-01');
    const agents = new TestAgents(db, () => [service.gateway()]);
    try {
      await breakAllDisks(agents, 'rec-01');
    } finally {
      agents.close();
    }
  });
  const result = await failoverOf(world.current, 'rec-01', { timeoutMs: 90_000, stopPromotedMonitor: true });

  // The take-over did run again (its activity's second attempt completed), and answered what the first
  // committed without asking the VMS again.
  expect(await takeOverAttempts(world.current, 'rec-01')).toEqual([2]);
  expect((await vms.calls('promote')).map((call) => call.outcome)).toEqual(['applied']);
  expect(result).toMatchObject({
    failoverServerId: 'fo-01',
    ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
    analogCameraIds: ['rec-01-analog-1'],
  });
  const [failover] = await failoverRows(db);
  expect(await findFailover(db, failover?.id ?? '')).toMatchObject({
    ipCamerasMoved: 2,
    analogCamerasLeft: 1,
  });
});

/** Whether a transaction waits to lock a server's row (held by a transaction the test holds). */
const serverRowAwaited = async (world: TestContext): Promise<boolean> => {
  const { rowCount } = await world.db.query(
    `SELECT 1 FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event <> 'advisory'
        AND query LIKE '%FROM servers%FOR UPDATE%'`,
  );
  return rowCount !== 0;
};

/**
 * Whether the Slave's deadline is being acted on: the detector's take-over waits for the Slave's row, which the
 * held change has locked (the detector takes the recording over before it tells the monitor), or the monitor
 * has been told (the signal is in its history).
 */
const deadlineActedOn = async (world: TestContext, serverId: string): Promise<boolean> => {
  if (await serverRowAwaited(world)) return true;
  const history = await monitorHandle(world, serverId).fetchHistory();
  return (history.events ?? []).some((event) => {
    const signal = event.workflowExecutionSignaledEventAttributes;
    const payload = signal?.input?.payloads?.[0]?.data;
    return (
      signal?.signalName === 'liveness' &&
      payload instanceof Uint8Array &&
      Buffer.from(payload).toString().includes('"kind":"deadline"')
    );
  });
};

test('a longer timeout saved while the deadline of the old one waits to be acted on keeps the Slave in service', async () => {
  const { db, fleet, withWorker } = world.current;
  // No agent: rec-01 is never heard, its deadline counts from the monitor's start.
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01')));
  const hold = await holdEventTransaction(db, 'settings-changed', 'rec-01');

  const state = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.phase === 'monitoring');
    const change = fleet.updateSettings('rec-01', { protected: true, timeoutMs: 3_600_000 });
    try {
      await holdReached(hold, 'the new settings to wait inside their transaction');
      // The old timeout passes while the new one is being saved: the deadline waits for the change.
      await eventually('the deadline of the old timeout to be acted on', () =>
        deadlineActedOn(world.current, 'rec-01'),
      );
    } finally {
      await hold.release();
    }
    await change;
    return monitorReaches(
      world.current,
      'rec-01',
      (candidate) => candidate.reportsReceived > 0 && candidate.phase !== 'failing-over',
    );
  });

  // Applied, then the deadline judged by it: nothing moves.
  expect(state).toMatchObject({
    phase: 'monitoring',
    settings: { timeoutMs: 3_600_000 },
    refutedFailovers: 1,
  });
  expect(await failoverRows(db)).toEqual([]);
  expect(await serverRow(db, 'rec-01')).toMatchObject({ status: 'active', folder: 'Servers' });
});

test('a maintenance window saved while a deadline waits to be acted on is applied first: the deadline is ignored', async () => {
  const { db, fleet, withWorker } = world.current;
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01')));
  const hold = await holdEventTransaction(db, 'maintenance-started', 'rec-01');

  const { window, state } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.phase === 'monitoring');
    const change = fleet.startMaintenance('rec-01', 600_000);
    try {
      await holdReached(hold, 'the maintenance window to wait inside its transaction');
      await eventually('the deadline to be acted on', () => deadlineActedOn(world.current, 'rec-01'));
    } finally {
      await hold.release();
    }
    const applied = await change;
    return {
      window: applied,
      state: await monitorReaches(world.current, 'rec-01', (candidate) => candidate.reportsReceived > 0),
    };
  });

  expect(window.untilMs).toEqual(state.maintenanceUntilMs);
  expect(state).toMatchObject({ phase: 'monitoring', refutedFailovers: 0 });
  expect(await failoverRows(db)).toEqual([]);
  expect(await eventsOf(db, 'rec-01')).toEqual(['maintenance-started']);
});

test('a settings change sent while the deadline is acted on is refused, not reported applied', async () => {
  const { db, fleet, withWorker } = world.current;
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01')));
  const hold = await holdEventTransaction(db, 'moved-to-broken-recorders', 'rec-01');

  const refusal = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    let change: Promise<{ type?: string } | undefined> | undefined;
    try {
      await holdReached(hold, 'the take-over to wait inside its first transaction');
      // Sent while the take-over holds the Slave: refused (at once, or once the take-over commits), never
      // applied once the failover is decided.
      let answered = false;
      change = fleet.updateSettings('rec-01', { protected: true, timeoutMs: 3_600_000 }).then(
        () => undefined,
        (error: unknown) => rootFailure(error) as { type?: string },
      );
      void change.finally(() => (answered = true));
      await eventually(
        'the settings change to be answered or to wait for the Slave',
        async () => answered || (await serverRowAwaited(world.current)),
      );
    } finally {
      await hold.release();
    }
    const failure = await change;
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    return failure;
  });

  expect(refusal?.type).toBe('ServerNotActive');
  const { rows } = await db.query<{ failover_timeout_ms: number }>(
    "SELECT failover_timeout_ms FROM servers WHERE id = 'rec-01'",
  );
  expect(rows[0]?.failover_timeout_ms).toBe(3_000);
  expect(await eventsOf(db, 'rec-01')).not.toContain('settings-changed');
});

test('a disk report recorded again after it committed is one event', async () => {
  const { db, fleet } = world.current;
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  await commitThenLoseWorker(world.current, 'disks-degraded', 'rec-01', async (service) => {
    await fleet.startMonitor('rec-01');
    const agents = new TestAgents(db, () => [service.gateway()]);
    try {
      await heartbeat(agents, 'rec-01', [...healthy('C', 'E'), ...broken('D')]);
    } finally {
      agents.close();
    }
  });
  // The new worker ran the monitor's step again (a local activity is recorded once its task completes).
  await eventually('the monitor to record the disk report', async () => {
    const history = await monitorHandle(world.current, 'rec-01').fetchHistory();
    return (history.events ?? []).filter((event) => event.markerRecordedEventAttributes).length >= 2;
  });

  expect(
    await monitorReaches(world.current, 'rec-01', (state) => state.brokenDisks.includes('D')),
  ).toBeTruthy();
  expect(await eventsOf(db, 'rec-01')).toEqual(['disks-degraded']);
});

/** The heartbeat details of the failover's running plugin reinstall, as the Temporal server holds them. */
const reinstallHeartbeat = async (world: TestContext, failoverId: string): Promise<unknown> => {
  const { raw } = await world.client.workflow.getHandle(failoverId).describe();
  const pending = (raw.pendingActivities ?? []).find(
    (activity) => activity.activityType?.name === 'reinstallPlugin',
  );
  const data = pending?.heartbeatDetails?.payloads?.[0]?.data;
  return data instanceof Uint8Array ? JSON.parse(Buffer.from(data).toString()) : undefined;
};

test('a plugin install reports its progress in the reinstall heartbeat, one install at a time', async () => {
  const { db, vms, fleet, withWorker } = world.current;
  await world.current.seed(
    site(slave({ id: 'rec-01', timeout: '1h', plugins: ['ANPR+'] }), standby('fo-01')),
  );
  await vms.setCallFault('install-plugin', { delayMs: 6_000 });

  const { progress, result } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await breakAllDisks(world.current.agents, 'rec-01');
    const state = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) => candidate.phase === 'failed-over',
    );
    const failoverId = state.broken?.failoverId as string;
    const heard = await eventually(
      'the install progress in the heartbeat',
      async () => {
        const details = (await reinstallHeartbeat(world.current, failoverId)) as
          { progress?: number } | undefined;
        // The server keeps the details of the first heartbeat and then one every few seconds: any progress told.
        return typeof details?.progress === 'number' ? details : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    return {
      progress: heard,
      result: await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true }),
    };
  });

  expect(progress).toMatchObject({ serverId: 'fo-01', plugin: 'ANPR+' });
  expect(result.plugins).toEqual([{ plugin: 'ANPR+', status: 'installed' }]);
  const { rows } = await db.query<{ count: number }>(
    "SELECT count(*)::int AS count FROM vms_sim.operations WHERE server_id = 'fo-01' AND plugin = 'ANPR+'",
  );
  expect(rows[0]?.count).toBe(1);
});
