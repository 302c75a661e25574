/**
 * Bad input, table-driven: every case gets a clear typed error (a type, a one-line message, no stack) and
 * changes nothing: every table of the site and of the simulated VMS is the same before and after.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { rootFailure } from '../../app/failures';
import { monitorWorkflowId } from '../../domain/names';
import { findServer, listCameras, listPlugins } from '../../store/servers';
import { failoverRows, snapshotAllTables } from '../support/db';
import type { MonitorState } from '../../workflows/definitions';
import { breakAllDisks, broken } from '../support/heartbeats';
import { site, slave, standby } from '../support/site';
import { failoverOf, monitorHandle, monitorReaches } from '../support/wait';
import type { TestContext } from '../support/world';
import { useTestWorld } from '../support/world';

const world = useTestWorld();

interface BadInput {
  input: string;
  act(world: TestContext): Promise<unknown>;
  /** The failure type (ApplicationFailure.type) or error class name expected. */
  rejectedAs: string;
}

/*
 * Heartbeats come over HTTP to the heartbeat gateway: malformed, oversized, foreign or unauthenticated ones
 * are refused there with a status of their own and change nothing (test/liveness-gateway.test.ts, "refusals").
 * What reaches a monitor straight through Temporal is below ("signals sent straight to a monitor").
 */

const SERVERS: BadInput[] = [
  {
    input: 'monitoring an unknown server',
    act: (w) => w.fleet.startMonitor('rec-99'),
    rejectedAs: 'UnknownServer',
  },
  {
    input: 'monitoring a standby failover server',
    act: (w) => w.fleet.startMonitor('fo-02'),
    rejectedAs: 'NotASlave',
  },
  {
    input: 'monitoring the Master',
    act: (w) => w.fleet.startMonitor('master'),
    rejectedAs: 'MasterCannotBeProtected',
  },
  {
    input: 'monitoring a Slave in Broken recorders',
    act: (w) => w.fleet.startMonitor('rec-02'),
    rejectedAs: 'ServerNotActive',
  },
  {
    input: 'monitoring an unprotected Slave',
    act: (w) => w.fleet.startMonitor('rec-04'),
    rejectedAs: 'ServerNotProtected',
  },
  {
    input: 'monitoring a Slave twice',
    act: (w) => w.fleet.startMonitor('rec-01'),
    rejectedAs: 'MonitorAlreadyRunning',
  },
  {
    input: 'a server id with SQL in it',
    act: (w) => w.fleet.startMonitor("rec-01'; DROP TABLE servers; --"),
    rejectedAs: 'InvalidInput',
  },
  { input: 'an empty server id', act: (w) => w.fleet.startMonitor(''), rejectedAs: 'InvalidInput' },
  {
    input: 'a 65-character server id',
    act: (w) => w.fleet.startMonitor('r'.repeat(65)),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'a numeric server id',
    act: (w) => w.fleet.startMonitor(42 as unknown as string),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'stopping a stopped monitor',
    act: (w) => w.fleet.stopMonitor('rec-03'),
    rejectedAs: 'MonitorNotRunning',
  },
  {
    input: 'protecting the Master',
    act: (w) => w.fleet.updateSettings('master', { protected: true, timeoutMs: 30_000 }),
    rejectedAs: 'MasterCannotBeProtected',
  },
  {
    input: 'a maintenance window for the Master',
    act: (w) => w.fleet.startMaintenance('master', 60_000),
    rejectedAs: 'MasterCannotBeProtected',
  },
  {
    input: 'protecting a standby',
    act: (w) => w.fleet.updateSettings('fo-02', { protected: true, timeoutMs: 30_000 }),
    rejectedAs: 'NotASlave',
  },
  {
    input: 'settings of an unknown server',
    act: (w) => w.fleet.updateSettings('rec-99', { protected: true, timeoutMs: 30_000 }),
    rejectedAs: 'UnknownServer',
  },
];

