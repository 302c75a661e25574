/** The stack is wired: a workflow on the real Temporal server runs an activity that writes to PostgreSQL. */
import { findServer } from '../store/servers';
import { site, slave } from './support/site';
import { useTestWorld } from './support/world';

const world = useTestWorld();

test('a settings update goes through the monitor workflow into PostgreSQL and reads back', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '30s' })));

  const state = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await fleet.updateSettings('rec-01', { protected: true, timeoutMs: 45_000 });
    return fleet.monitorState('rec-01');
  });

  const stored = await findServer(db, 'rec-01');
  expect(stored?.settings).toEqual({ protected: true, timeoutMs: 45_000 });
  expect(state).toMatchObject({ settings: { timeoutMs: 45_000 }, phase: 'monitoring' });
});
