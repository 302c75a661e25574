/**
 * Contention and flapping: many Slaves failing at once with fewer standbys than failures, and a Slave
 * whose heartbeats stop and resume (heartbeats go to the test's heartbeat gateway). No standby serves two Slaves, no Slave fails over twice, and cameras
 * never move back on their own.
 */
import { camerasOf, eventsOf, failoverRows, serverRow } from '../support/db';
import { brokenLetters } from '../../domain/liveness';
import { findFailover } from '../../store/failovers';
import { readLeases } from '../../store/leases';
import { breakAllDisks, healthy, heartbeat } from '../support/heartbeats';
import { site, slave, standby } from '../support/site';
import { eventually, failoverOf, monitorReaches } from '../support/wait';
import type { TestContext } from '../support/world';
import { useTestWorld } from '../support/world';

const world = useTestWorld();

const SLAVES = ['rec-01', 'rec-02', 'rec-03', 'rec-04', 'rec-05'];

/** Waits until `ms` have passed: for a timer that must NOT fire, there is no event to wait on. */
const letTimePass = (ms: number) => {
  const until = Date.now() + ms;
  return eventually(`${ms} ms to pass`, () => Promise.resolve(Date.now() >= until ? true : undefined), {
    timeoutMs: ms + 5_000,
  });
};

const byStatus = async (w: TestContext) => {
  const rows = await failoverRows(w.db);
  return {
    completed: rows.filter((row) => row.status === 'completed'),
    waiting: rows.filter((row) => row.status === 'waiting-for-standby'),
    all: rows,
  };
};

test('five Slaves failing at once with two standbys: each standby used once, the rest wait and complete as broken servers are restored', async () => {
  const w = world.current;
  await w.seed(
    site(
      ...SLAVES.map((id) => slave({ id, timeout: '1h', ipCameras: 2 })),
      standby('fo-01'),
      standby('fo-02'),
    ),
  );

  const rounds = await w.withWorker(async () => {
    for (const id of SLAVES) await w.fleet.startMonitor(id);
    await Promise.all(SLAVES.map((id) => breakAllDisks(w.agents, id)));
    const served: string[][] = [];
    // Each round restores the Slaves the previous round served; they take the place of waiting ones.
    let restorable: string[] = [];
    for (const expectedCompleted of [2, 4, 5]) {
      for (const id of restorable) {
        // Repaired: its agent reports healthy disks before the operator restores it as a standby.
        await heartbeat(w.agents, id, healthy('D', 'E'));
        await w.fleet.restore(id);
      }
      const round = await eventually(`${expectedCompleted} failovers completed`, async () => {
        const state = await byStatus(w);
        return state.completed.length === expectedCompleted &&
          state.waiting.length === SLAVES.length - expectedCompleted
          ? state
          : undefined;
      });
      const done = new Set(served.flat());
      restorable = round.completed.map((row) => row.slave_id).filter((id) => !done.has(id));
      served.push(restorable);
      for (const row of round.waiting) {
        expect(await serverRow(w.db, row.slave_id)).toMatchObject({ folder: 'BrokenRecorders' });
        expect(await camerasOf(w.db, row.slave_id)).toHaveLength(2);
      }
    }
    return served;
  });

  expect(rounds.map((round) => round.length)).toEqual([2, 2, 1]);
  const failovers = await failoverRows(w.db);
  expect(failovers.map((row) => row.status)).toEqual(Array(5).fill('completed'));
  // The first two took the standbys; later ones took Slaves restored as standbys, each once.
  const firstRound = failovers.filter((row) => rounds[0]?.includes(row.slave_id));
  expect(firstRound.map((row) => row.failover_server_id).sort()).toEqual(['fo-01', 'fo-02']);
  const servers = failovers.map((row) => row.failover_server_id);
  expect(new Set(servers).size).toBe(5);
  for (const row of failovers) {
    expect(await camerasOf(w.db, row.failover_server_id as string)).toEqual([
      `${row.slave_id}-ip-1`,
      `${row.slave_id}-ip-2`,
    ]);
  }
  const promotions = (await w.vms.calls('promote')).filter((call) => call.outcome === 'applied');
  expect(promotions.map((call) => call.requestId).sort()).toEqual(failovers.map((row) => row.id).sort());
});