const settings = (timeoutMs: unknown) =>
  ({ protected: true, timeoutMs }) as { protected: boolean; timeoutMs: number };

const TIMEOUTS: BadInput[] = [
  ...[0, -1_000, 999, 86_400_001, 1e12, 1_500.5, Number.NaN, Number.POSITIVE_INFINITY, '30s', null].flatMap(
    (timeoutMs): BadInput[] => [
      {
        input: `timeout ${String(timeoutMs)} on a monitored Slave`,
        act: (w) => w.fleet.updateSettings('rec-01', settings(timeoutMs)),
        rejectedAs: 'InvalidInput',
      },
      {
        input: `timeout ${String(timeoutMs)} on an unmonitored Slave`,
        act: (w) => w.fleet.updateSettings('rec-04', settings(timeoutMs)),
        rejectedAs: 'InvalidInput',
      },
    ],
  ),
  {
    input: 'protection given as text',
    act: (w) => w.fleet.updateSettings('rec-01', { protected: 'yes', timeoutMs: 30_000 } as never),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'a negative maintenance window',
    act: (w) => w.fleet.startMaintenance('rec-01', -1),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'an eight-day maintenance window',
    act: (w) => w.fleet.startMaintenance('rec-01', 8 * 86_400_000),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'a fractional maintenance window',
    act: (w) => w.fleet.startMaintenance('rec-04', 0.5),
    rejectedAs: 'InvalidInput',
  },
];

const RESTORES: BadInput[] = [
  {
    input: 'restoring with other drive letters',
    act: (w) => w.fleet.restore('rec-02', ['C', 'D']),
    rejectedAs: 'DriveLettersMismatch',
  },
  {
    input: 'restoring with one more drive',
    act: (w) => w.fleet.restore('rec-02', ['C', 'D', 'E', 'F']),
    rejectedAs: 'DriveLettersMismatch',
  },
  {
    input: 'restoring with a non-letter drive',
    act: (w) => w.fleet.restore('rec-02', ['C', 'D', '9']),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'restoring with no drives',
    act: (w) => w.fleet.restore('rec-02', []),
    rejectedAs: 'InvalidInput',
  },
  {
    input: 'restoring an active Slave',
    act: (w) => w.fleet.restore('rec-01'),
    rejectedAs: 'ServerNotBroken',
  },
  { input: 'restoring the Master', act: (w) => w.fleet.restore('master'), rejectedAs: 'ServerNotBroken' },
  { input: 'restoring a standby', act: (w) => w.fleet.restore('fo-02'), rejectedAs: 'ServerNotBroken' },
  {
    input: 'restoring an unknown server',
    act: (w) => w.fleet.restore('rec-99'),
    rejectedAs: 'UnknownServer',
  },
];

