/**
 * The simulated site as a service: which servers record which camera as servers are promoted, fenced,
 * demoted, crash, are cut off and come back, so that "no camera recorded by two servers" can be checked;
 * its fault API over HTTP; concurrent calls; and its migrations, which adopt a database made before them.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { createPool } from '../infra/database';
import { VmsRejected } from '../vms/control-plane';
import { HttpVmsBridge } from '../vms/http-bridge';
import { SIMULATOR_MIGRATIONS, VmsSimulator } from '../vms/simulator';
import { SimulatorClient } from '../vms/simulator-client';
import { testServerUrl } from './support/environment';
import { SIMULATOR_TOKEN, startSimulatorService, stopSimulatorServices } from './support/simulator-service';
import type { SimulatorService } from './support/simulator-service';
import { site, slave, standby } from './support/site';
import { useTestWorld } from './support/world';

const world = useTestWorld();
let service: SimulatorService;
let bridge: HttpVmsBridge;

beforeEach(async () => {
  service = await startSimulatorService(world.current);
  bridge = new HttpVmsBridge({
    url: service.url,
    token: SIMULATOR_TOKEN,
    timeoutMs: 5_000,
    installTimeoutMs: 10_000,
    pollIntervalMs: 20,
  });
  const loaded = await service.client.putSite(
    site(slave({ id: 'rec-01', ipCameras: 2, analogCameras: 1 }), standby('fo-01'), standby('fo-02')),
  );
  expect(loaded).toEqual({ servers: 4, cameras: 3 });
});

afterEach(async () => {
  bridge.close();
  await stopSimulatorServices();
});

/** Camera ids each server records, servers that record nothing left out. */
const recordings = async (): Promise<Record<string, string[]>> =>
  Object.fromEntries(
    (await service.client.state()).servers
      .filter((server) => server.recordedCameras.length > 0)
      .map((server) => [server.serverId, server.recordedCameras]),
  );

const failOver = async (requestId: string, from: string, to: string, cameraIds: string[]) => {
  await bridge.promoteToRecorder({ requestId, serverId: to, replacesServerId: from });
  await bridge.rebindCameras({ requestId, cameraIds, toServerId: to });
};

const IP_CAMERAS = ['rec-01-ip-1', 'rec-01-ip-2'];

test('a site put: every camera bound to its server and recorded by it alone', async () => {
  expect(Object.fromEntries(await service.simulator.cameraBindings())).toEqual({
    'rec-01-analog-1': 'rec-01',
    'rec-01-ip-1': 'rec-01',
    'rec-01-ip-2': 'rec-01',
  });
  expect(await recordings()).toEqual({ 'rec-01': ['rec-01-analog-1', ...IP_CAMERAS] });
  expect(await service.simulator.camerasRecordedTwice()).toEqual([]);
});

test('a rebind makes the new server record; the old one records too until it is fenced', async () => {
  await failOver('f1', 'rec-01', 'fo-01', IP_CAMERAS);

  expect(await service.simulator.camerasRecordedTwice()).toEqual(
    IP_CAMERAS.map((cameraId) => ({ cameraId, serverIds: ['fo-01', 'rec-01'] })),
  );

  await bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' });
  expect(await service.simulator.camerasRecordedTwice()).toEqual([]);
  expect(await recordings()).toEqual({ 'fo-01': IP_CAMERAS });
  const status = await bridge.serverStatus();
  expect(status.find((server) => server.serverId === 'rec-01')).toMatchObject({
    reachable: true,
    recording: false,
  });
});

test('a partitioned Slave keeps recording and cannot be fenced until it is heard again', async () => {
  await service.client.setServerState('rec-01', 'partitioned');
  await failOver('f1', 'rec-01', 'fo-01', IP_CAMERAS);

  await expect(bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' })).rejects.toMatchObject({
    code: 'server-unreachable',
  });
  expect((await service.simulator.camerasRecordedTwice()).map((twice) => twice.cameraId)).toEqual(IP_CAMERAS);

  await service.client.setServerState('rec-01', 'up');
  expect((await service.simulator.camerasRecordedTwice()).map((twice) => twice.cameraId)).toEqual(IP_CAMERAS);
  expect(await bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' })).toBe('applied');
  expect(await service.simulator.camerasRecordedTwice()).toEqual([]);
});

