/** The failover rules of the product description, one test each, on the real Temporal server and PostgreSQL. */
import type { Heartbeat } from '../domain/validation';
import { GatewayClient } from '../liveness/gateway-client';
import { findFailover } from '../store/failovers';
import { readLeases } from '../store/leases';
import { livenessRecord } from '../store/monitoring';
import { findServer } from '../store/servers';
import { terminateRunningWorkflows } from './support/cleanup';
import { camerasOf, eventsOf, failoverRows, pluginReinstalls, pluginsOf, serverRow } from './support/db';
import { keepHeartbeating } from './support/heartbeat-loop';
import { breakAllDisks, broken, healthy, heartbeat } from './support/heartbeats';
import { site, slave, standby, systemDrive } from './support/site';
import {
  changeSettingsAsMonitorStarts,
  eventually,
  failoverOf,
  monitorHandle,
  monitorReaches,
} from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();

// A failed spec may leave monitors (a promoted server's short one among them) and failovers running. The
// world is gone by the time this file's afterEach runs: what it needs is taken at the start of each spec.
let leftRunning: (() => Promise<void>) | undefined;
beforeEach(() => {
  const { client, taskQueue } = world.current;
  leftRunning = () => terminateRunningWorkflows(client, taskQueue);
});
afterEach(() => leftRunning?.());

test('a Slave silent for longer than its timeout is moved to Broken recorders and a matched standby takes its place', async () => {
  const { fleet, db, vms, seed, withWorker } = world.current;
  await seed(
    site(
      slave({
        id: 'rec-01',
        timeout: '1s',
        ipCameras: 2,
        analogCameras: 1,
        plugins: ['ANPR+', 'Activity Map'],
      }),
      standby('fo-01'),
    ),
  );

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result).toMatchObject({
    slaveId: 'rec-01',
    failoverServerId: 'fo-01',
    ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
    analogCameraIds: ['rec-01-analog-1'],
    plugins: [
      { plugin: 'ANPR+', status: 'installed' },
      { plugin: 'Activity Map', status: 'installed' },
    ],
  });
  expect(await serverRow(db, 'rec-01')).toMatchObject({
    role: 'slave',
    status: 'broken',
    folder: 'BrokenRecorders',
  });
  expect(await serverRow(db, 'fo-01')).toMatchObject({
    role: 'slave',
    status: 'active',
    folder: 'Servers',
    replaces_server_id: 'rec-01',
    protected: true,
  });
  expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
  expect(await camerasOf(db, 'rec-01')).toEqual(['rec-01-analog-1']);
  expect(await pluginsOf(db, 'fo-01')).toEqual(['ANPR+', 'Activity Map']);
  expect((await vms.cameraBindings()).get('rec-01-ip-1')).toBe('fo-01');
  expect(await failoverRows(db)).toMatchObject([
    { slave_id: 'rec-01', status: 'completed', reason: 'heartbeat-timeout' },
  ]);
  expect(await eventsOf(db, 'rec-01')).toEqual([
    'moved-to-broken-recorders',
    'standby-claimed',
    'standby-promoted',
    'slave-fenced',
    'cameras-rebound',
    'plugin-reinstalled',
    'plugin-reinstalled',
    'failover-completed',
  ]);
});

test('the promoted server inherits the protection and is monitored in turn', async () => {
  const { fleet, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1s' }), standby('fo-01')));

  const promotedMonitor = await withWorker(async () => {
    // fo-01 is alive: its own 1 s monitor, once it runs, must not fail it over while it is read.
    const promotedAgent = keepHeartbeating(agents, ['fo-01'], 250);
    try {
      await fleet.startMonitor('rec-01');
      await failoverOf(world.current, 'rec-01');
      const monitoring = await monitorReaches(
        world.current,
        'fo-01',
        (state) => state.phase === 'monitoring',
      );
      await fleet.stopMonitor('fo-01');
      return monitoring;
    } finally {
      await promotedAgent.stop();
    }
  });

  expect(promotedMonitor).toMatchObject({
    serverId: 'fo-01',
    settings: { protected: true, timeoutMs: 1_000 },
  });
});

test('heartbeats within the timeout keep a Slave in service', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1500ms' }), standby('fo-01')));

  const { state, lastSentMs } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.phase === 'monitoring');
    // Four times the timeout, with a heartbeat every 300 ms.
    let lastSent = 0;
    for (let beat = 0; beat < 20; beat += 1) {
      lastSent = Date.now();
      await heartbeat(agents, 'rec-01', healthy('D', 'E'));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    // The monitor was told the Slave is heard (a checkpoint of the detector carries the last heartbeat).
    const heard = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) => (candidate.lastHeartbeatAtMs ?? 0) > candidate.sinceMs,
    );
    return { state: heard, lastSentMs: lastSent };
  });

  expect(state).toMatchObject({ phase: 'monitoring', broken: null });
  // The last heartbeat reached the lease in PostgreSQL.
  expect((await readLeases(db, ['rec-01']))[0]?.lastSeenMs).toBeGreaterThanOrEqual(lastSentMs);
  expect(await failoverRows(db)).toEqual([]);
  expect(await serverRow(db, 'rec-01')).toMatchObject({ folder: 'Servers' });
});