const SITE_FILES: BadInput[] = [
  {
    input: 'a site file with a server id twice',
    act: (w) =>
      w.seed({
        servers: [
          { id: 'rec-10', role: 'slave', drives: ['D'] },
          { id: 'rec-10', role: 'failover', drives: ['D'] },
        ],
      }),
    rejectedAs: 'SiteFileError',
  },
  {
    input: 'a site file binding one camera to two servers',
    act: (w) =>
      w.seed({
        servers: [
          { id: 'rec-10', role: 'slave', drives: ['D'], cameras: [{ id: 'cam-x' }] },
          { id: 'rec-11', role: 'slave', drives: ['D'], cameras: [{ id: 'cam-x' }] },
        ],
      }),
    rejectedAs: 'SiteFileError',
  },
  {
    input: 'a site file binding a camera to the Slave it moved away from',
    act: (w) =>
      w.seed({
        servers: [{ id: 'rec-02', role: 'slave', drives: ['C', 'D', 'E'], cameras: [{ id: 'rec-02-ip-1' }] }],
      }),
    rejectedAs: 'InvalidSiteFile',
  },
  {
    input: 'a site file calling a promoted server a standby',
    act: (w) => w.seed({ servers: [{ id: 'fo-01', role: 'failover', drives: ['C', 'D', 'E'] }] }),
    rejectedAs: 'InvalidSiteFile',
  },
  {
    input: 'a site file with a second Master',
    act: (w) => w.seed({ servers: [{ id: 'master-2', role: 'master', drives: ['C'] }] }),
    rejectedAs: 'InvalidSiteFile',
  },
  {
    input: 'a site file with a protected Master',
    act: (w) => w.seed({ servers: [{ id: 'master', role: 'master', drives: ['C'], protected: true }] }),
    rejectedAs: 'SiteFileError',
  },
  {
    input: 'a site file with SQL in a server id',
    act: (w) => w.seed({ servers: [{ id: "x'); DROP TABLE servers; --", role: 'slave', drives: ['D'] }] }),
    rejectedAs: 'SiteFileError',
  },
  {
    input: 'a site file with a zero timeout',
    act: (w) => w.seed({ servers: [{ id: 'rec-10', role: 'slave', drives: ['D'], failoverTimeout: '0s' }] }),
    rejectedAs: 'SiteFileError',
  },
  {
    input: 'a site file whose later server is bad (all or nothing)',
    act: (w) =>
      w.seed({
        servers: [
          { id: 'rec-10', role: 'slave', drives: ['D'] },
          { id: 'rec-11', role: 'slave', drives: ['DD'] },
        ],
      }),
    rejectedAs: 'SiteFileError',
  },
];

const FINISHED_WORKFLOWS: BadInput[] = [
  {
    input: 'settings of a failed-over Slave',
    act: (w) => w.fleet.updateSettings('rec-02', { protected: true, timeoutMs: 5_000 }),
    rejectedAs: 'ServerNotActive',
  },
  {
    input: 'maintenance of a failed-over Slave',
    act: (w) => w.fleet.startMaintenance('rec-02', 60_000),
    rejectedAs: 'ServerNotActive',
  },
  {
    input: 'a signal to a completed failover',
    act: async (w) => {
      const failoverId = (await failoverRows(w.db))[0]?.id as string;
      await w.client.workflow.getHandle(failoverId).signal('standbyAvailable');
    },
    rejectedAs: 'WorkflowNotFoundError',
  },
  {
    input: 'a signal to a stopped monitor',
    act: (w) =>
      w.client.workflow
        .getHandle(monitorWorkflowId(w.site, 'rec-03'))
        .signal('stopMonitor', { reason: 'operator' }),
    rejectedAs: 'WorkflowNotFoundError',
  },
];

/**
 * rec-01 monitored, rec-02 failed over to fo-01, rec-03's monitor stopped, rec-04 unprotected, fo-02 standby.
 * Every monitor left running has a one-hour timeout: nothing changes on its own while the cases run.
 */
const seedSite = async (w: TestContext): Promise<void> => {
  await w.seed(
    site(
      slave({ id: 'rec-01', timeout: '1h' }),
      slave({ id: 'rec-02', timeout: '1h' }),
      slave({ id: 'rec-03', timeout: '1h' }),
      slave({ id: 'rec-04', timeout: '1h', protected: false }),
      standby('fo-01'),
      standby('fo-02'),
    ),
  );
  await w.fleet.startMonitor('rec-01');
  await w.fleet.startMonitor('rec-02');
  await w.fleet.startMonitor('rec-03');
  await w.fleet.stopMonitor('rec-03');
  await monitorHandle(w, 'rec-03').result();
  await breakAllDisks(w.agents, 'rec-02');
  await failoverOf(w, 'rec-02');
  await monitorReaches(w, 'rec-02', (state) => state.phase === 'failed-over');
};

/** Every table, less the detector's renewal of its term: once a second, whatever else happens. */
const siteState = async (w: TestContext): Promise<Record<string, unknown[]>> => {
  const snapshot = await snapshotAllTables(w.db);
  snapshot['public.detector_term'] = (snapshot['public.detector_term'] ?? []).map((row) => ({
    ...(row as Record<string, unknown>),
    renewed_at: 'renewed each second',
  }));
  return snapshot;
};