test('a crashed Slave records nothing; back up, it records only what is still bound to it', async () => {
  await service.client.setServerState('rec-01', 'down');
  expect(await recordings()).toEqual({});
  expect((await bridge.serverStatus()).find((server) => server.serverId === 'rec-01')).toMatchObject({
    reachable: false,
    recording: null,
  });

  await failOver('f1', 'rec-01', 'fo-01', IP_CAMERAS);
  await service.client.setServerState('rec-01', 'up');

  expect(await recordings()).toEqual({ 'fo-01': IP_CAMERAS, 'rec-01': ['rec-01-analog-1'] });
  expect(await service.simulator.camerasRecordedTwice()).toEqual([]);
});

test('a fenced server records nothing, even back from down, and takes no cameras until promoted again', async () => {
  await failOver('f1', 'rec-01', 'fo-01', IP_CAMERAS);
  await bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' });
  await service.client.setServerState('rec-01', 'down');
  await service.client.setServerState('rec-01', 'up');

  expect(await recordings()).toEqual({ 'fo-01': IP_CAMERAS });
  await expect(
    bridge.rebindCameras({ requestId: 'f2', cameraIds: ['rec-01-ip-1'], toServerId: 'rec-01' }),
  ).rejects.toMatchObject({ code: 'server-fenced' });

  // Restored: a standby, then promoted in place of another (fenced first, as a failover does), it records again.
  await bridge.demoteToStandby({ requestId: 'r1', serverId: 'rec-01' });
  await bridge.fenceRecorder({ requestId: 'f3', serverId: 'fo-01' });
  await failOver('f3', 'fo-01', 'rec-01', IP_CAMERAS);
  expect(await recordings()).toEqual({ 'rec-01': ['rec-01-analog-1', ...IP_CAMERAS] });
});

test('the fault API: broken disks, slow and hung calls, failing installs, all lifted by a reset', async () => {
  await service.client.setDisks('rec-01', [
    { letter: 'D', healthy: false },
    { letter: 'E', healthy: false },
  ]);
  await service.client.setServerState('fo-01', 'down');
  await service.client.setServerState('fo-02', 'partitioned');
  await service.client.setCallFault('promote', { delayMs: 50 });
  await service.client.setCallFault('install-plugin', { hang: true });
  await service.client.failPluginInstalls('master', 'ANPR+', 3);
  expect((await bridge.serverStatus()).find((server) => server.serverId === 'rec-01')?.disks).toEqual([
    { letter: 'C', healthy: true },
    { letter: 'D', healthy: false },
    { letter: 'E', healthy: false },
  ]);
  expect(await service.simulator.callFault('promote')).toEqual({ delayMs: 50 });
  expect(await service.simulator.callFault('install-plugin')).toEqual({ hang: true });

  await service.client.resetFaults();

  const status = await bridge.serverStatus();
  expect(status.every((server) => server.reachable && server.disks.every((disk) => disk.healthy))).toBe(true);
  expect(await service.simulator.callFault('promote')).toBeNull();
  expect(await service.simulator.callFault('install-plugin')).toBeNull();
  expect(await bridge.installPlugin({ requestId: 'p1', serverId: 'master', plugin: 'ANPR+' })).toBe(
    'applied',
  );
});

