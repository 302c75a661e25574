/**
 * Restore, run again and around ended monitors: a restore whose step ran again after it committed answers
 * what it did the first time (it does not refuse the standby it made); stopping a monitor that has already
 * ended is no failure, and the server is a standby in the VMS and in PostgreSQL. A restored server promoted
 * while the monitor of its broken days lingers gets a monitor of its own, and what its agent said as it broke
 * (all its disks broken) is not held against it once promoted.
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { monitorWorkflowId } from '../domain/names';
import { parseSite } from '../domain/site-file';
import { restoreAsStandby } from '../store/failovers';
import { failoverRows, serverRow } from './support/db';
import { keepHeartbeating } from './support/heartbeat-loop';
import { breakAllDisks, heartbeat } from './support/heartbeats';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf, monitorHandle, monitorReaches, runResult } from './support/wait';
import { useTestWorld } from './support/world';
import type { TestContext } from './support/world';

const world = useTestWorld();

const description = site(
  slave({ id: 'rec-01', timeout: '2s', ipCameras: 2, analogCameras: 1 }),
  standby('fo-01'),
);

/** Rec-01 failed over to fo-01 (its agent stopped), its monitor still answering. */
const failedOver = async (w: TestContext) => {
  await w.seed(description);
  await w.vms.putSite(parseSite(description));
  await w.startLiveness();
  const agent = keepHeartbeating(w.agents, ['rec-01'], 250);
  await w.fleet.startMonitor('rec-01');
  await monitorReaches(w, 'rec-01', (state) => state.lastHeartbeatAtMs !== null);
  await agent.stop('rec-01');
  return failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
};

test('a restore step run again after it committed answers what it did, not ServerNotBroken', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    await failedOver(w);
    const restored = await w.fleet.restore('rec-01');
    expect(restored).toMatchObject({ serverId: 'rec-01', analogCameraIds: ['rec-01-analog-1'] });

    // What a retried activity does once its first run committed.
    const again = await restoreAsStandby(w.db, { serverId: 'rec-01' });

    expect(again).toEqual({
      serverId: 'rec-01',
      driveLetters: restored.driveLetters,
      analogCameraIds: restored.analogCameraIds,
      waitingFailoverIds: [],
    });
    expect(await serverRow(w.db, 'rec-01')).toMatchObject({ role: 'failover', status: 'standby' });
  });
});

test('restoring a server whose monitor has ended: the stop finds no monitor, the restore completes', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    await failedOver(w);
    await w.fleet.stopMonitor('rec-01');

    const restored = await w.fleet.restore('rec-01');

    expect(restored.serverId).toBe('rec-01');
    expect(await serverRow(w.db, 'rec-01')).toMatchObject({ role: 'failover', status: 'standby' });
    expect((await w.vms.state()).servers.find((server) => server.serverId === 'rec-01')?.role).toBe(
      'standby',
    );
  });
});

/** Every run of a server's monitor, oldest first, once the visibility store lists `count` of them. */
const monitorRuns = async (w: TestContext, serverId: string, count: number) =>
  eventually(`${count} runs of the monitor of ${serverId}`, async () => {
    const runs: WorkflowExecutionInfo[] = [];
    const query = `WorkflowId = '${monitorWorkflowId(w.site, serverId)}'`;
    for await (const run of w.client.workflow.list({ query })) runs.push(run);
    return runs.length === count && runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  });

