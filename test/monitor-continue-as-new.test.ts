/** A monitor runs forever: continue-as-new bounds its history and carries its state and timer over. */
import { heartbeat } from './support/heartbeats';
import { site, slave, standby } from './support/site';
import { failoverOf, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';

const HEARTBEATS_PER_RUN = 10;
const world = useTestWorld({ MONITOR_HEARTBEATS_PER_RUN: String(HEARTBEATS_PER_RUN) });

test('continue-as-new keeps the monitor state and its timer', async () => {
  const { fleet, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01')));
  const heartbeats = async (count: number) => {
    for (let beat = 0; beat < count; beat += 1) {
      await heartbeat(fleet, 'rec-01');
    }
  };

  const { state, result } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await heartbeats(HEARTBEATS_PER_RUN);
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.runs === 2);
    await heartbeats(HEARTBEATS_PER_RUN);
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.runs === 3);
    await heartbeats(5);
    const latest = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) => candidate.heartbeatsReceived === 25,
    );
    // No more heartbeats: the timer of the latest run must still fail the Slave over.
    return { state: latest, result: await failoverOf(world.current, 'rec-01') };
  });

  expect(state).toMatchObject({
    runs: 3,
    phase: 'monitoring',
    heartbeatsReceived: 25,
    settings: { protected: true, timeoutMs: 3_000 },
  });
  expect(result.failoverServerId).toBe('fo-01');
});
