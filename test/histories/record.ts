/**
 * Records workflow histories for the replay tests: `npm run record-histories`. Run it when a workflow change
 * is deliberate and its old histories no longer matter (no such workflows run anywhere); otherwise keep the
 * old files, add new ones and version the change with workflow patching.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failoverStateQuery } from '../../workflows/definitions';
import { temporalAddress, temporalNamespace } from '../support/environment';
import { failoverRows, pluginReinstalls } from '../support/db';
import { keepHeartbeating } from '../support/heartbeat-loop';
import { healthy, heartbeat } from '../support/heartbeats';
import { temporalCli } from '../support/temporal-dev-server';
import {
  changeSettingsAsMonitorStarts,
  eventually,
  failoverOf,
  failoverResult,
  monitorHandle,
  monitorReaches,
} from '../support/wait';
import { parseSite } from '../../domain/site-file';
import { site, slave, standby } from '../support/site';
import { useTestWorld } from '../support/world';

const world = useTestWorld({ MONITOR_SIGNALS_PER_RUN: '10' });

interface HistoryEvent {
  eventType: string;
  workflowExecutionSignaledEventAttributes?: { signalName?: string };
  markerRecordedEventAttributes?: { markerName?: string; details?: Record<string, { payloads: { data: string }[] }> };
}

/** The patches a history records (their markers' payloads, base64 JSON). */
const patchIds = (events: HistoryEvent[]): string[] =>
  events.flatMap(({ markerRecordedEventAttributes: marker }) =>
    Object.values(marker?.markerName === 'core_patch' ? (marker.details ?? {}) : {}).flatMap(({ payloads }) =>
      payloads.map((payload) => (JSON.parse(Buffer.from(payload.data, 'base64').toString()) as { id: string }).id),
    ),
  );

/** Saves a history in the JSON format of `temporal workflow show --output json`, the one replay reads. */
const save = (name: string, workflowId: string, runId?: string): HistoryEvent[] => {
  const json = execFileSync(
    temporalCli(),
    [
      'workflow', 'show', '--output', 'json', '--address', temporalAddress(), '--namespace', temporalNamespace(),
      '--workflow-id', workflowId, ...(runId !== undefined ? ['--run-id', runId] : []),
    ],
    { encoding: 'utf8' },
  );
  writeFileSync(join(__dirname, `${name}.json`), json);
  return (JSON.parse(json) as { events: HistoryEvent[] }).events;
};

const eventTypes = (events: HistoryEvent[]): string[] => events.map((event) => event.eventType);

test('record the life of a Slave: heartbeats, disks, settings, maintenance, failover, late heartbeat, restore', async () => {
  const { fleet, vms, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '2s', plugins: ['ANPR+', 'Activity Map'] }), standby('fo-01')));
  await vms.failPluginInstalls('fo-01', 'ANPR+', 1);
  await vms.failPluginInstalls('fo-01', 'Activity Map', 100);

  await withWorker(async () => {
    // The promoted fo-01 is heard, so that it does not fail over in turn while the plugins are retried.
    const fo01 = keepHeartbeating(agents, ['fo-01'], 250);
    const { workflowId } = await fleet.startMonitor('rec-01');
    const firstRunId = (await monitorHandle(world.current, 'rec-01').describe()).runId;
    // Disk D failing and coming back: each change is a report of the detector, ten of them a run.
    for (let change = 0; change < 10; change += 1) {
      const dBroken = change % 2 === 0;
      await heartbeat(agents, 'rec-01', [{ letter: 'D', healthy: !dBroken }, ...healthy('E')]);
      await monitorReaches(
        world.current,
        'rec-01',
        (state) => state.runs > 1 || state.brokenDisks.includes('D') === dBroken,
      );
    }
    await monitorReaches(world.current, 'rec-01', (state) => state.runs === 2);
    const firstRun = save('monitor-continued-as-new', workflowId, firstRunId);
    expect(eventTypes(firstRun)).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    await fleet.updateSettings('rec-01', { protected: true, timeoutMs: 1_500 });
    await fleet.startMaintenance('rec-01', 1_000);
    const failover = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    await heartbeat(agents, 'rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.lateHeartbeats === 1);
    const restore = await fleet.restore('rec-01');
    await monitorHandle(world.current, 'rec-01').result();
    save('monitor-failover-and-restore', workflowId);
    const failoverEvents = save('failover-with-plugin-retries', failover.failoverId);
    expect(patchIds(failoverEvents)).toEqual(['failover-asks-patches-first']);
    save('restore', `vms-${world.current.site}-restore-${restore.serverId}`);
    await fo01.stop();
  });
});