test('a restored server promoted while the monitor of its broken days lingers gets a monitor of its own, started once whoever asks', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    await w.seed(description);
    await w.vms.putSite(parseSite(description));
    await w.startLiveness();
    const agents = keepHeartbeating(w.agents, ['rec-01', 'fo-01'], 250);
    await w.fleet.startMonitor('rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lastHeartbeatAtMs !== null);
    await agents.stop('rec-01');
    const first = await failoverOf(w, 'rec-01');
    await monitorReaches(w, 'fo-01', (state) => state.lastHeartbeatAtMs !== null);
    const lingering = await monitorHandle(w, 'rec-01').describe();

    // Repaired and restored, its old monitor not stopped yet (a restore's stop is a signal, handled later).
    await w.vms.demoteToStandby({ requestId: first.failoverId, serverId: 'rec-01' });
    await restoreAsStandby(w.db, { serverId: 'rec-01' });
    const repaired = keepHeartbeating(w.agents, ['rec-01'], 250);
    expect((await w.fleet.monitorState('rec-01'))?.phase).toBe('failed-over');

    // fo-01 goes silent: rec-01, the only standby, takes its place; two more callers ask for its monitor.
    await agents.stop('fo-01');
    await eventually(
      'rec-01 to be promoted',
      async () => (await serverRow(w.db, 'rec-01'))?.role === 'slave',
    );
    const callers = await Promise.all([
      w.fleet.ensureMonitoring('rec-01'),
      w.fleet.ensureMonitoring('rec-01'),
    ]);
    const second = await failoverOf(w, 'fo-01');
    expect(second.failoverServerId).toBe('rec-01');

    const fresh = await monitorReaches(w, 'rec-01', (state) => state.phase === 'monitoring', {
      timeoutMs: 10_000,
    });
    expect(fresh).toMatchObject({ broken: null, lateHeartbeats: 0 });
    expect(await runResult(w.client, lingering)).toMatchObject({
      outcome: 'stopped',
      reason: 'restored',
    });
    const runs = await monitorRuns(w, 'rec-01', 2);
    expect(runs.map((run) => [run.runId === lingering.runId, run.status.name])).toEqual([
      [true, 'COMPLETED'],
      [false, 'RUNNING'],
    ]);
    expect(callers.filter((caller) => caller.started).length).toBeLessThanOrEqual(1);

    // Protected for real: fo-01 restored as the standby, rec-01 going silent fails over to it.
    const fo01Repaired = keepHeartbeating(w.agents, ['fo-01'], 250);
    await w.fleet.restore('fo-01');
    await repaired.stop('rec-01');
    const third = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
    expect(third.failoverId).not.toBe(first.failoverId);
    expect(third.failoverServerId).toBe('fo-01');
    await fo01Repaired.stop();
  });
});

test('a restored server whose last heartbeat said all its disks broken, promoted before its agent is heard again, stays in service', async () => {
  const w = world.current;
  // A timeout longer than the test: only the disk health of its old lease could fail it over.
  const longTimeout = site(slave({ id: 'rec-01', timeout: '60s' }), standby('fo-01'));
  await w.withWorker(async () => {
    await w.seed(longTimeout);
    await w.vms.putSite(parseSite(longTimeout));
    await w.startLiveness();
    await heartbeat(w.agents, 'fo-01');
    await w.fleet.startMonitor('rec-01');
    await heartbeat(w.agents, 'rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lastHeartbeatAtMs !== null);

    // Its agent reports every material disk broken, then falls silent: it fails over to fo-01 at once.
    await breakAllDisks(w.agents, 'rec-01');
    const first = await failoverOf(w, 'rec-01');
    expect(first.failoverServerId).toBe('fo-01');
    await w.fleet.restore('rec-01');

    // fo-01 breaks in turn: rec-01, repaired but not heard since, takes its place.
    await breakAllDisks(w.agents, 'fo-01');
    const second = await failoverOf(w, 'fo-01');
    expect(second.failoverServerId).toBe('rec-01');

    // The detector's first word to the new monitor is a checkpoint (within a checkpoint period), not its old disks.
    const promoted = await monitorReaches(w, 'rec-01', (state) => state.reportsReceived >= 1);
    expect(promoted).toMatchObject({ phase: 'monitoring', brokenDisks: [], broken: null });
    const deadlineMs = w.liveness.detector.deadlineOf('rec-01');
    expect(deadlineMs).toBeGreaterThan(Date.now() + 50_000);
    expect((await failoverRows(w.db)).map((failover) => failover.slave_id)).toEqual(['rec-01', 'fo-01']);
    expect(await serverRow(w.db, 'rec-01')).toMatchObject({ role: 'slave', status: 'active' });
  });
});