/** What each case did wrong: no error, another type, an unclear message, or a change of state. */
const problemsWith = async (w: TestContext, cases: BadInput[]): Promise<string[]> => {
  const problems: string[] = [];
  for (const badInput of cases) {
    const before = await siteState(w);
    let failure: unknown;
    try {
      await badInput.act(w);
    } catch (error) {
      failure = error instanceof WorkflowNotFoundError ? error : rootFailure(error);
    }
    const after = await siteState(w);
    const name = `${badInput.input}:`;
    if (failure === undefined) {
      problems.push(`${name} accepted`);
    } else {
      const {
        type,
        name: errorName,
        message,
      } = failure as { type?: string; name?: string; message?: string };
      const rejectedAs = type ?? errorName;
      if (rejectedAs !== badInput.rejectedAs) problems.push(`${name} rejected as ${rejectedAs}: ${message}`);
      if (!message || message.length > 400 || /\n\s+at /.test(message))
        problems.push(`${name} unclear message: ${message}`);
    }
    if (JSON.stringify(before) !== JSON.stringify(after)) problems.push(`${name} changed the state`);
  }
  return problems;
};

test.each([
  ['unknown and wrong-role server ids, Master protection, duplicate monitor start', SERVERS],
  ['zero, negative and absurd timeouts and maintenance windows', TIMEOUTS],
  ['restores with a drive-letter mismatch or of servers that are not broken', RESTORES],
  ['site files with duplicate ids, dangling camera references, SQL in ids', SITE_FILES],
  ['settings, maintenance and signals for finished or failed-over workflows', FINISHED_WORKFLOWS],
])('bad input: %s: a clear typed error each, and no state change', async (_group, cases) => {
  const w = world.current;
  await w.withWorker(async () => {
    await seedSite(w);
    const monitorBefore = await w.fleet.monitorState('rec-01');

    expect(await problemsWith(w, cases)).toEqual([]);
    expect(await w.fleet.monitorState('rec-01')).toMatchObject({
      phase: 'monitoring',
      settings: monitorBefore?.settings,
      maintenanceUntilMs: monitorBefore?.maintenanceUntilMs,
      ignoredSignals: 0,
      broken: null,
    });
  });
});

/** Reports as only the detector should send them, and other payloads, signalled by any Temporal client. */
const MALFORMED_REPORTS: unknown[] = [
  null,
  'deadline',
  [1, 2, 3],
  { kind: 'fail-over', term: 1 },
  { kind: 'deadline', term: '1', lastSeenMs: null, deadlineMs: 0 },
  { kind: 'deadline', term: 0, lastSeenMs: null, deadlineMs: 0 },
  { kind: 'deadline', term: 1.5, lastSeenMs: null, deadlineMs: 0 },
  { kind: 'deadline', term: 1, lastSeenMs: null, deadlineMs: 1e300 },
  { kind: 'deadline', term: 1, lastSeenMs: -1, deadlineMs: 0 },
  { kind: 'disks', term: 1, lastSeenMs: null, disks: [] },
  { kind: 'disks', term: 1, lastSeenMs: 0, disks: 'all broken' },
  { kind: 'disks', term: 1, lastSeenMs: 0, disks: [{ letter: 'DD', healthy: false }] },
  {
    kind: 'disks',
    term: 1,
    lastSeenMs: 0,
    disks: Array.from({ length: 27 }, () => ({ letter: 'D', healthy: false })),
  },
  { kind: 'checkpoint', term: 1, lastSeenMs: 'now', disks: [] },
  { kind: 'held', term: 1, holdId: '', deadlineMs: 0 },
  { kind: 'held', term: 1, holdId: 'h'.repeat(65), deadlineMs: 0 },
];

