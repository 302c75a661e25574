/** The pure liveness rules: when a Slave counts as silent, the mass-failure rule, what a report may hold. */
import {
  allMaterialDisksBroken,
  checkLivenessReport,
  isMassFailure,
  missedTwoHeartbeats,
  refuteSilence,
  sameDiskHealth,
  silenceDeadline,
} from '../domain/liveness';
import type { MonitorState } from '../domain/monitor';
import { decideOnReport } from '../domain/monitor';
import { InvalidInput } from '../domain/validation';

const clock = {
  lastSeenMs: 10_000,
  monitoredSinceMs: 1_000,
  silenceFromMs: 1_000,
  observingSinceMs: 0,
  timeoutMs: 5_000,
  maintenanceUntilMs: null,
};

describe('silenceDeadline', () => {
  test('is the last heartbeat plus the timeout', () => {
    expect(silenceDeadline(clock)).toBe(15_000);
  });

  test('counts from when silence counts when nothing was heard since monitoring began', () => {
    expect(silenceDeadline({ ...clock, lastSeenMs: null, silenceFromMs: 2_000 })).toBe(7_000);
    // A heartbeat from before monitoring began does not count.
    expect(silenceDeadline({ ...clock, lastSeenMs: 500, silenceFromMs: 2_000 })).toBe(7_000);
  });

  test('a promoted server never heard counts from server-up, even when that is after promotion', () => {
    expect(
      silenceDeadline({ ...clock, lastSeenMs: null, monitoredSinceMs: 1_000, silenceFromMs: 60_000 }),
    ).toBe(65_000);
    // Heard after promotion: its heartbeats count, not server-up.
    expect(
      silenceDeadline({ ...clock, lastSeenMs: 3_000, monitoredSinceMs: 1_000, silenceFromMs: 60_000 }),
    ).toBe(8_000);
  });

  test('gives every Slave a full timeout from when the detector began to observe', () => {
    expect(silenceDeadline({ ...clock, observingSinceMs: 30_000 })).toBe(35_000);
    expect(silenceDeadline({ ...clock, lastSeenMs: null, observingSinceMs: 30_000 })).toBe(35_000);
  });

  test('never falls inside a maintenance window', () => {
    expect(silenceDeadline({ ...clock, maintenanceUntilMs: 40_000 })).toBe(40_000);
    expect(silenceDeadline({ ...clock, maintenanceUntilMs: 12_000 })).toBe(15_000);
  });
});

describe('disk health', () => {
  const disks = (broken: string[], healthy: string[] = []) => [
    ...broken.map((letter) => ({ letter, healthy: false })),
    ...healthy.map((letter) => ({ letter, healthy: true })),
  ];

  test('a Slave fails when every material disk is broken, not when some are', () => {
    expect(allMaterialDisksBroken(['D', 'E'], disks(['D', 'E'], ['C']))).toBe(true);
    expect(allMaterialDisksBroken(['D', 'E'], disks(['D'], ['C', 'E']))).toBe(false);
    expect(allMaterialDisksBroken(['D', 'E'], disks(['C']))).toBe(false);
    expect(allMaterialDisksBroken([], disks(['C']))).toBe(false);
    // A disk not reported is not known to be broken.
    expect(allMaterialDisksBroken(['D', 'E'], disks(['D']))).toBe(false);
  });

  test('two reports describe the same health when the same letters are broken', () => {
    expect(sameDiskHealth(disks(['E', 'D'], ['C']), disks(['D', 'E']))).toBe(true);
    expect(sameDiskHealth(disks(['D']), disks(['E']))).toBe(false);
    expect(sameDiskHealth([], disks([], ['C']))).toBe(true);
  });
});

describe('the mass-failure rule', () => {
  const policy = { share: 0.5, minimum: 3 };

  test('holds when more than the share and at least the minimum are silent', () => {
    expect(isMassFailure(5, 6, policy)).toBe(true);
    expect(isMassFailure(4, 6, policy)).toBe(true);
    expect(isMassFailure(3, 6, policy)).toBe(false);
    expect(isMassFailure(100, 10_000, policy)).toBe(false);
  });

  test('never holds one Slave dying, even on a site of two', () => {
    expect(isMassFailure(1, 1, policy)).toBe(false);
    expect(isMassFailure(2, 2, policy)).toBe(false);
    expect(isMassFailure(3, 3, policy)).toBe(true);
  });

  test('a Slave counts as silent once it has missed two of its usual heartbeats', () => {
    expect(missedTwoHeartbeats(2_100, 1_000)).toBe(true);
    expect(missedTwoHeartbeats(1_900, 1_000)).toBe(false);
    expect(missedTwoHeartbeats(60_000, null)).toBe(false);
  });
});

