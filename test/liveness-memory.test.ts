/** The in-memory parts of the liveness layer: the deadline queue, the lease table, the rate limits. */
import { LeaseTable } from '../liveness/lease-table';
import { FailurePenalties, TokenBuckets } from '../liveness/rate-limits';
import { TimerQueue } from '../liveness/timer-queue';

describe('TimerQueue', () => {
  test('hands keys over when due, in due order, each at its latest time only', async () => {
    const fired: { key: string; lateMs: number }[] = [];
    const done = new Promise<void>((resolve) => {
      const queue = new TimerQueue<string>((due) => {
        for (const { key, atMs } of due) fired.push({ key, lateMs: Date.now() - atMs });
        if (fired.length === 3) resolve();
      });
      const start = Date.now();
      queue.schedule('b', start + 40);
      queue.schedule('a', start + 20);
      queue.schedule('c', start + 10);
      // Rescheduled: only the later time counts.
      queue.schedule('c', start + 60);
      queue.schedule('gone', start + 30);
      queue.cancel('gone');
    });
    await done;
    expect(fired.map(({ key }) => key)).toEqual(['a', 'b', 'c']);
    for (const { lateMs } of fired) expect(lateMs).toBeGreaterThanOrEqual(0);
  });

  test('keeps its heap bounded when keys are rescheduled many times', () => {
    const queue = new TimerQueue<number>(() => undefined);
    const start = Date.now() + 60_000;
    for (let round = 0; round < 50; round += 1) {
      for (let key = 0; key < 1_000; key += 1) queue.schedule(key, start + round * 1_000 + key);
    }
    expect(queue.size).toBe(1_000);
    expect(queue.dueAt(7)).toBe(start + 49_000 + 7);
    expect((queue as unknown as { heap: unknown[] }).heap.length).toBeLessThan(6_000);
    queue.clear();
  });
});

describe('LeaseTable', () => {
  test('records heartbeats, smooths the interval, and hands each changed lease to the writer once', () => {
    const leases = new LeaseTable('gw-1');
    const heard: string[] = [];
    leases.onHeard((lease, previous) =>
      heard.push(`${lease.serverId}@${lease.lastSeenMs}<-${previous?.lastSeenMs ?? '-'}`),
    );
    leases.record('rec-01', { atMs: 1_000, sentAtMs: 990, disks: [] });
    leases.record('rec-01', { atMs: 2_000, sentAtMs: 1_990, disks: [] });
    leases.record('rec-01', { atMs: 4_000, sentAtMs: 3_990, disks: [] });
    leases.record('rec-02', { atMs: 4_000, sentAtMs: null, disks: [] });

    expect(heard).toEqual(['rec-01@1000<--', 'rec-01@2000<-1000', 'rec-01@4000<-2000', 'rec-02@4000<--']);
    expect(leases.get('rec-01')).toMatchObject({ lastSeenMs: 4_000, intervalMs: 1_200, heardBy: 'gw-1' });
    expect(leases.takeDirty().map((lease) => lease.serverId)).toEqual(['rec-01', 'rec-02']);
    expect(leases.takeDirty()).toEqual([]);
  });

  test('keeps leases whose write failed for the next write', () => {
    const leases = new LeaseTable('gw-1');
    leases.record('rec-01', { atMs: 1_000, sentAtMs: null, disks: [] });
    const batch = leases.takeDirty();
    leases.putBack(batch);
    expect(leases.takeDirty().map((lease) => lease.serverId)).toEqual(['rec-01']);
  });

  test("counts another gateway's lease as heard when it is learned, once", () => {
    const leases = new LeaseTable('gw-1');
    const remote = {
      serverId: 'rec-01',
      lastSeenMs: 5_000,
      sentAtMs: null,
      disks: [],
      intervalMs: 1_000,
      heardBy: 'gw-2',
    };
    expect(leases.mergeRemote(remote, 5_800)).toBe(true);
    expect(leases.get('rec-01')).toMatchObject({ lastSeenMs: 5_800, remoteSeenMs: 5_000 });
    expect(leases.mergeRemote(remote, 6_800)).toBe(false);
    expect(leases.mergeRemote({ ...remote, lastSeenMs: 6_000 }, 6_900)).toBe(true);
    // Another gateway's leases are that gateway's to write.
    expect(leases.takeDirty()).toEqual([]);
  });
});

describe('rate limits', () => {
  test('a credential may burst, then sends at the average rate', () => {
    const buckets = new TokenBuckets(5, 10);
    const allowed = Array.from({ length: 12 }, () => buckets.take('rec-01', 1_000)).filter(Boolean).length;
    expect(allowed).toBe(10);
    expect(buckets.take('rec-01', 1_100)).toBe(false);
    expect(buckets.take('rec-01', 1_200)).toBe(true);
    expect(buckets.take('rec-02', 1_200)).toBe(true);
  });

  test('an address that keeps failing is penalized for a while, then forgiven', () => {
    const penalties = new FailurePenalties(3, 10_000);
    expect([1, 2, 3].map(() => penalties.fail('10.0.0.9', 1_000))).toEqual([false, false, false]);
    expect(penalties.fail('10.0.0.9', 1_001)).toBe(true);
    expect(penalties.isPenalized('10.0.0.9', 5_000)).toBe(true);
    expect(penalties.isPenalized('10.0.0.8', 5_000)).toBe(false);
    expect(penalties.isPenalized('10.0.0.9', 11_002)).toBe(false);
    // Failures spread over seconds never add up.
    for (let second = 0; second < 10; second += 1)
      expect(penalties.fail('10.0.0.7', 20_000 + second * 1_000)).toBe(false);
  });
});
