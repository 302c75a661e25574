/**
 * Chained failovers: a promoted server that breaks in turn, on the real Temporal server and PostgreSQL. The
 * failover of the promoted server takes over the plugin reinstalls its own promotion left unfinished, and
 * the earlier failover stops installing on the broken server; a failover still reinstalling plugins never
 * keeps its server from failing over again once it was restored and promoted anew.
 */
import type { Pool } from 'pg';
import { terminateRunningWorkflows } from './support/cleanup';
import { camerasOf, eventsOf, failoverRows, pluginsOf } from './support/db';
import { keepHeartbeating } from './support/heartbeat-loop';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf, failoverResult, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';
import type { TestContext } from './support/world';

/** The plugin reinstalls of one failover, by plugin. */
const reinstallsOf = async (db: Pool, failoverId: string) =>
  (
    await db.query<{ plugin: string; server_id: string; status: string; handed_over_to: string | null }>(
      `SELECT plugin, server_id, status, handed_over_to FROM plugin_reinstalls WHERE failover_id = $1
        ORDER BY plugin`,
      [failoverId],
    )
  ).rows;

/** What the events of one kind of a failover recorded. */
const eventDetails = async (db: Pool, failoverId: string, event: string) =>
  (
    await db.query<{ details: unknown }>(
      'SELECT details FROM failover_events WHERE failover_id = $1 AND event = $2 ORDER BY id',
      [failoverId, event],
    )
  ).rows.map((row) => row.details);

/** The failover the monitor of `serverId` started, once it has. */
const failoverIdOf = async (w: TestContext, serverId: string): Promise<string> =>
  (await monitorReaches(w, serverId, (state) => state.phase === 'failed-over')).broken?.failoverId as string;

// A failed spec may leave failovers retrying and monitors running; the world is gone by the time this file's
// afterEach runs, so what it needs is taken at the start of each spec.
const cleanUpAfterEach = (world: { current: TestContext }): void => {
  let leftRunning: (() => Promise<void>) | undefined;
  beforeEach(() => {
    const { client, taskQueue } = world.current;
    leftRunning = () => terminateRunningWorkflows(client, taskQueue);
  });
  afterEach(() => leftRunning?.());
};

/** rec-01 with two plugins, and two standbys: fo-01 takes its place, fo-02 takes fo-01's. */
const CHAIN = site(
  slave({ id: 'rec-01', timeout: '2s', plugins: ['ANPR+', 'Activity Map'] }),
  standby('fo-01'),
  standby('fo-02'),
);