test('a heartbeat reporting all material disks broken fails the Slave over at once', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    // The system drive C is not a material disk: it may be healthy.
    await heartbeat(agents, 'rec-01', [...healthy('C'), ...broken('D', 'E')]);
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result.failoverServerId).toBe('fo-01');
  expect(await failoverRows(db)).toMatchObject([{ reason: 'all-disks-broken', status: 'completed' }]);
});

test('some broken disks are recorded but do not fail the Slave over', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const state = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await heartbeat(agents, 'rec-01', [...healthy('C', 'E'), ...broken('D')]);
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.brokenDisks.includes('D'));
    return fleet.monitorState('rec-01');
  });

  expect(state).toMatchObject({ phase: 'monitoring', brokenDisks: ['D'] });
  const drives = await db.query<{ letter: string; healthy: boolean }>(
    "SELECT letter, healthy FROM drives WHERE server_id = 'rec-01' ORDER BY letter",
  );
  expect(drives.rows).toEqual([
    { letter: 'C', healthy: true },
    { letter: 'D', healthy: false },
    { letter: 'E', healthy: true },
  ]);
  expect(await eventsOf(db, 'rec-01')).toEqual(['disks-degraded']);
  expect(await failoverRows(db)).toEqual([]);
});

test('only a standby with the same drive letters is claimed', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(
    site(
      slave({ id: 'rec-01', timeout: '1s', drives: [systemDrive, 'D', 'E'] }),
      standby('fo-two-drives', [systemDrive, 'D']),
      standby('fo-four-drives', [systemDrive, 'D', 'E', 'F']),
      standby('fo-matched', [systemDrive, 'D', 'E']),
    ),
  );

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result.failoverServerId).toBe('fo-matched');
  expect(await serverRow(db, 'fo-two-drives')).toMatchObject({
    folder: 'FailoverServers',
    replaces_server_id: null,
  });
  expect(await serverRow(db, 'fo-four-drives')).toMatchObject({
    folder: 'FailoverServers',
    replaces_server_id: null,
  });
});

test('two Slaves failing at once with one standby: one takes it, the other waits and goes on when a standby appears', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(
    site(slave({ id: 'rec-01', timeout: '1s' }), slave({ id: 'rec-02', timeout: '1s' }), standby('fo-01')),
  );

  const { waitingSlaveId, folderWhileWaiting, first, second } = await withWorker(async () => {
    await Promise.all([fleet.startMonitor('rec-01'), fleet.startMonitor('rec-02')]);
    const waiting = await eventually('a failover waiting for a standby', async () =>
      (await failoverRows(db)).find((row) => row.status === 'waiting-for-standby'),
    );
    const servedSlaveId = waiting.slave_id === 'rec-01' ? 'rec-02' : 'rec-01';
    const firstResult = await failoverOf(world.current, servedSlaveId, { stopPromotedMonitor: true });
    const folder = (await serverRow(db, waiting.slave_id))?.folder;

    await seed(site(standby('fo-02')));
    expect(await fleet.notifyStandbyAvailable()).toEqual([waiting.id]);
    return {
      waitingSlaveId: waiting.slave_id,
      folderWhileWaiting: folder,
      first: firstResult,
      second: await failoverOf(world.current, waiting.slave_id, { stopPromotedMonitor: true }),
    };
  });

  expect(folderWhileWaiting).toBe('BrokenRecorders');
  expect(first.failoverServerId).toBe('fo-01');
  expect(second).toMatchObject({ slaveId: waitingSlaveId, failoverServerId: 'fo-02' });
  expect(await failoverRows(db)).toMatchObject([{ status: 'completed' }, { status: 'completed' }]);
});