/** Signals no monitor has a handler for: the failover nobody may order, a misspelt report. */
const UNKNOWN_SIGNALS: [string, unknown][] = [
  ['failover', { serverId: 'rec-01' }],
  ['Liveness', { kind: 'deadline', term: 1, lastSeenMs: null, deadlineMs: 0 }],
  ['moveToBrokenRecorders', null],
];

/** The monitor's state, less what the detector's checkpoints change on their own while a test runs. */
const withoutCheckpoints = (state: MonitorState | undefined) =>
  state && { ...state, reportsReceived: 0, lastReportAtMs: 0, term: 0, lastHeartbeatAtMs: null };

test('signals sent straight to a monitor: malformed reports, unknown names and the old heartbeat signal are counted and change nothing', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    await seedSite(w);
    const tablesBefore = await siteState(w);
    const before = {
      'rec-01': withoutCheckpoints(await w.fleet.monitorState('rec-01')),
      'rec-02': withoutCheckpoints(await w.fleet.monitorState('rec-02')),
    };
    const rec01 = monitorHandle(w, 'rec-01');
    for (const payload of MALFORMED_REPORTS) await rec01.signal('liveness', payload as never);
    for (const [name, payload] of UNKNOWN_SIGNALS) await rec01.signal(name, payload);
    // The agents' old way in, with every material disk broken: no longer a way to fail a Slave over.
    await rec01.signal('heartbeat', { serverId: 'rec-01', sentAtMs: Date.now(), disks: broken('D', 'E') });
    // A failed-over Slave: a report or heartbeat with an unusable time is no late heartbeat.
    const rec02 = monitorHandle(w, 'rec-02');
    await rec02.signal('liveness', { kind: 'checkpoint', term: 1, lastSeenMs: 1e300, disks: [] } as never);
    await rec02.signal('heartbeat', { serverId: 'rec-02', sentAtMs: 1e300, disks: [] } as never);
    await rec02.signal('failover', null);

    const sentToRec01 = MALFORMED_REPORTS.length + UNKNOWN_SIGNALS.length + 1;
    const rec01After = await monitorReaches(w, 'rec-01', (state) => state.ignoredSignals >= sentToRec01);
    const rec02After = await monitorReaches(w, 'rec-02', (state) => state.ignoredSignals >= 3);

    expect(withoutCheckpoints(rec01After)).toEqual({ ...before['rec-01'], ignoredSignals: sentToRec01 });
    expect(withoutCheckpoints(rec02After)).toEqual({ ...before['rec-02'], ignoredSignals: 3 });
    expect(rec01After).toMatchObject({
      phase: 'monitoring',
      broken: null,
      brokenDisks: [],
      refutedFailovers: 0,
    });
    expect(rec02After.lateHeartbeats).toBe(0);
    expect(await siteState(w)).toEqual(tablesBefore);
  });
});

test('names with SQL metacharacters are stored verbatim, never executed', async () => {
  const { db, seed } = world.current;
  const hostname = "rec'); DROP TABLE servers; --";
  const cameraName = "Gate \"A\"; DELETE FROM cameras WHERE '1'='1' -- \\";
  const plugin = "ANPR+'||(SELECT pg_sleep(10))||'";
  await seed(
    site({
      id: 'rec-20',
      hostname,
      role: 'slave',
      drives: ['D'],
      cameras: [{ id: "cam-'1'", name: cameraName }],
      plugins: [plugin],
    }),
  );

  expect((await findServer(db, 'rec-20'))?.hostname).toBe(hostname);
  expect(await listCameras(db, 'rec-20')).toEqual([
    { id: "cam-'1'", name: cameraName, kind: 'ip', serverId: 'rec-20' },
  ]);
  expect(await listPlugins(db, 'rec-20')).toEqual([plugin]);
  expect((await db.query('SELECT count(*)::int AS servers FROM servers')).rows).toEqual([{ servers: 2 }]);
});
