/**
 * The worker process killed (SIGKILL) in the middle of a failover, at each step in turn, then started
 * again: the failover completes, and every side effect on the VMS and in PostgreSQL happens exactly once.
 * Each crash is checked to have happened where it is named: the steps before it committed, its own not
 * (unless the step is one statement, which PostgreSQL completes whole: then exactly once).
 * The step is stopped deterministically: PostgreSQL-only steps inside their transaction, VMS steps after
 * the VMS applied the call but before the worker heard back (the window where a crash leaves it unsure).
 */
import {
  cameraBindingsOf,
  eventsOf,
  failoverRows,
  pluginReinstalls,
  serverRow,
  camerasOf,
} from '../support/db';
import { TestAgents } from '../support/agents';
import { terminateRunningWorkflows } from '../support/cleanup';
import { breakAllDisks } from '../support/heartbeats';
import { buildService, killAllServices, startService } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import { holdEventTransaction, holdReached } from '../support/transaction-hold';
import type { TestContext } from '../support/world';
import { useTestWorld } from '../support/world';
import { eventually, failoverOf } from '../support/wait';

beforeAll(buildService, 180_000);

afterEach(async () => {
  await killAllServices();
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const ALL_EVENTS = [
  'disks-degraded',
  'moved-to-broken-recorders',
  'standby-claimed',
  'standby-promoted',
  'slave-fenced',
  'cameras-rebound',
  'plugin-reinstalled',
  'failover-completed',
];

interface CrashPoint {
  step: string;
  hold(world: TestContext): Promise<{ reached(): Promise<boolean>; release(): Promise<void> }>;
  /**
   * How many of ALL_EVENTS are committed once the crash has settled: those of the steps before it, and the
   * step's own only when the step is one statement (PostgreSQL runs a statement to its end and finds its
   * client gone only when it answers); a step's transaction dies with its worker.
   */
  committedAfterCrash: number;
  /** The VMS calls applied when the worker died: a VMS step's own call reached the VMS, its answer did not reach the worker. */
  appliedBeforeCrash: string[];
}

const CRASH_POINTS: CrashPoint[] = [
  {
    step: 'move to Broken recorders',
    hold: ({ db }) => holdEventTransaction(db, 'moved-to-broken-recorders', 'rec-01'),
    committedAfterCrash: 1,
    appliedBeforeCrash: [],
  },
  {
    step: 'claim a standby',
    hold: ({ db }) => holdEventTransaction(db, 'standby-claimed', 'rec-01'),
    // The claim is one statement: it commits whole once the hold lets it go, its worker dead or not.
    committedAfterCrash: 3,
    appliedBeforeCrash: [],
  },
  {
    step: 'promote the standby',
    hold: ({ vms }) => vms.hold('promote', 'fo-01'),
    committedAfterCrash: 3,
    appliedBeforeCrash: ['promote'],
  },
  {
    step: 'rebind the IP cameras',
    hold: ({ vms }) => vms.hold('rebind', 'fo-01'),
    // The broken Slave is fenced between the promotion and the rebind.
    committedAfterCrash: 5,
    appliedBeforeCrash: ['promote', 'fence', 'rebind'],
  },
];

const seedOneSlave = (world: TestContext) =>
  world.seed(
    site(
      slave({ id: 'rec-01', timeout: '1h', ipCameras: 2, analogCameras: 1, plugins: ['ANPR+'] }),
      standby('fo-01'),
    ),
  );

const appliedOperations = async (world: TestContext): Promise<string[]> =>
  (await world.vms.calls()).filter((call) => call.outcome === 'applied').map((call) => call.operation);

/**
 * Starts a worker, breaks rec-01's disks (a heartbeat to that worker's gateway) and kills the worker once the
 * failover reaches the hold; then checks that it died there: the steps before committed, the step itself not.
 */
const crashDuringFailover = async (world: TestContext, point: CrashPoint): Promise<void> => {
  const hold = await point.hold(world);
  try {
    const first = startService(serviceEnv(world));
    await first.ready();
    await world.fleet.startMonitor('rec-01');
    const agents = new TestAgents(world.db, () => [first.gateway()]);
    try {
      await breakAllDisks(agents, 'rec-01');
    } finally {
      agents.close();
    }
    await holdReached(hold, `the failover to reach "${point.step}"`);
    await first.kill();
  } finally {
    await hold.release();
  }
  const settled = ALL_EVENTS.slice(0, point.committedAfterCrash);
  await eventually(`the events committed at the crash: ${settled.join(', ')}`, async () => {
    const events = await eventsOf(world.db, 'rec-01');
    return events.length === settled.length && events.every((event, index) => event === settled[index]);
  });
  expect(await appliedOperations(world)).toEqual(point.appliedBeforeCrash);
};

test.each(CRASH_POINTS)(
  'a worker killed during "$step" is restarted and the failover completes exactly once',
  async (point) => {
    const { db, vms } = world.current;
    await seedOneSlave(world.current);

    await crashDuringFailover(world.current, point);
    const failoversAtCrash = await failoverRows(db);
    const slaveAtCrash = await serverRow(db, 'rec-01');
    await startService(serviceEnv(world.current)).ready();
    const result = await failoverOf(world.current, 'rec-01', { timeoutMs: 90_000 });

    if (point.step === 'move to Broken recorders') {
      // The killed transaction was rolled back whole: no failover, the Slave still in service.
      expect(failoversAtCrash).toEqual([]);
      expect(slaveAtCrash).toMatchObject({ status: 'active', folder: 'Servers' });
    } else {
      expect(failoversAtCrash).toHaveLength(1);
      expect(slaveAtCrash).toMatchObject({ folder: 'BrokenRecorders' });
    }
    // A VMS call the killed worker never heard back from is made again, and the VMS knows it already.
    for (const operation of point.appliedBeforeCrash.slice(-1)) {
      expect((await vms.calls(operation)).map((call) => call.outcome)).toEqual([
        'applied',
        'already-applied',
      ]);
    }
    expect(result).toMatchObject({
      slaveId: 'rec-01',
      failoverServerId: 'fo-01',
      ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
      analogCameraIds: ['rec-01-analog-1'],
      plugins: [{ plugin: 'ANPR+', status: 'installed' }],
    });
    const applied = (await vms.calls()).filter((call) => call.outcome === 'applied');
    expect(applied.map(({ operation, subject }) => ({ operation, subject }))).toEqual([
      { operation: 'promote', subject: 'fo-01' },
      { operation: 'fence', subject: 'rec-01' },
      { operation: 'rebind', subject: 'fo-01' },
      { operation: 'install-plugin', subject: 'fo-01/ANPR+' },
    ]);
    expect(await failoverRows(db)).toMatchObject([
      { slave_id: 'rec-01', status: 'completed', failover_server_id: 'fo-01' },
    ]);
    // Each step once: the Slave entered Broken recorders exactly once.
    expect(await eventsOf(db, 'rec-01')).toEqual(ALL_EVENTS);
    expect(await serverRow(db, 'rec-01')).toMatchObject({ folder: 'BrokenRecorders' });
    expect(await serverRow(db, 'fo-01')).toMatchObject({ role: 'slave', replaces_server_id: 'rec-01' });
    expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    expect(await cameraBindingsOf(vms, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    expect(await pluginReinstalls(db)).toMatchObject([{ plugin: 'ANPR+', status: 'installed', attempts: 1 }]);
  },
);

/*
 * The plugin reinstall heartbeats while the installer runs (30 s heartbeat timeout), so the server sees a
 * killed worker within seconds instead of at the 5-minute start-to-close timeout.
 */
test('a worker killed during a plugin reinstall: the reinstall resumes within a minute, exactly once', async () => {
  const { db, vms } = world.current;
  await seedOneSlave(world.current);

  await crashDuringFailover(world.current, {
    step: 'reinstall plugins',
    hold: ({ vms: simulator }) => simulator.hold('install-plugin', 'fo-01/ANPR+'),
    committedAfterCrash: 6,
    appliedBeforeCrash: ['promote', 'fence', 'rebind', 'install-plugin'],
  });
  expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
  await startService(serviceEnv(world.current)).ready();

  await eventually(
    'the failover to complete after the restart',
    async () => ((await failoverRows(db))[0]?.status === 'completed' ? true : undefined),
    { timeoutMs: 45_000, intervalMs: 500 },
  );
  expect((await vms.calls('install-plugin')).map((call) => call.outcome)).toEqual([
    'applied',
    'already-applied',
  ]);
  expect(await eventsOf(db, 'rec-01')).toEqual(ALL_EVENTS);
});