test('a repaired server is restored as a new standby and does not take its cameras back', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(
    site(slave({ id: 'rec-01', timeout: '1s', analogCameras: 1, plugins: ['ANPR+'] }), standby('fo-01')),
  );

  const { restored, monitorOutcome } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    const restoreResult = await fleet.restore('rec-01', ['C', 'D', 'E']);
    return { restored: restoreResult, monitorOutcome: await monitorHandle(world.current, 'rec-01').result() };
  });

  expect(restored).toMatchObject({
    serverId: 'rec-01',
    driveLetters: ['C', 'D', 'E'],
    analogCameraIds: ['rec-01-analog-1'],
  });
  expect(monitorOutcome).toMatchObject({ outcome: 'stopped', reason: 'restored' });
  expect(await serverRow(db, 'rec-01')).toMatchObject({
    role: 'failover',
    status: 'standby',
    folder: 'FailoverServers',
    protected: false,
  });
  expect(await serverRow(db, 'fo-01')).toMatchObject({
    role: 'slave',
    folder: 'Servers',
    replaces_server_id: null,
  });
  expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
  expect(await pluginsOf(db, 'rec-01')).toEqual([]);
  expect(await eventsOf(db, 'rec-01')).toContain('restored-as-standby');
});

test('restoring with other drive letters, or a server that is not broken, is refused and changes nothing', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(
    site(slave({ id: 'rec-01', timeout: '1s' }), slave({ id: 'rec-02', timeout: '1h' }), standby('fo-01')),
  );

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    await expect(fleet.restore('rec-01', ['C', 'D'])).rejects.toMatchObject({ type: 'DriveLettersMismatch' });
    await expect(fleet.restore('rec-02')).rejects.toMatchObject({ type: 'ServerNotBroken' });
    await expect(fleet.restore('no-such-server')).rejects.toMatchObject({ type: 'UnknownServer' });
  });

  expect(await serverRow(db, 'rec-01')).toMatchObject({ role: 'slave', folder: 'BrokenRecorders' });
  expect(await serverRow(db, 'rec-02')).toMatchObject({ role: 'slave', folder: 'Servers' });
});

test('a late heartbeat from a failed-over Slave is logged and flips nothing back', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1s' }), standby('fo-01')));

  const state = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    await heartbeat(agents, 'rec-01', healthy('D', 'E'));
    await heartbeat(agents, 'rec-01', healthy('D', 'E'));
    return monitorReaches(world.current, 'rec-01', (candidate) => candidate.lateHeartbeats >= 1);
  });

  expect(state.phase).toBe('failed-over');
  expect(await serverRow(db, 'rec-01')).toMatchObject({ folder: 'BrokenRecorders' });
  expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
  expect((await eventsOf(db, 'rec-01')).filter((event) => event === 'late-heartbeat')).toHaveLength(1);
  expect(await failoverRows(db)).toHaveLength(1);
});

