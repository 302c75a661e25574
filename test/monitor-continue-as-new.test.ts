/**
 * A monitor runs forever: continue-as-new bounds its history, carries its state over, and leaves its Slave
 * in the detector's roster as it was, so a deadline set before continue-as-new fails the Slave over on the
 * new run. A monitor whose Slave has failed over keeps bounding its history the same way while a long
 * failover waits for a standby.
 */
import { findFailover } from '../store/failovers';
import { readLeases } from '../store/leases';
import { livenessRecord } from '../store/monitoring';
import { broken, healthy, heartbeat } from './support/heartbeats';
import { parseSite } from '../domain/site-file';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf, monitorHandle, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';

const SIGNALS_PER_RUN = 10;
// Long enough for twenty signals and two continue-as-new on a busy machine before the deadline.
const TIMEOUT_MS = 30_000;
const world = useTestWorld({ MONITOR_SIGNALS_PER_RUN: String(SIGNALS_PER_RUN) });

test('continue-as-new keeps the monitor state, and a deadline set before it fails the Slave over on the new run', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: `${TIMEOUT_MS}ms` }), standby('fo-01')));
  const monitor = () => monitorHandle(world.current, 'rec-01');
  // Signals the monitor ignores (the agents' heartbeat signal from before the gateway) count towards the bound
  // of its run all the same: they make it continue as new without changing what it knows of its Slave.
  const ignoredSignals = async (count: number) => {
    for (let signal = 0; signal < count; signal += 1) {
      await monitor().signal('heartbeat', { serverId: 'rec-01', sentAtMs: Date.now(), disks: [] });
    }
  };

  const { firstRun, lastHeardMs, carried, carriedAtMs, latestRunId, result } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    const firstRunId = (await monitor().describe()).runId;
    // Heartbeats count from the moment the monitor entered its Slave in the roster.
    await eventually(
      'rec-01 to be in the liveness roster',
      async () => (await livenessRecord(db, 'rec-01'))?.monitoredSinceMs ?? undefined,
    );
    // The last heartbeat of the Slave: one disk broken, which its monitor records. Its deadline runs from here.
    await heartbeat(agents, 'rec-01', [...broken('D'), ...healthy('E')]);
    const heard = await monitorReaches(world.current, 'rec-01', (state) => state.brokenDisks.includes('D'));
    const lease = await eventually(
      'the heartbeat of rec-01 in its lease',
      async () => (await readLeases(db, ['rec-01']))[0],
    );

    await ignoredSignals(SIGNALS_PER_RUN);
    await monitorReaches(world.current, 'rec-01', (state) => state.runs >= 2);
    await ignoredSignals(SIGNALS_PER_RUN);
    const afterTwo = await monitorReaches(world.current, 'rec-01', (state) => state.runs >= 3);
    const afterTwoAtMs = Date.now();
    const latest = (await monitor().describe()).runId;
    // No more heartbeats: only the deadline set before continue-as-new can fail the Slave over.
    return {
      firstRun: { runId: firstRunId, state: heard },
      lastHeardMs: lease.lastSeenMs,
      carried: afterTwo,
      carriedAtMs: afterTwoAtMs,
      latestRunId: latest,
      result: await failoverOf(world.current, 'rec-01', {
        stopPromotedMonitor: true,
        timeoutMs: 2 * TIMEOUT_MS,
      }),
    };
  });

  // Continued as new twice before the deadline came.
  expect(carriedAtMs).toBeLessThan(lastHeardMs + TIMEOUT_MS);
  expect(latestRunId).not.toBe(firstRun.runId);
  expect(carried).toMatchObject({
    phase: 'monitoring',
    settings: { protected: true, timeoutMs: TIMEOUT_MS },
    sinceMs: firstRun.state.sinceMs,
    brokenDisks: ['D'],
    lastHeartbeatAtMs: firstRun.state.lastHeartbeatAtMs,
    ignoredSignals: 2 * SIGNALS_PER_RUN,
  });
  expect(carried.runs).toBeGreaterThanOrEqual(3);
  expect(carried.reportsReceived).toBeGreaterThanOrEqual(firstRun.state.reportsReceived);

  // The deadline is the one set by the last heartbeat, before continue-as-new: the new runs kept the Slave in
  // the roster as it was (entering it again would have restarted its silence).
  const failover = await findFailover(db, result.failoverId);
  expect(failover).toMatchObject({ reason: 'heartbeat-timeout' });
  expect(failover?.deadlineAt.getTime()).toBe(lastHeardMs + TIMEOUT_MS);
  expect(result.failoverServerId).toBe('fo-01');
  // Started by the latest run, not by the run that heard the heartbeat.
  const { parentExecution } = await world.current.client.workflow.getHandle(result.failoverId).describe();
  expect(parentExecution?.runId).toBe(latestRunId);
});

test('a failed-over monitor continues as new while its failover waits for a standby, carrying what it heard', async () => {
  const w = world.current;
  const description = site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01'));
  const monitor = () => monitorHandle(w, 'rec-01');
  const ignoredSignals = async (count: number) => {
    for (let signal = 0; signal < count; signal += 1) {
      await monitor().signal('heartbeat', { serverId: 'rec-01', sentAtMs: Date.now(), disks: [] });
    }
  };
  await w.withWorker(async () => {
    await w.seed(description);
    await w.vms.putSite(parseSite(description));
    // The only matched standby is down: the failover waits in Broken recorders (a long failover).
    await w.vms.setServerState('fo-01', 'down');
    await w.startLiveness();
    await w.fleet.startMonitor('rec-01');
    await heartbeat(w.agents, 'rec-01');
    const failedOver = await monitorReaches(w, 'rec-01', (state) => state.phase === 'failed-over');
    const failoverId = failedOver.broken?.failoverId as string;
    await eventually('the failover to wait for a standby', async () =>
      (await findFailover(w.db, failoverId))?.status === 'waiting-for-standby' ? true : undefined,
    );
    const firstRunId = (await monitor().describe()).runId;

    // Heard late, then signalled enough for two runs' worth.
    await heartbeat(w.agents, 'rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats >= 1);
    await ignoredSignals(SIGNALS_PER_RUN);
    await monitorReaches(w, 'rec-01', (state) => state.runs >= 2);
    await ignoredSignals(SIGNALS_PER_RUN);
    const carried = await monitorReaches(w, 'rec-01', (state) => state.runs >= 3);
    expect(carried).toMatchObject({
      phase: 'failed-over',
      broken: failedOver.broken,
      sinceMs: failedOver.sinceMs,
      lateHeartbeats: 1,
      ignoredSignals: 2 * SIGNALS_PER_RUN,
    });
    expect((await monitor().describe()).runId).not.toBe(firstRunId);
    expect((await findFailover(w.db, failoverId))?.status).toBe('waiting-for-standby');

    // The standby back: the failover completes; the latest run is still the Slave's monitor, and stops.
    await w.vms.setServerState('fo-01', 'up');
    await w.fleet.putStandbyInService('fo-01', 'test');
    const result = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
    expect(result).toMatchObject({ failoverId, failoverServerId: 'fo-01' });
    await w.fleet.stopMonitor('rec-01');
    expect(await monitor().result()).toMatchObject({ outcome: 'stopped', reason: 'operator' });
  });
});
