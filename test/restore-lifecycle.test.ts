/**
 * Restore, run again and around ended monitors: a restore whose step ran again after it committed answers
 * what it did the first time (it does not refuse the standby it made); stopping a monitor that has already
 * ended is no failure, and the server is a standby in the VMS and in PostgreSQL.
 */
import { parseSite } from '../domain/site-file';
import { restoreAsStandby } from '../store/failovers';
import { serverRow } from './support/db';
import { keepHeartbeating } from './support/heartbeat-loop';
import { site, slave, standby } from './support/site';
import { failoverOf, monitorReaches } from './support/wait';
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