test('a plugin install that fails a few times is retried until it succeeds', async () => {
  const { fleet, db, vms, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h', plugins: ['ANPR+'] }), standby('fo-01')));
  await vms.failPluginInstalls('fo-01', 'ANPR+', 2);

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await breakAllDisks(agents, 'rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result.plugins).toEqual([{ plugin: 'ANPR+', status: 'installed' }]);
  expect(await pluginReinstalls(db)).toMatchObject([
    { plugin: 'ANPR+', server_id: 'fo-01', status: 'installed', attempts: 3 },
  ]);
  expect((await vms.calls('install-plugin')).map((call) => call.outcome)).toEqual([
    'failed',
    'failed',
    'applied',
  ]);
});

test('a plugin install that never succeeds ends in a clear needs-manual-action state', async () => {
  const { fleet, db, vms, agents, seed, withWorker } = world.current;
  await seed(
    site(slave({ id: 'rec-01', timeout: '1h', plugins: ['ANPR+', 'Activity Map'] }), standby('fo-01')),
  );
  await vms.failPluginInstalls('fo-01', 'ANPR+', 100);

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await breakAllDisks(agents, 'rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result.plugins).toEqual([
    {
      plugin: 'ANPR+',
      status: 'needs-manual-action',
      error: expect.stringContaining('exited with code 1603'),
    },
    { plugin: 'Activity Map', status: 'installed' },
  ]);
  expect(await pluginReinstalls(db)).toMatchObject([
    { plugin: 'ANPR+', status: 'needs-manual-action', attempts: 4 },
    { plugin: 'Activity Map', status: 'installed' },
  ]);
  expect(await eventsOf(db, 'rec-01')).toContain('plugin-needs-manual-action');
  expect(await failoverRows(db)).toMatchObject([{ status: 'completed' }]);
  expect(await camerasOf(db, 'fo-01')).toHaveLength(2);
});

test('settings change live: a valid timeout applies at once, invalid values are rejected and change nothing', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await expect(fleet.updateSettings('rec-01', { protected: true, timeoutMs: 10 })).rejects.toMatchObject({
      type: 'InvalidInput',
    });
    await expect(
      monitorHandle(world.current, 'rec-01').executeUpdate('updateSettings', {
        args: [{ protected: 'yes', timeoutMs: 5_000 }],
      }),
    ).rejects.toMatchObject({ cause: { type: 'InvalidInput' } });
    expect((await findServer(db, 'rec-01'))?.settings).toEqual({ protected: true, timeoutMs: 3_600_000 });
    expect((await fleet.monitorState('rec-01'))?.settings.timeoutMs).toBe(3_600_000);

    await fleet.updateSettings('rec-01', { protected: true, timeoutMs: 1_000 });
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result.failoverServerId).toBe('fo-01');
  expect((await findServer(db, 'rec-01'))?.settings).toEqual({ protected: true, timeoutMs: 1_000 });
});

test('turning protection off ends the monitor without a failover', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const outcome = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await fleet.updateSettings('rec-01', { protected: false, timeoutMs: 60_000 });
    return monitorHandle(world.current, 'rec-01').result();
  });

  expect(outcome).toMatchObject({ outcome: 'unprotected' });
  expect(await serverRow(db, 'rec-01')).toMatchObject({ protected: false, folder: 'Servers' });
  expect(await failoverRows(db)).toEqual([]);
});

test('protection turned off as the monitor starts ends it without a failover', async () => {
  const { db, seed } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const outcome = await changeSettingsAsMonitorStarts(
    world.current,
    'rec-01',
    { protected: false, timeoutMs: 60_000 },
    () => monitorHandle(world.current, 'rec-01').result(),
  );

  expect(outcome).toMatchObject({ outcome: 'unprotected', state: { settings: { protected: false } } });
  expect(await serverRow(db, 'rec-01')).toMatchObject({ protected: false, folder: 'Servers' });
  expect(await failoverRows(db)).toEqual([]);
});

test('a timeout changed as the monitor starts is the one it keeps', async () => {
  const { fleet, db, liveness, seed } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const { state, deadlineMs, silenceCountsFromMs } = await changeSettingsAsMonitorStarts(
    world.current,
    'rec-01',
    { protected: true, timeoutMs: 90_000 },
    async () => {
      const current = await fleet.monitorState('rec-01');
      // Never heard: the detector's deadline is the 90 s timeout after its silence began, not the hour.
      const watched = await eventually('the detector to watch rec-01 with the new timeout', async () => {
        const record = await livenessRecord(db, 'rec-01');
        const from = Math.max(record?.silenceFromMs ?? 0, record?.term?.observingSinceMs ?? 0);
        const deadline = liveness.detector.deadlineOf('rec-01');
        return deadline !== undefined && deadline < from + 3_600_000 ? { deadline, from } : undefined;
      });
      await fleet.stopMonitor('rec-01');
      await monitorHandle(world.current, 'rec-01').result();
      return { state: current, deadlineMs: watched.deadline, silenceCountsFromMs: watched.from };
    },
  );

  expect(state?.settings).toEqual({ protected: true, timeoutMs: 90_000 });
  expect(deadlineMs).toBe(silenceCountsFromMs + 90_000);
  expect((await findServer(db, 'rec-01'))?.settings).toEqual({ protected: true, timeoutMs: 90_000 });
});

