/**
 * Two worker services at once on the same site and task queue, the Master's and a second host's, each its
 * own process, agents heartbeating to both gateways: failovers spread over both (each took workflow or
 * activity tasks, as the histories name them), and every side effect on the VMS happens once.
 */
import { monitorWorkflowId } from '../../domain/names';
import { TestAgents } from '../support/agents';
import { eventsOf, failoverRows } from '../support/db';
import { terminateRunningWorkflows } from '../support/cleanup';
import { breakAllDisks } from '../support/heartbeats';
import { buildService, killAllServices, startService } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import { eventually } from '../support/wait';
import type { TestContext } from '../support/world';
import { useTestWorld } from '../support/world';

beforeAll(buildService, 180_000);

let agents: TestAgents | undefined;

afterEach(async () => {
  agents?.close();
  agents = undefined;
  await killAllServices();
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const SLAVES = ['rec-01', 'rec-02', 'rec-03', 'rec-04'];

test('two workers on the same task queue: four failovers spread over both, each effect applied exactly once', async () => {
  const w = world.current;
  await w.seed(
    site(
      ...SLAVES.map((id) => slave({ id, timeout: '1h', plugins: ['ANPR+'] })),
      ...SLAVES.map((_, index) => standby(`fo-0${index + 1}`)),
    ),
  );
  const workers = [
    startService({ ...serviceEnv(w), WORKER_IDENTITY: 'master-worker' }),
    startService({ ...serviceEnv(w), WORKER_IDENTITY: 'second-host-worker' }),
  ];
  await Promise.all(workers.map((worker) => worker.ready()));

  for (const id of SLAVES) await w.fleet.startMonitor(id);
  // Each agent knows both gateways, the Master's first.
  agents = new TestAgents(w.db, () => workers.map((worker) => worker.gateway()));
  await Promise.all(SLAVES.map((serverId) => breakAllDisks(agents as TestAgents, serverId)));
  const failovers = await eventually(
    'four completed failovers',
    async () => {
      const rows = await failoverRows(w.db);
      return rows.length === 4 && rows.every((row) => row.status === 'completed') ? rows : undefined;
    },
    { timeoutMs: 90_000 },
  );

  expect(new Set(failovers.map((row) => row.failover_server_id)).size).toBe(4);
  const applied = (await w.vms.calls()).filter((call) => call.outcome === 'applied');
  for (const operation of ['promote', 'rebind', 'install-plugin']) {
    const byFailover = applied.filter((call) => call.operation === operation).map((call) => call.requestId);
    expect(byFailover.sort()).toEqual(failovers.map((row) => row.id).sort());
  }
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
  // Both services were alive throughout, and both did part of the work.
  expect(workers.map((worker) => worker.child.exitCode)).toEqual([null, null]);
  const workflowIds = [
    ...SLAVES.map((id) => monitorWorkflowId(w.site, id)),
    ...failovers.map((row) => row.id),
  ];
  const tasks = await tasksByWorker(w, workflowIds);
  expect(Object.keys(tasks).sort()).toEqual(['master-worker', 'second-host-worker']);
});

/** Workflow tasks completed and activity tasks started, by the identity of the worker that took them. */
const tasksByWorker = async (w: TestContext, workflowIds: string[]): Promise<Record<string, number>> => {
  const counts: Record<string, number> = {};
  for (const workflowId of workflowIds) {
    const history = await w.client.workflow.getHandle(workflowId).fetchHistory();
    for (const event of history.events ?? []) {
      const identity =
        event.workflowTaskCompletedEventAttributes?.identity ??
        event.activityTaskStartedEventAttributes?.identity;
      if (identity) counts[identity] = (counts[identity] ?? 0) + 1;
    }
  }
  return counts;
};