test('bad fault requests and a bad site are refused with the reason, and change nothing', async () => {
  const before = await service.client.state();
  const refusals = [
    service.client.putSite({ servers: [{ id: 'rec-09', role: 'slave' }] }),
    service.client.setServerState('nowhere', 'down'),
    service.client.setCallFault('reboot' as 'promote', { delayMs: 10 }),
    service.client.setDisks('rec-01', [{ letter: '7', healthy: false }]),
    service.client.failPluginInstalls('rec-01', 'ANPR+', -1),
  ];

  const errors = await Promise.all(
    refusals.map((call) =>
      call.then(
        () => undefined,
        (error: unknown) => error,
      ),
    ),
  );

  expect(errors.map((error) => [error instanceof VmsRejected, (error as VmsRejected).code])).toEqual([
    [true, 'malformed-request'],
    [true, 'unknown-server'],
    [true, 'not-found'],
    [true, 'malformed-request'],
    [true, 'malformed-request'],
  ]);
  expect((errors[0] as Error).message).toContain('servers[0].drives: must list at least one drive letter');
  expect(await service.client.state()).toEqual(before);
});

test('the fault API needs the token too', async () => {
  const anonymous = new SimulatorClient({ url: service.url, timeoutMs: 5_000 });
  try {
    await expect(anonymous.setServerState('rec-01', 'down')).rejects.toMatchObject({ code: 'unauthorized' });
  } finally {
    anonymous.close();
  }
});

test('one request id sent twice at once is applied once', async () => {
  const promote = () =>
    bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' });

  const outcomes = await Promise.all([promote(), promote(), promote()]);

  expect(outcomes.sort()).toEqual(['already-applied', 'already-applied', 'applied']);
});

test('installs of one plugin on one server started at once are one install', async () => {
  await service.client.setCallFault('install-plugin', { delayMs: 300 });
  const starts = await Promise.all(
    ['a', 'b', 'c'].map((requestId) =>
      service.simulator.startPluginInstall({ requestId, serverId: 'master', plugin: 'ANPR+' }),
    ),
  );

  expect(new Set(starts.map((operation) => operation.operationId)).size).toBe(1);
  expect(await bridge.installPlugin({ requestId: 'd', serverId: 'master', plugin: 'ANPR+' })).toBe('applied');
  expect((await service.simulator.calls('install-plugin')).map((call) => call.outcome)).toEqual(['applied']);
});

describe('migrations', () => {
  let admin: Pool;
  let databaseName: string;

  beforeEach(async () => {
    admin = new Pool({ connectionString: testServerUrl('postgres'), max: 1 });
    databaseName = `vms_test_sim_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await admin.query(`CREATE DATABASE ${databaseName}`);
  });

  afterEach(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await admin.end();
  });

  test('a database the simulator made before its migrations is adopted, its recorders and down servers kept', async () => {
    const db = createPool(testServerUrl(databaseName), world.current.logger, { max: 3 });
    try {
      // The schema and rows as the simulator left them when it created its tables itself.
      await db.query(readFileSync(join(SIMULATOR_MIGRATIONS.dir, '001_simulator.sql'), 'utf8'));
      await db.query("INSERT INTO vms_sim.recorders (server_id, replaces_server) VALUES ('fo-01', 'rec-01')");
      await db.query("INSERT INTO vms_sim.camera_bindings (camera_id, server_id) VALUES ('cam-1', 'fo-01')");
      await db.query("INSERT INTO vms_sim.down_servers (server_id) VALUES ('fo-02')");

      const simulator = new VmsSimulator(db);
      await Promise.all([simulator.install(), new VmsSimulator(db).install()]);

      const { servers } = await simulator.state();
      expect(servers).toEqual([
        expect.objectContaining({
          serverId: 'fo-01',
          role: 'recorder',
          state: 'up',
          recordedCameras: ['cam-1'],
        }),
        expect.objectContaining({ serverId: 'fo-02', role: 'standby', state: 'down', recordedCameras: [] }),
      ]);
      const applied = await db.query<{ name: string }>(
        'SELECT name FROM vms_sim.schema_migrations ORDER BY id',
      );
      expect(applied.rows.map((row) => row.name)).toEqual([
        '001_simulator.sql',
        '002_recording_model.sql',
        '003_by_server.sql',
      ]);
    } finally {
      await db.end();
    }
  });
});