test('a Master cannot be placed under failover protection', async () => {
  const { fleet, db, seed } = world.current;
  await seed(site(slave({ id: 'rec-01' })));

  await expect(fleet.startMonitor('master')).rejects.toMatchObject({ type: 'MasterCannotBeProtected' });
  await expect(fleet.updateSettings('master', { protected: true, timeoutMs: 30_000 })).rejects.toMatchObject({
    type: 'MasterCannotBeProtected',
  });
  await expect(
    seed({ servers: [{ id: 'm2', role: 'master', drives: ['C'], protected: true }] }),
  ).rejects.toThrow(/Master cannot be placed under failover protection/);
  expect(await serverRow(db, 'master')).toMatchObject({ role: 'master', protected: false });
});

test('a planned maintenance window suspends failover until it ends', async () => {
  const { fleet, db, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1s' }), standby('fo-01')));

  const { during, untilMs, result } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    const window = await fleet.startMaintenance('rec-01', 3_000);
    const windowEndsMs = window.untilMs as number;
    // Past the 1 s timeout, inside the 3 s window.
    const inWindow = await monitorReaches(world.current, 'rec-01', () => Date.now() > windowEndsMs - 1_000);
    return {
      during: { state: inWindow, failovers: await failoverRows(db), atMs: Date.now() },
      untilMs: windowEndsMs,
      result: await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true }),
    };
  });

  expect(during.atMs).toBeLessThan(untilMs);
  expect(during.state.phase).toBe('monitoring');
  expect(during.failovers).toEqual([]);
  expect(result.failoverServerId).toBe('fo-01');
  // Deemed broken once the window was over, not at the timeout inside it.
  const failover = await findFailover(db, result.failoverId);
  expect(failover?.deadlineAt.getTime()).toBeGreaterThanOrEqual(untilMs);
  expect(failover?.startedAt.getTime()).toBeGreaterThanOrEqual(untilMs);
});

/** A heartbeat as any peer may POST it, whatever its fields, with the credential of `serverId`. */
const rawHeartbeat = async (serverId: string, payload: Record<string, unknown>) => {
  const { agents, liveness } = world.current;
  const client = new GatewayClient({
    gateways: [`http://127.0.0.1:${liveness.gateway.address()?.port}`],
    token: await agents.tokenOf(serverId),
    timeoutMs: 5_000,
  });
  try {
    return await client.send(payload as unknown as Heartbeat);
  } finally {
    client.close();
  }
};

test('bad requests get clear typed errors and change nothing', async () => {
  const { fleet, db, liveness, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const state = await withWorker(async () => {
    await expect(fleet.startMonitor('no-such-server')).rejects.toMatchObject({ type: 'UnknownServer' });
    await expect(fleet.startMonitor('fo-01')).rejects.toMatchObject({ type: 'NotASlave' });
    await expect(fleet.startMonitor("rec-01'; DROP TABLE servers; --")).rejects.toMatchObject({
      type: 'InvalidInput',
    });
    await fleet.startMonitor('rec-01');
    await expect(fleet.startMonitor('rec-01')).rejects.toMatchObject({ type: 'MonitorAlreadyRunning' });
    // Heartbeats with bad fields are refused by the gateway, whose answer says why.
    await expect(
      rawHeartbeat('rec-01', { serverId: 'rec-01', sentAtMs: 'now', disks: [] }),
    ).rejects.toMatchObject({ status: 400, code: 'malformed', message: expect.stringMatching(/sentAtMs/) });
    await expect(
      rawHeartbeat('rec-01', {
        serverId: 'rec-01',
        sentAtMs: Date.now(),
        disks: [{ letter: 'DD', healthy: false }],
      }),
    ).rejects.toMatchObject({ status: 400, code: 'malformed' });
    // A malformed signal that bypasses the gateway is counted and ignored by the workflow.
    await monitorHandle(world.current, 'rec-01').signal('heartbeat', {
      serverId: 'rec-01',
      disks: 'all broken',
    });
    return monitorReaches(world.current, 'rec-01', (candidate) => candidate.ignoredSignals === 1);
  });

  expect(state).toMatchObject({ phase: 'monitoring', lastHeartbeatAtMs: null, brokenDisks: [] });
  expect(liveness.gateway.stats).toMatchObject({ accepted: 0, refused: { malformed: 2 } });
  expect(await readLeases(db, ['rec-01'])).toEqual([]);
  expect(await failoverRows(db)).toEqual([]);
  expect(await serverRow(db, 'rec-01')).toMatchObject({ folder: 'Servers' });
  expect((await db.query('SELECT count(*)::int AS n FROM servers')).rows[0]).toEqual({ n: 3 });
});
