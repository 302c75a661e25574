/**
 * Take-overs decided together share what the VMS said of each server while it is young enough; the servers
 * asked about at once (and while that call is under way) are named in one call, never the whole site.
 */
import { parseSite } from '../domain/site-file';
import { SharedStatusRead } from '../failover/shared-status-read';
import { VmsRejected, VmsUnavailable } from '../vms/control-plane';
import { site, slave, standby } from './support/site';
import { useTestWorld } from './support/world';

const world = useTestWorld();

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

const bridgeUnreachable = () => new VmsUnavailable('bridge-unreachable', 'the VMS bridge is unreachable');

/** The servers each call named, in call order. */
const named = (calls: readonly (readonly [readonly string[]])[]): string[][] =>
  calls.map(([serverIds]) => [...serverIds].sort());

test('one read of a server answers every take-over while it is young, a new one after that, and a failed read is not shared', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), standby('fo-01'), standby('fo-02'))));
  await vms.setServerState('fo-02', 'down');
  const siteReads = jest.spyOn(vms, 'serverStatus');
  const oneServerReads = jest.spyOn(vms, 'serverStatusOf');
  const reads = jest.spyOn(vms, 'serverStatusesOf');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  expect(
    await Promise.all([shared.isServerUp('fo-01'), shared.isServerUp('fo-02'), shared.isServerUp('fo-02')]),
  ).toEqual([true, false, false]);
  expect(named(reads.mock.calls)).toEqual([['fo-01', 'fo-02']]);
  nowMs += 1_000;
  await vms.setServerState('fo-02', 'up');
  // Still the read asked a second ago.
  expect(await shared.isServerUp('fo-02')).toBe(false);
  expect(reads).toHaveBeenCalledTimes(1);

  nowMs += 1;
  expect(await shared.isServerUp('fo-02')).toBe(true);
  expect(named(reads.mock.calls)).toEqual([['fo-01', 'fo-02'], ['fo-02']]);

  // The VMS does not answer: the take-over asking learns it, and the next one asks again.
  reads.mockRejectedValueOnce(bridgeUnreachable());
  nowMs += 2_000;
  await expect(shared.isServerUp('fo-01')).rejects.toBeInstanceOf(VmsUnavailable);
  expect(await shared.isServerUp('fo-01')).toBe(true);
  expect(reads).toHaveBeenCalledTimes(4);
  expect(siteReads).not.toHaveBeenCalled();
  expect(oneServerReads).not.toHaveBeenCalled();
});

test('a server the VMS does not have is refused to its own asker only; a failed call fails each asker of it and is not shared', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), standby('fo-01'), standby('fo-02'))));
  const reads = jest.spyOn(vms, 'serverStatusesOf');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  const [known, unknown] = await Promise.allSettled([shared.isServerUp('fo-01'), shared.isServerUp('fo-99')]);

  expect(known).toEqual({ status: 'fulfilled', value: true });
  expect(unknown).toMatchObject({ status: 'rejected', reason: { code: 'unknown-server' } });
  expect((unknown as PromiseRejectedResult).reason).toBeInstanceOf(VmsRejected);
  expect(named(reads.mock.calls)).toEqual([['fo-01', 'fo-99']]);

  // One call for both, and it fails: both askers hear it; neither answer is kept.
  nowMs += 2_000;
  reads.mockRejectedValueOnce(bridgeUnreachable());
  const failed = await Promise.allSettled([shared.isServerUp('fo-01'), shared.isServerUp('fo-02')]);
  expect(failed.map((result) => result.status)).toEqual(['rejected', 'rejected']);
  expect(await Promise.all([shared.isServerUp('fo-01'), shared.isServerUp('fo-02')])).toEqual([true, true]);
  expect(named(reads.mock.calls)).toEqual([
    ['fo-01', 'fo-99'],
    ['fo-01', 'fo-02'],
    ['fo-01', 'fo-02'],
  ]);
});

test('servers asked about while a call is under way are named together in the next call', async () => {
  const { vms } = world.current;
  await vms.putSite(
    parseSite(site(slave({ id: 'rec-01' }), slave({ id: 'rec-02' }), standby('fo-01'), standby('fo-02'))),
  );
  const answer = vms.serverStatusesOf.bind(vms);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const reads = jest.spyOn(vms, 'serverStatusesOf').mockImplementationOnce(async (serverIds) => {
    await released;
    return answer(serverIds);
  });
  const shared = new SharedStatusRead(vms, 1_000);

  const first = shared.isServerUp('rec-01');
  await nextTurn();
  expect(reads).toHaveBeenCalledTimes(1);
  // Asked in later turns of the event loop, while the first call is under way.
  const later: Promise<boolean>[] = [];
  for (const serverId of ['rec-02', 'fo-01', 'fo-02']) {
    later.push(shared.isServerUp(serverId));
    await nextTurn();
  }
  expect(reads).toHaveBeenCalledTimes(1);
  release();

  expect(await Promise.all([first, ...later])).toEqual([true, true, true, true]);
  expect(named(reads.mock.calls)).toEqual([['rec-01'], ['fo-01', 'fo-02', 'rec-02']]);
});

test('a Slave is reported unreachable only from what the VMS said of it; a read asked as the take-over starts is the one its fence uses', async () => {
  const { vms } = world.current;
  await vms.putSite(parseSite(site(slave({ id: 'rec-01' }), slave({ id: 'rec-02' }), standby('fo-01'))));
  await vms.setServerState('rec-01', 'down');
  const reads = jest.spyOn(vms, 'serverStatusesOf');
  let nowMs = 1_000_000;
  const shared = new SharedStatusRead(vms, 1_000, () => nowMs);

  shared.refresh('rec-01');
  shared.refresh('rec-02');
  expect(await shared.reportedUnreachable('rec-01')).toBe(true);
  expect(await shared.reportedUnreachable('rec-02')).toBe(false);
  expect(named(reads.mock.calls)).toEqual([['rec-01', 'rec-02']]);
  // A server the VMS does not know is not known to be unreachable.
  expect(await shared.reportedUnreachable('rec-99')).toBe(false);

  // A failed read says nothing either.
  reads.mockRejectedValueOnce(bridgeUnreachable());
  nowMs += 2_000;
  expect(await shared.reportedUnreachable('rec-01')).toBe(false);
});