describe('while the earlier failover still retries a plugin', () => {
  // Retries that outlast the spec: without a hand-over the earlier failover would never end.
  const world = useTestWorld({ PLUGIN_RETRY_MAX_ATTEMPTS: '1000' });
  cleanUpAfterEach(world);

  test('the promoted server breaking hands its pending reinstall to its own failover, and the earlier one ends', async () => {
    const w = world.current;
    await w.seed(CHAIN);
    await w.vms.failPluginInstalls('fo-01', 'ANPR+', 1_000_000);

    const { first, second } = await w.withWorker(async () => {
      // fo-01 is alive until rec-01's failover is in its plugin phase, then breaks in turn.
      const fo01 = keepHeartbeating(w.agents, ['fo-01'], 250);
      await w.fleet.startMonitor('rec-01');
      const firstId = await failoverIdOf(w, 'rec-01');
      await eventually('ANPR+ retried on fo-01 and Activity Map installed there', async () => {
        const [anpr, activityMap] = await reinstallsOf(w.db, firstId);
        return anpr?.status === 'pending' && activityMap?.status === 'installed';
      });
      await fo01.stop();
      const secondResult = await failoverOf(w, 'fo-01', { stopPromotedMonitor: true });
      return { first: await failoverResult(w.client, firstId), second: secondResult };
    });

    expect(second).toMatchObject({
      slaveId: 'fo-01',
      failoverServerId: 'fo-02',
      ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
      plugins: [
        { plugin: 'ANPR+', status: 'installed' },
        { plugin: 'Activity Map', status: 'installed' },
      ],
    });
    expect(first).toMatchObject({
      slaveId: 'rec-01',
      failoverServerId: 'fo-01',
      plugins: [
        { plugin: 'ANPR+', status: 'handed-over', toFailoverId: second.failoverId },
        { plugin: 'Activity Map', status: 'installed' },
      ],
    });
    expect(await reinstallsOf(w.db, first.failoverId)).toEqual([
      { plugin: 'ANPR+', server_id: 'fo-01', status: 'handed-over', handed_over_to: second.failoverId },
      { plugin: 'Activity Map', server_id: 'fo-01', status: 'installed', handed_over_to: null },
    ]);
    expect(await pluginsOf(w.db, 'fo-02')).toEqual(['ANPR+', 'Activity Map']);
    expect(await camerasOf(w.db, 'fo-02')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    expect(await eventsOf(w.db, 'rec-01')).toContain('plugin-handed-over');
    expect(await eventsOf(w.db, 'rec-01')).not.toContain('plugin-needs-manual-action');
    expect(await eventDetails(w.db, first.failoverId, 'plugin-handed-over')).toEqual([
      { plugin: 'ANPR+', serverId: 'fo-01', was: 'pending', toFailoverId: second.failoverId },
    ]);
    expect(await eventDetails(w.db, second.failoverId, 'moved-to-broken-recorders')).toEqual([
      {
        reason: 'heartbeat-timeout',
        deadline: expect.any(String),
        // The detector opens it as the deadline passes, or the monitor's take-over when it is first.
        openedBy: expect.stringMatching(/^(detector|monitor)$/) as unknown,
        pluginsTakenOver: ['ANPR+'],
      },
    ]);
    expect(await failoverRows(w.db)).toMatchObject([{ status: 'completed' }, { status: 'completed' }]);
  });

  test('a server restored and promoted again while its own failover still reinstalls plugins fails over again', async () => {
    const w = world.current;
    await w.seed(
      site(
        slave({ id: 'rec-01', timeout: '2s', plugins: ['ANPR+'] }),
        slave({ id: 'rec-02', timeout: '2s' }),
        standby('fo-01'),
        standby('fo-02'),
      ),
    );
    await w.vms.failPluginInstalls('fo-02', 'ANPR+', 1_000_000);

    const { second, restoredFailover, last } = await w.withWorker(async () => {
      const fo02 = keepHeartbeating(w.agents, ['fo-02'], 250);
      await w.fleet.startMonitor('rec-01');
      // fo-01 takes rec-01's place; no agent heartbeats for it, so it fails over in turn, to fo-02.
      await failoverOf(w, 'rec-01');
      const secondId = await failoverIdOf(w, 'fo-01');
      await eventually('ANPR+ retried on fo-02', async () => {
        const [anpr] = await reinstallsOf(w.db, secondId);
        return anpr?.status === 'pending';
      });
      // Repaired while its failover still retries ANPR+ on fo-02, fo-01 is the oldest standby again.
      await w.fleet.restore('fo-01');
      await w.seed(site(standby('fo-03')));
      await w.fleet.startMonitor('rec-02');
      const third = await failoverOf(w, 'rec-02');
      // fo-01, promoted in rec-02's place and never heard, breaks again.
      const lastResult = await failoverOf(w, 'fo-01', { stopPromotedMonitor: true });
      await w.vms.failPluginInstalls('fo-02', 'ANPR+', 0);
      const secondResult = await failoverResult(w.client, secondId);
      await w.fleet.stopMonitor('fo-02');
      await fo02.stop();
      return { second: secondResult, restoredFailover: third, last: lastResult };
    });

    expect(restoredFailover).toMatchObject({ slaveId: 'rec-02', failoverServerId: 'fo-01' });
    expect(last).toMatchObject({
      slaveId: 'fo-01',
      failoverServerId: 'fo-03',
      ipCameraIds: ['rec-02-ip-1', 'rec-02-ip-2'],
    });
    expect(await camerasOf(w.db, 'fo-03')).toEqual(['rec-02-ip-1', 'rec-02-ip-2']);
    expect(second).toMatchObject({
      slaveId: 'fo-01',
      failoverServerId: 'fo-02',
      plugins: [{ plugin: 'ANPR+', status: 'installed' }],
    });
    expect((await failoverRows(w.db)).filter((row) => row.slave_id === 'fo-01')).toMatchObject([
      { id: second.failoverId, status: 'completed' },
      { id: last.failoverId, status: 'completed' },
    ]);
  });
});

describe('after the earlier failover gave a plugin up', () => {
  const world = useTestWorld();
  cleanUpAfterEach(world);

  test('a plugin left for manual action on the broken promoted server is reinstalled by its failover', async () => {
    const w = world.current;
    await w.seed(CHAIN);
    await w.vms.failPluginInstalls('fo-01', 'ANPR+', 100);

    const { first, second } = await w.withWorker(async () => {
      const fo01 = keepHeartbeating(w.agents, ['fo-01'], 250);
      await w.fleet.startMonitor('rec-01');
      const firstResult = await failoverOf(w, 'rec-01');
      await fo01.stop();
      return { first: firstResult, second: await failoverOf(w, 'fo-01', { stopPromotedMonitor: true }) };
    });

    expect(first.plugins).toMatchObject([
      { plugin: 'ANPR+', status: 'needs-manual-action' },
      { plugin: 'Activity Map', status: 'installed' },
    ]);
    expect(second.plugins).toEqual([
      { plugin: 'ANPR+', status: 'installed' },
      { plugin: 'Activity Map', status: 'installed' },
    ]);
    expect(await reinstallsOf(w.db, first.failoverId)).toMatchObject([
      { plugin: 'ANPR+', status: 'handed-over', handed_over_to: second.failoverId },
      { plugin: 'Activity Map', status: 'installed', handed_over_to: null },
    ]);
    expect(await pluginsOf(w.db, 'fo-02')).toEqual(['ANPR+', 'Activity Map']);
    expect(await eventsOf(w.db, 'rec-01')).toEqual(
      expect.arrayContaining(['plugin-needs-manual-action', 'plugin-handed-over']),
    );
  });
});
