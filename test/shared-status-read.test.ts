/**
 * Take-overs decided together share one read of the VMS's server status while it is young enough; anything
 * the read cannot answer is asked of the VMS about that server alone.
 */
import { parseSite } from '../domain/site-file';
import { SharedStatusRead } from '../failover/shared-status-read';
import { VmsUnavailable } from '../vms/control-plane';
import { site, slave, standby } from './support/site';
import { useTestWorld } from './support/world';

const world = useTestWorld();

test('one read answers for every server while it is young, a new one after that, and a failed read asks each server alone', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), standby('fo-01'), standby('fo-02'))));
  await vms.setServerState('fo-02', 'down');
  const reads = jest.spyOn(vms, 'serverStatus');
  const asks = jest.spyOn(vms, 'isServerUp');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  expect(await Promise.all([shared.isServerUp('fo-01'), shared.isServerUp('fo-02')])).toEqual([true, false]);
  nowMs += 1_000;
  await vms.setServerState('fo-02', 'up');
  // Still the read asked a second ago.
  expect(await shared.isServerUp('fo-02')).toBe(false);
  expect(reads).toHaveBeenCalledTimes(1);

  nowMs += 1;
  expect(await shared.isServerUp('fo-02')).toBe(true);
  expect(reads).toHaveBeenCalledTimes(2);
  expect(asks).not.toHaveBeenCalled();

  // The VMS's status read fails: each server is asked about alone.
  reads.mockRejectedValueOnce(new VmsUnavailable('bridge-unreachable', 'the VMS bridge is unreachable'));
  nowMs += 2_000;
  expect(await shared.isServerUp('fo-01')).toBe(true);
  expect(asks).toHaveBeenCalledTimes(1);
});

test('a server is reported unreachable only from a read that holds it so, never by asking about it alone', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), slave({ id: 'rec-02' }), standby('fo-01'))));
  await vms.setServerState('rec-01', 'down');
  const reads = jest.spyOn(vms, 'serverStatus');
  const asks = jest.spyOn(vms, 'isServerUp');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  expect(await shared.reportedUnreachable('rec-01')).toBe(true);
  expect(await shared.reportedUnreachable('rec-02')).toBe(false);
  // A server the read does not hold is not known to be unreachable.
  expect(await shared.reportedUnreachable('rec-99')).toBe(false);
  expect(reads).toHaveBeenCalledTimes(1);

  // A failed read says nothing either.
  reads.mockRejectedValueOnce(new VmsUnavailable('bridge-unreachable', 'the VMS bridge is unreachable'));
  nowMs += 2_000;
  expect(await shared.reportedUnreachable('rec-01')).toBe(false);
  expect(asks).not.toHaveBeenCalled();
});
