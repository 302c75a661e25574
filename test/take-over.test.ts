/**
 * The monitor of a broken Slave restores recording itself: the steps up to the IP cameras committed to a
 * matched standby run as one activity scheduled by the monitor, before the failover workflow is created.
 * The failover workflow then goes on from there (protection of the promoted server, plugin reinstalls).
 */
import { parseSite } from '../domain/site-file';
import { findFailover } from '../store/failovers';
import { site, slave, standby } from './support/site';
import { failoverOf, monitorHandle } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();

test('recording is restored before the failover workflow starts, and every step happens once', async () => {
  const { fleet, db, vms, client, seed, withWorker } = world.current;
  const description = site(
    slave({ id: 'rec-01', timeout: '1s', ipCameras: 2, plugins: ['ANPR+'] }),
    standby('fo-01'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result).toMatchObject({
    failoverServerId: 'fo-01',
    ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
    plugins: [{ plugin: 'ANPR+', status: 'installed' }],
  });
  const camerasCommittedAt = (await findFailover(db, result.failoverId))?.camerasCommittedAt;
  const failoverStartedAt = (await client.workflow.getHandle(result.failoverId).describe()).startTime;
  expect(camerasCommittedAt).toBeInstanceOf(Date);
  expect((camerasCommittedAt as Date).getTime()).toBeLessThan(failoverStartedAt.getTime());

  const monitorEvents = (await monitorHandle(world.current, 'rec-01').fetchHistory()).events ?? [];
  const scheduled = monitorEvents.filter((event) => event.activityTaskScheduledEventAttributes);
  expect(scheduled.map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name)).toEqual([
    'takeOverRecording',
  ]);
  const applied = (await vms.calls()).filter((call) => call.outcome === 'applied');
  expect(applied.map(({ operation, subject }) => ({ operation, subject }))).toEqual([
    { operation: 'promote', subject: 'fo-01' },
    // The broken Slave stops recording before its cameras move.
    { operation: 'fence', subject: 'rec-01' },
    { operation: 'rebind', subject: 'fo-01' },
    { operation: 'install-plugin', subject: 'fo-01/ANPR+' },
  ]);
  expect(await vms.calls()).toHaveLength(4);
});
