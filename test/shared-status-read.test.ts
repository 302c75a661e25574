/**
 * Take-overs decided together share what the VMS said of each server while it is young enough; each server
 * is asked about alone, never the whole site.
 */
import { parseSite } from '../domain/site-file';
import { SharedStatusRead } from '../failover/shared-status-read';
import { VmsUnavailable } from '../vms/control-plane';
import { site, slave, standby } from './support/site';
import { useTestWorld } from './support/world';

const world = useTestWorld();

test('one read of a server answers every take-over while it is young, a new one after that, and a failed read is not shared', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), standby('fo-01'), standby('fo-02'))));
  await vms.setServerState('fo-02', 'down');
  const siteReads = jest.spyOn(vms, 'serverStatus');
  const reads = jest.spyOn(vms, 'serverStatusOf');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  expect(
    await Promise.all([shared.isServerUp('fo-01'), shared.isServerUp('fo-02'), shared.isServerUp('fo-02')]),
  ).toEqual([true, false, false]);
  expect(reads.mock.calls).toEqual([['fo-01'], ['fo-02']]);
  nowMs += 1_000;
  await vms.setServerState('fo-02', 'up');
  // Still the read asked a second ago.
  expect(await shared.isServerUp('fo-02')).toBe(false);
  expect(reads).toHaveBeenCalledTimes(2);

  nowMs += 1;
  expect(await shared.isServerUp('fo-02')).toBe(true);
  expect(reads).toHaveBeenCalledTimes(3);

  // The VMS does not answer: the take-over asking learns it, and the next one asks again.
  reads.mockRejectedValueOnce(new VmsUnavailable('bridge-unreachable', 'the VMS bridge is unreachable'));
  nowMs += 2_000;
  await expect(shared.isServerUp('fo-01')).rejects.toBeInstanceOf(VmsUnavailable);
  expect(await shared.isServerUp('fo-01')).toBe(true);
  expect(reads).toHaveBeenCalledTimes(5);
  expect(siteReads).not.toHaveBeenCalled();
});

test('a Slave is reported unreachable only from what the VMS said of it; a read asked as the take-over starts is the one its fence uses', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), slave({ id: 'rec-02' }), standby('fo-01'))));
  await vms.setServerState('rec-01', 'down');
  const reads = jest.spyOn(vms, 'serverStatusOf');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  shared.refresh('rec-01');
  shared.refresh('rec-02');
  expect(await shared.reportedUnreachable('rec-01')).toBe(true);
  expect(await shared.reportedUnreachable('rec-02')).toBe(false);
  expect(reads).toHaveBeenCalledTimes(2);
  // A server the VMS does not know is not known to be unreachable.
  expect(await shared.reportedUnreachable('rec-99')).toBe(false);

  // A failed read says nothing either.
  reads.mockRejectedValueOnce(new VmsUnavailable('bridge-unreachable', 'the VMS bridge is unreachable'));
  nowMs += 2_000;
  expect(await shared.reportedUnreachable('rec-01')).toBe(false);
});
