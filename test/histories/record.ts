/**
 * Records workflow histories for the replay tests: `npm run record-histories`. Run it when a workflow change
 * is deliberate and its old histories no longer matter (no such workflows run anywhere); otherwise keep the
 * old files, add new ones and version the change with workflow patching.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporalAddress, temporalNamespace } from '../support/environment';
import { healthy, heartbeat } from '../support/heartbeats';
import { temporalCli } from '../support/temporal-dev-server';
import { changeSettingsAsMonitorStarts, failoverOf, monitorHandle, monitorReaches } from '../support/wait';
import { site, slave, standby } from '../support/site';
import { useTestWorld } from '../support/world';

const world = useTestWorld({ MONITOR_HEARTBEATS_PER_RUN: '10' });

/** Saves a history in the JSON format of `temporal workflow show --output json`, the one replay reads. */
const save = (name: string, workflowId: string, runId?: string): void => {
  const json = execFileSync(
    temporalCli(),
    [
      'workflow', 'show', '--output', 'json', '--address', temporalAddress(), '--namespace', temporalNamespace(),
      '--workflow-id', workflowId, ...(runId !== undefined ? ['--run-id', runId] : []),
    ],
    { encoding: 'utf8' },
  );
  writeFileSync(join(__dirname, `${name}.json`), json);
};

test('record the life of a Slave: heartbeats, disks, settings, maintenance, failover, late heartbeat, restore', async () => {
  const { fleet, vms, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '2s', plugins: ['ANPR+', 'Activity Map'] }), standby('fo-01')));
  await vms.failPluginInstalls('fo-01', 'ANPR+', 1);
  await vms.failPluginInstalls('fo-01', 'Activity Map', 100);

  await withWorker(async () => {
    const { workflowId } = await fleet.startMonitor('rec-01');
    const firstRunId = (await monitorHandle(world.current, 'rec-01').describe()).runId;
    for (let beat = 0; beat < 12; beat += 1) {
      await heartbeat(fleet, 'rec-01', [{ letter: 'D', healthy: beat < 6 }, ...healthy('E')]);
    }
    await monitorReaches(world.current, 'rec-01', (state) => state.runs === 2);
    save('monitor-continued-as-new', workflowId, firstRunId);
    await fleet.updateSettings('rec-01', { protected: true, timeoutMs: 1_500 });
    await fleet.startMaintenance('rec-01', 1_000);
    const failover = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    await heartbeat(fleet, 'rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.lateHeartbeats === 1);
    const restore = await fleet.restore('rec-01');
    await monitorHandle(world.current, 'rec-01').result();
    save('monitor-failover-and-restore', workflowId);
    save('failover-with-plugin-retries', failover.failoverId);
    save('restore', `vms-${world.current.site}-restore-${restore.serverId}`);
  });
});

test('record a failover that waits for a matched standby', async () => {
  const { fleet, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1s' })));

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    const state = await monitorReaches(world.current, 'rec-01', (candidate) => candidate.broken !== null);
    await seed(site(standby('fo-01')));
    const failoverId = state.broken?.failoverWorkflowId as string;
    await monitorReaches(world.current, 'rec-01', () => true);
    await fleet.notifyStandbyAvailable();
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    save('failover-waiting-for-standby', failoverId);
  });
});

test('record a monitor whose settings change as it starts', async () => {
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '1h' })));

  await changeSettingsAsMonitorStarts(world.current, 'rec-01', { protected: false, timeoutMs: 60_000 }, () =>
    monitorHandle(world.current, 'rec-01').result(),
  );
  save('monitor-settings-changed-as-it-starts', monitorHandle(world.current, 'rec-01').workflowId);
});