test('a flapping Slave: a pause shorter than its timeout keeps it in service; once failed over, resumed heartbeats change nothing', async () => {
  const w = world.current;
  await w.seed(site(slave({ id: 'rec-01', timeout: '6s' }), standby('fo-01'), standby('fo-02')));

  const { failover, lastBeatBeforeMs, lastBeatAfterMs, afterResume } = await w.withWorker(async () => {
    await w.fleet.startMonitor('rec-01');
    // Heartbeats with a 2 s pause: a third of the timeout, whatever the load.
    for (let flap = 0; flap < 3; flap += 1) {
      await heartbeat(w.agents, 'rec-01');
      await letTimePass(2_000);
    }
    expect(await failoverRows(w.db)).toEqual([]);
    const lastBeatBeforeMs = Date.now();
    await heartbeat(w.agents, 'rec-01');
    const lastBeatAfterMs = Date.now();
    const failover = await failoverOf(w, 'rec-01', { timeoutMs: 30_000, stopPromotedMonitor: true });
    // The Slave comes back and beats again, for longer than its timeout.
    for (let flap = 0; flap < 4; flap += 1) {
      await heartbeat(w.agents, 'rec-01');
      await letTimePass(2_000);
    }
    return {
      failover,
      lastBeatBeforeMs,
      lastBeatAfterMs,
      // The detector tells a failed-over Slave's monitor of its heartbeats once a minute at most.
      afterResume: await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats === 1),
    };
  });

  // The silence counted from the last heartbeat: none of the pauses before it came near the timeout.
  const deadlineMs = (await findFailover(w.db, failover.failoverId))?.deadlineAt.getTime() ?? 0;
  expect(deadlineMs).toBeGreaterThanOrEqual(lastBeatBeforeMs + 6_000);
  expect(deadlineMs).toBeLessThanOrEqual(lastBeatAfterMs + 6_000);
  expect(afterResume).toMatchObject({ phase: 'failed-over', lateHeartbeats: 1 });
  expect(await failoverRows(w.db)).toMatchObject([
    { slave_id: 'rec-01', status: 'completed', failover_server_id: failover.failoverServerId },
  ]);
  expect(await serverRow(w.db, 'rec-01')).toMatchObject({ folder: 'BrokenRecorders' });
  expect(await camerasOf(w.db, 'rec-01')).toEqual([]);
  expect(await camerasOf(w.db, failover.failoverServerId)).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
  expect((await w.vms.calls('rebind')).filter((call) => call.outcome === 'applied')).toHaveLength(1);
  expect((await eventsOf(w.db, 'rec-01')).filter((event) => event === 'late-heartbeat')).toHaveLength(1);
  expect(await serverRow(w.db, 'fo-02')).toMatchObject({
    folder: 'FailoverServers',
    replaces_server_id: null,
  });
});

test('heartbeats arriving while the failover is under way are ignored: the failover goes on, once', async () => {
  const w = world.current;
  await w.seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01'), standby('fo-02')));
  const hold = await w.vms.hold('promote');

  const state = await w.withWorker(async () => {
    try {
      await w.fleet.startMonitor('rec-01');
      await breakAllDisks(w.agents, 'rec-01');
      await eventually('the promotion to be held', async () => hold.reached());
      // Healthy again, as far as its agent says, while its standby is being promoted.
      const heardAgainAfterMs = Date.now();
      await heartbeat(w.agents, 'rec-01', healthy('D', 'E'));
      await heartbeat(w.agents, 'rec-01', healthy('D', 'E'));
      await eventually('the heartbeats to be written to the lease', async () => {
        const [lease] = await readLeases(w.db, ['rec-01']);
        return (
          lease !== undefined &&
          lease.lastSeenMs >= heardAgainAfterMs &&
          brokenLetters(lease.disks).length === 0
        );
      });
      expect(await hold.reached()).toBe(true);
    } finally {
      await hold.release();
    }
    await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
    return monitorReaches(w, 'rec-01', (candidate) => candidate.phase === 'failed-over');
  });

  expect(state).toMatchObject({
    phase: 'failed-over',
    broken: { reason: 'all-disks-broken' },
    refutedFailovers: 0,
  });
  expect(await failoverRows(w.db)).toMatchObject([{ status: 'completed', failover_server_id: 'fo-01' }]);
  expect(
    (await eventsOf(w.db, 'rec-01')).filter((event) => event === 'moved-to-broken-recorders'),
  ).toHaveLength(1);
  expect((await w.vms.calls('promote')).filter((call) => call.outcome === 'applied')).toHaveLength(1);
  expect(await serverRow(w.db, 'fo-02')).toMatchObject({ folder: 'FailoverServers' });
});