describe('checkLivenessReport', () => {
  test('accepts each kind of report', () => {
    expect(checkLivenessReport({ kind: 'checkpoint', term: 1, lastSeenMs: null, disks: [] })).toEqual({
      kind: 'checkpoint',
      term: 1,
      lastSeenMs: null,
      disks: [],
    });
    expect(
      checkLivenessReport({
        kind: 'disks',
        term: 2,
        lastSeenMs: 5,
        disks: [{ letter: 'd:', healthy: false }],
      }),
    ).toEqual({ kind: 'disks', term: 2, lastSeenMs: 5, disks: [{ letter: 'D', healthy: false }] });
    expect(checkLivenessReport({ kind: 'deadline', term: 3, lastSeenMs: 1, deadlineMs: 2 })).toMatchObject({
      kind: 'deadline',
    });
    expect(checkLivenessReport({ kind: 'held', term: 3, holdId: 'hold-1', deadlineMs: 2 })).toMatchObject({
      kind: 'held',
    });
  });

  test.each([
    ['nothing', undefined],
    ['null', null],
    ['a text', 'deadline'],
    ['an unknown kind', { kind: 'failover', term: 1 }],
    ['no term', { kind: 'deadline', lastSeenMs: 1, deadlineMs: 2 }],
    ['a term of 0', { kind: 'deadline', term: 0, lastSeenMs: 1, deadlineMs: 2 }],
    ['a fractional term', { kind: 'deadline', term: 1.5, lastSeenMs: 1, deadlineMs: 2 }],
    ['a deadline as text', { kind: 'deadline', term: 1, lastSeenMs: 1, deadlineMs: 'now' }],
    ['a deadline no date can hold', { kind: 'deadline', term: 1, lastSeenMs: 1, deadlineMs: 1e300 }],
    ['disks not a list', { kind: 'disks', term: 1, lastSeenMs: 1, disks: 'D' }],
    ['a disk without health', { kind: 'disks', term: 1, lastSeenMs: 1, disks: [{ letter: 'D' }] }],
    ['an empty hold id', { kind: 'held', term: 1, holdId: '', deadlineMs: 2 }],
  ])('refuses %s', (_name, payload) => {
    expect(() => checkLivenessReport(payload)).toThrow(InvalidInput);
  });
});

describe('a failed-over Slave heard again (decideOnReport)', () => {
  const brokenAtMs = 1_000_000;
  /** Failed over for all its disks: the heartbeat that reported them was received 40 ms after the decision's clock. */
  const failedOver: MonitorState = {
    serverId: 'rec-01',
    phase: 'failed-over',
    settings: { protected: true, timeoutMs: 60_000 },
    materialDriveLetters: ['D', 'E'],
    maintenanceUntilMs: null,
    sinceMs: 0,
    term: 1,
    lastHeartbeatAtMs: brokenAtMs + 40,
    lastReportAtMs: brokenAtMs,
    brokenDisks: ['D', 'E'],
    heldBy: null,
    reportsReceived: 3,
    ignoredSignals: 0,
    refutedFailovers: 0,
    lateHeartbeats: 0,
    broken: { reason: 'all-disks-broken', atMs: brokenAtMs, failoverId: 'f-1' },
    runs: 1,
  };
  const checkpoint = (lastSeenMs: number) => ({
    kind: 'checkpoint' as const,
    term: 2,
    lastSeenMs,
    disks: [],
  });

  test('the heartbeat last heard when it broke, told again by a new detector, is not late', () => {
    expect(decideOnReport(failedOver, checkpoint(brokenAtMs + 40), brokenAtMs + 60_000)).toEqual({
      action: 'ignore',
      why: 'not-monitoring',
    });
  });

  test('a heartbeat after that one is late', () => {
    expect(decideOnReport(failedOver, checkpoint(brokenAtMs + 5_000), brokenAtMs + 60_000)).toEqual({
      action: 'late-heartbeat',
      lastSeenMs: brokenAtMs + 5_000,
    });
  });
});

describe('refuteSilence (a heartbeat-timeout claim confirmed against PostgreSQL)', () => {
  const record = {
    protected: true,
    currentTerm: 2,
    leaseLastSeenMs: null,
    leaseDisks: [],
    materialDriveLetters: ['D', 'E'],
    timeoutMs: 3_000,
    maintenanceUntilMs: null,
    silenceFromMs: 10_000,
    observingSinceMs: 5_000,
  };
  const neverHeard = { term: 2, lastSeenMs: null, deadlineMs: 13_000 };

  test('stands when the timeout it was decided with is still the one saved', () => {
    expect(refuteSilence(record, neverHeard, 'heartbeat-timeout')).toBeUndefined();
    expect(
      refuteSilence(record, { term: 2, lastSeenMs: 11_000, deadlineMs: 14_000 }, 'heartbeat-timeout'),
    ).toBeUndefined();
  });

  test('falls when a longer timeout was saved since, whether the Slave was ever heard or not', () => {
    const longer = { ...record, timeoutMs: 3_600_000 };
    expect(refuteSilence(longer, neverHeard, 'heartbeat-timeout')).toMatch(/deadline has moved/);
    expect(
      refuteSilence(longer, { term: 2, lastSeenMs: 11_000, deadlineMs: 14_000 }, 'heartbeat-timeout'),
    ).toMatch(/deadline has moved/);
  });

  test('falls for a Slave unprotected since, whatever the reason', () => {
    const unprotected = { ...record, protected: false, leaseDisks: [{ letter: 'D', healthy: false }] };
    expect(refuteSilence(unprotected, neverHeard, 'heartbeat-timeout')).toBe('it is not protected any more');
    expect(refuteSilence(unprotected, neverHeard, 'all-disks-broken')).toBe('it is not protected any more');
  });

  test('a term that began after the last heartbeat starts the silence afresh', () => {
    const claim = { term: 2, lastSeenMs: 1_000, deadlineMs: 8_000 };
    expect(refuteSilence(record, claim, 'heartbeat-timeout')).toBeUndefined();
    expect(refuteSilence({ ...record, timeoutMs: 4_000 }, claim, 'heartbeat-timeout')).toMatch(
      /deadline has moved/,
    );
  });
});
