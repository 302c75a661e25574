/**
 * Many Slaves silent at once is more likely the network to the Master than the Slaves: their failovers are
 * held, shown, and decided once by an operator. One Slave dying is never held.
 */
import { decideMassFailureHold } from '../../app/holds';
import { findOpenHold, findHold } from '../../store/holds';
import { listAlerts } from '../../store/alerts';
import { eventsOf, failoverRows } from '../support/db';
import type { HeartbeatLoop } from '../support/heartbeat-loop';
import { keepHeartbeating } from '../support/heartbeat-loop';
import { buildCli, runCli } from '../support/cli';
import { terminateRunningWorkflows } from '../support/cleanup';
import { site, slave, standby } from '../support/site';
import { eventually, monitorReaches } from '../support/wait';
import { useTestWorld } from '../support/world';

const TIMEOUT_MS = 3_000;
const INTERVAL_MS = 500;
const SLAVES = ['rec-01', 'rec-02', 'rec-03', 'rec-04', 'rec-05', 'rec-06'];
const SILENT = SLAVES.slice(1);

/** Every heartbeat loop a test started: each is stopped after it, or its agents would outlive the test. */
let loops: HeartbeatLoop[] = [];
let cli: string;

beforeAll(() => {
  cli = buildCli('mass-failure');
}, 180_000);

afterEach(async () => {
  await Promise.all(loops.map((loop) => loop.stop()));
  loops = [];
  // Failovers still waiting for a standby, and the promoted servers' monitors.
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const heartbeating = (serverIds: string[]): HeartbeatLoop => {
  const loop = keepHeartbeating(world.current.agents, serverIds, INTERVAL_MS);
  loops.push(loop);
  return loop;
};

/** Six Slaves heartbeating (and the standbys), then five of them silent at the same moment. */
const fiveOfSixGoSilent = async () => {
  const w = world.current;
  await w.seed(
    site(
      ...SLAVES.map((id) => slave({ id, timeout: `${TIMEOUT_MS}ms` })),
      standby('fo-01'),
      standby('fo-02'),
    ),
  );
  await w.startLiveness();
  for (const id of SLAVES) await w.fleet.startMonitor(id);
  for (const id of SLAVES) await monitorReaches(w, id, (state) => state.phase === 'monitoring');
  const agents = heartbeating([...SLAVES, 'fo-01', 'fo-02']);
  await sleep(3 * INTERVAL_MS);
  for (const id of SILENT) await agents.stop(id);
  return eventually(
    'the five silent Slaves to be held',
    async () => {
      const hold = await findOpenHold(w.db);
      return hold !== undefined && hold.slaves.length === SILENT.length ? hold : undefined;
    },
    { timeoutMs: 20_000 },
  );
};

test('five of six Slaves silent at once: held and shown, nobody fails over; released, they fail over', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    const hold = await fiveOfSixGoSilent();
    expect(hold.slaves.map((slave) => slave.serverId)).toEqual(expect.arrayContaining(SILENT));
    expect(hold.protectedSlaves).toBe(SLAVES.length);

    // Held for two more timeouts: still nobody failed over, and the monitors say why.
    await sleep(2 * TIMEOUT_MS);
    expect(await failoverRows(w.db)).toEqual([]);
    for (const id of SILENT) {
      await monitorReaches(w, id, (state) => state.heldBy === hold.id && state.phase === 'monitoring');
      expect(await eventsOf(w.db, id)).toContain('failover-held');
    }
    expect((await listAlerts(w.db)).map((alert) => alert.kind)).toEqual(['mass-failure-held']);
    const status = await runCli(cli, w, ['status', '--json']);
    expect(status.code).toBe(0);
    const shown = JSON.parse(status.stdout) as {
      hold: { id: string; slaves: string[] };
      servers: { id: string; monitor: string }[];
    };
    expect(shown.hold).toMatchObject({ id: hold.id });
    expect(
      shown.servers
        .filter((server) => server.monitor === 'failover held')
        .map((server) => server.id)
        .sort(),
    ).toEqual(SILENT);

    const released = await runCli(cli, w, ['hold', 'release', hold.id]);
    expect(released).toMatchObject({ code: 0 });
    // Each opened (the detector opens them as it reports), then past its claim: a standby, or waiting for one.
    const failovers = await eventually(
      'the five held Slaves to fail over',
      async () => {
        const rows = await failoverRows(w.db);
        return rows.length === SILENT.length && rows.every((row) => row.status !== 'started')
          ? rows
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(failovers.map((row) => row.slave_id).sort()).toEqual(SILENT);
    // Two standbys: two take over, three wait in Broken recorders for a standby.
    expect(failovers.filter((row) => row.failover_server_id !== null)).toHaveLength(2);
    expect((await findHold(w.db, hold.id))?.status).toBe('released');
    expect(await listAlerts(w.db)).toEqual([]);
    // The Slave that kept heartbeating was never touched.
    expect((await failoverRows(w.db)).some((row) => row.slave_id === 'rec-01')).toBe(false);
  });
});

test('five of six silent, then dismissed: nobody fails over; once heard again they are watched as before', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    const hold = await fiveOfSixGoSilent();
    await decideMassFailureHold(w.db, hold.id, 'dismissed', 'operator@test');
    // Decided once: a second decision is refused.
    await expect(decideMassFailureHold(w.db, hold.id, 'released', 'operator@test')).rejects.toMatchObject({
      type: 'InvalidInput',
    });
    await sleep(2 * TIMEOUT_MS);
    expect(await failoverRows(w.db)).toEqual([]);

    // The network is back: their agents are heard again. Then one of them dies alone: not held.
    const heardAgain = heartbeating(SILENT);
    await sleep(2 * TIMEOUT_MS);
    expect(await failoverRows(w.db)).toEqual([]);
    await heardAgain.stop('rec-03');
    // Its failover begins, then claims a standby (once the VMS says the standby is up).
    const failover = await eventually(
      'rec-03 alone to fail over to a standby',
      async () =>
        (await failoverRows(w.db)).find(
          (row) => row.slave_id === 'rec-03' && row.failover_server_id !== null,
        ),
      { timeoutMs: 20_000 },
    );
    expect(['fo-01', 'fo-02']).toContain(failover.failover_server_id);
    expect(await findOpenHold(w.db)).toBeUndefined();
    expect((await failoverRows(w.db)).map((row) => row.slave_id)).toEqual(['rec-03']);
    await eventually('the failover to complete', async () =>
      (await failoverRows(w.db)).every((row) => row.status === 'completed') ? true : undefined,
    );
  });
});

test('deciding a hold that does not exist is refused (exit 2)', async () => {
  const w = world.current;
  await w.seed(site(slave({ id: 'rec-01' })));
  const unknown = await runCli(cli, w, ['hold', 'release', 'hold-nope']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/no mass-failure hold "hold-nope"/);
});