test('record a failover that waits for a matched standby', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  // No standby when the Slave fails: its failover waits for one.
  await seed(site(slave({ id: 'rec-01', timeout: '1s' })));

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    const waiting = await eventually('the failover to wait for a standby', async () =>
      (await failoverRows(db)).find((row) => row.status === 'waiting-for-standby'),
    );
    await eventually('the failover workflow to wait for a standby', async () => {
      const state = await world.current.client.workflow
        .getHandle(waiting.id)
        .query(failoverStateQuery)
        .catch(() => undefined);
      return state?.step === 'waiting for a matched standby' ? state : undefined;
    });
    await seed(site(standby('fo-01')));
    expect(await fleet.notifyStandbyAvailable()).toEqual([waiting.id]);
    const result = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    expect(result.failoverServerId).toBe('fo-01');
    const events = save('failover-waiting-for-standby', waiting.id);
    // The history holds the wait: the recheck timer, and the signal that a standby was added.
    expect(eventTypes(events)).toContain('EVENT_TYPE_TIMER_STARTED');
    expect(
      events.map((event) => event.workflowExecutionSignaledEventAttributes?.signalName).filter(Boolean),
    ).toEqual(['standbyAvailable']);
  });
});

test('record a Slave failed over when all its material disks broke', async () => {
  const { fleet, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  await withWorker(async () => {
    const { workflowId } = await fleet.startMonitor('rec-01');
    await heartbeat(agents, 'rec-01', [{ letter: 'D', healthy: false }, { letter: 'E', healthy: false }]);
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    await fleet.stopMonitor('rec-01');
    const events = save('monitor-failed-over-on-broken-disks', workflowId);
    expect(eventTypes(events)).toContain('EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED');
  });
});

test('record a monitor whose settings change as it starts', async () => {
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '1h' })));

  await changeSettingsAsMonitorStarts(world.current, 'rec-01', { protected: false, timeoutMs: 60_000 }, () =>
    monitorHandle(world.current, 'rec-01').result(),
  );
  save('monitor-settings-changed-as-it-starts', monitorHandle(world.current, 'rec-01').workflowId);
});

describe('with plugin retries that outlast the recording', () => {
  const chained = useTestWorld({ PLUGIN_RETRY_MAX_ATTEMPTS: '1000' });

  test('record a failover whose pending plugin is handed over to the failover of its promoted server', async () => {
    const { fleet, db, vms, agents, seed, withWorker } = chained.current;
    await seed(site(slave({ id: 'rec-01', timeout: '2s', plugins: ['ANPR+'] }), standby('fo-01'), standby('fo-02')));
    await vms.failPluginInstalls('fo-01', 'ANPR+', 1_000_000);

    await withWorker(async () => {
      const fo01 = keepHeartbeating(agents, ['fo-01'], 250);
      await fleet.startMonitor('rec-01');
      const { broken } = await monitorReaches(chained.current, 'rec-01', (state) => state.phase === 'failed-over');
      const failoverId = broken?.failoverId as string;
      await eventually('ANPR+ retried on fo-01', async () => (await pluginReinstalls(db))[0]?.attempts);
      // fo-01 breaks in turn: its failover takes ANPR+ over, and the first one's next attempt ends.
      await fo01.stop();
      await failoverOf(chained.current, 'fo-01', { stopPromotedMonitor: true });
      const result = await failoverResult(chained.current.client, failoverId);
      expect(result.plugins).toEqual([expect.objectContaining({ plugin: 'ANPR+', status: 'handed-over' })]);
      save('failover-plugin-handed-over', failoverId);
    });
  });
});

test('record a failed-over monitor that continues as new on signals that are no report', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  // No standby: the failover waits, and the monitor with it, hearing no checkpoints.
  await seed(site(slave({ id: 'rec-01', timeout: '1s' })));

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'failed-over');
    await eventually('the failover to wait for a standby', async () =>
      (await failoverRows(db)).find((row) => row.status === 'waiting-for-standby'),
    );
    const monitor = monitorHandle(world.current, 'rec-01');
    const { runId } = await monitor.describe();
    for (let signal = 0; signal < 10; signal += 1) {
      await monitor.signal('heartbeat', { serverId: 'rec-01', sentAtMs: Date.now(), disks: [] });
    }
    await monitorReaches(world.current, 'rec-01', (state) => state.runs >= 2);
    await fleet.stopMonitor('rec-01');
    const events = save('monitor-failed-over-continued-as-new', monitor.workflowId, runId);
    expect(eventTypes(events)).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
  });
});

test('record a failed-over monitor that fences its Slave at a later report, once the VMS reaches it', async () => {
  const w = world.current;
  const description = site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01'));
  await w.seed(description);
  await w.vms.putSite(parseSite(description));

  await w.withWorker(async () => {
    const agent = keepHeartbeating(w.agents, ['rec-01'], 250);
    await w.fleet.startMonitor('rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lastHeartbeatAtMs !== null);
    await w.vms.setServerState('rec-01', 'partitioned');
    await agent.stop('rec-01');
    await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
    await heartbeat(w.agents, 'rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats === 1);
    await w.vms.setServerState('rec-01', 'up');
    await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats === 2, { timeoutMs: 90_000 });
    await eventually('rec-01 to be fenced', async () => (await w.vms.state()).servers.find((s) => s.serverId === 'rec-01' && s.fenced));
    await w.fleet.stopMonitor('rec-01');
    const events = save('monitor-fenced-at-a-later-report', monitorHandle(w, 'rec-01').workflowId);
    // Fenced again at the later report: the run's patches (asked first) cover it.
    expect(patchIds(events)).toEqual([
      'monitor-of-the-liveness-layer',
      'monitor-decides-at-arrival-times',
      'monitor-acts-on-reports-before-stop',
    ]);
  });
}, 180_000);
