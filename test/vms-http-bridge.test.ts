/**
 * The HTTP client of the VMS bridge protocol (vms/http-bridge.ts) against the simulator as a service, over
 * real HTTP: each call, idempotent repeats, 4xx as VmsRejected, 5xx, timeouts, hangs and refused connections
 * as VmsUnavailable within the configured deadline, tokens, plugin installs followed to their end, and TLS
 * with client certificates as the configuration loads them.
 */
import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../infra/config';
import { createPool } from '../infra/database';
import { projectRoot } from '../infra/paths';
import { BridgePaths, ERROR_STATUS, MAX_STATUS_IDS } from '../vms/bridge-protocol';
import { BridgeTransport } from '../vms/bridge-transport';
import { PluginInstallFailed, VmsRejected, VmsUnavailable } from '../vms/control-plane';
import { HttpVmsBridge } from '../vms/http-bridge';
import type { HttpBridgeOptions } from '../vms/http-bridge';
import { VmsSimulator } from '../vms/simulator';
import { createSimulatorServer, listen, stopServer } from '../vms/simulator-server';
import { closedPort } from './support/cli';
import { testServerUrl } from './support/environment';
import { SIMULATOR_TOKEN, startSimulatorService, stopSimulatorServices } from './support/simulator-service';
import type { SimulatorService } from './support/simulator-service';
import { site, slave, standby } from './support/site';
import { rejectionOf } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();
const bridges: HttpVmsBridge[] = [];

afterEach(async () => {
  bridges.splice(0).forEach((bridge) => bridge.close());
  await stopSimulatorServices();
});

const disks = (...letters: string[]) => letters.map((letter) => ({ letter, healthy: true }));

const statusJson = (serverId: string) => ({
  serverId,
  role: 'recorder',
  reachable: true,
  recording: true,
  disks: [],
  observedAt: new Date().toISOString(),
});

const TEST_SITE = site(slave({ id: 'rec-01', ipCameras: 2, analogCameras: 1 }), standby('fo-01'));

const bridgeTo = (url: string, options: Partial<HttpBridgeOptions> = {}): HttpVmsBridge => {
  const bridge = new HttpVmsBridge({
    url,
    token: SIMULATOR_TOKEN,
    timeoutMs: 2_000,
    installTimeoutMs: 10_000,
    pollIntervalMs: 20,
    ...options,
  });
  bridges.push(bridge);
  return bridge;
};

/** A seeded simulator service and a client of it. */
const seededBridge = async (
  options: Partial<HttpBridgeOptions> = {},
): Promise<{ service: SimulatorService; bridge: HttpVmsBridge }> => {
  const service = await startSimulatorService(world.current);
  await service.seed(TEST_SITE);
  return { service, bridge: bridgeTo(service.url, options) };
};

/** The rejection of `call` and how long it took to come. */
const timedRejection = async (call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> => {
  const startedAt = Date.now();
  const error = await rejectionOf(call());
  return { error, ms: Date.now() - startedAt };
};

test('the status of every server comes in one call: role, reachable, recording, disk health', async () => {
  const { service, bridge } = await seededBridge();
  await service.simulator.setDisks('rec-01', [{ letter: 'E', healthy: false }]);

  const before = Date.now();
  const status = await bridge.serverStatus();

  expect(status.map(({ observedAt: _at, ...server }) => server)).toEqual([
    { serverId: 'fo-01', role: 'standby', reachable: true, recording: false, disks: disks('C', 'D', 'E') },
    { serverId: 'master', role: 'master', reachable: true, recording: true, disks: disks('C') },
    {
      serverId: 'rec-01',
      role: 'recorder',
      reachable: true,
      recording: true,
      disks: [...disks('C', 'D'), { letter: 'E', healthy: false }],
    },
  ]);
  for (const server of status) expect(server.observedAt.getTime()).toBeGreaterThan(before - 5_000);

  await service.client.setServerState('rec-01', 'down');
  await service.client.setServerState('fo-01', 'partitioned');
  const unreachable = (await bridge.serverStatus()).filter((server) => !server.reachable);
  expect(unreachable.map(({ serverId, recording }) => ({ serverId, recording }))).toEqual([
    { serverId: 'fo-01', recording: null },
    { serverId: 'rec-01', recording: null },
  ]);
  expect(await bridge.isServerUp('rec-01')).toBe(false);
  expect(await bridge.isServerUp('master')).toBe(true);
});

test('whether one server is up is asked of that server alone; an unknown one is refused', async () => {
  const { service, bridge } = await seededBridge();
  await service.client.setServerState('fo-01', 'partitioned');
  const paths: string[] = [];
  service.server.on('request', (request: { url?: string }) => paths.push(request.url ?? ''));

  expect(await bridge.isServerUp('fo-01')).toBe(false);
  expect(await bridge.isServerUp('rec-01')).toBe(true);
  const unknown = await rejectionOf(bridge.isServerUp('rec-99'));

  expect(unknown).toBeInstanceOf(VmsRejected);
  expect(unknown).toMatchObject({ code: 'unknown-server' });
  expect(paths).toEqual(['fo-01', 'rec-01', 'rec-99'].map(BridgePaths.serverStatus));
});

test('a bridge without the one-server status is asked for every server instead, from then on', async () => {
  // A bridge of before that call: 404 not-found for a path it does not serve.
  const paths: string[] = [];
  const older = createHttpServer((request, response) => {
    paths.push(request.url ?? '');
    const [status, body] =
      request.url === BridgePaths.status
        ? [200, { servers: ['fo-01', 'rec-01'].map((serverId) => statusJson(serverId)) }]
        : [404, { error: { code: 'not-found', message: `no path ${request.url}` } }];
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const port = await listen(older, 0, '127.0.0.1');
  try {
    const bridge = bridgeTo(`http://127.0.0.1:${port}`);

    expect(await bridge.isServerUp('fo-01')).toBe(true);
    expect(await bridge.isServerUp('rec-01')).toBe(true);
    expect(await rejectionOf(bridge.isServerUp('rec-99'))).toMatchObject({ code: 'unknown-server' });

    expect(paths).toEqual([BridgePaths.serverStatus('fo-01'), ...Array(3).fill(BridgePaths.status)]);
  } finally {
    await stopServer(older);
  }
});

/** The ids each status call named, from the paths the bridge was asked. */
const idsAsked = (paths: string[]): string[][] =>
  paths.map((path) => new URL(path, 'http://bridge').searchParams.get('ids')?.split(',') ?? []);

test('the status of the servers named comes in one call; a server the VMS does not have is left out', async () => {
  const { service, bridge } = await seededBridge();
  await service.client.setServerState('fo-01', 'partitioned');
  const paths: string[] = [];
  service.server.on('request', (request: { url?: string }) => paths.push(request.url ?? ''));

  const statuses = await bridge.serverStatusesOf(['rec-01', 'fo-01', 'rec-99']);

  expect(statuses.map(({ serverId, role, reachable }) => ({ serverId, role, reachable }))).toEqual([
    { serverId: 'fo-01', role: 'standby', reachable: false },
    { serverId: 'rec-01', role: 'recorder', reachable: true },
  ]);
  expect(paths).toEqual(['/v1/servers/status?ids=rec-01,fo-01,rec-99']);
  // Nothing asked, nothing called: an empty ids would ask for every server.
  expect(await bridge.serverStatusesOf([])).toEqual([]);
  expect(paths).toHaveLength(1);
});

test('more servers than one call may name are asked in several calls, each server once', async () => {
  const { service, bridge } = await seededBridge();
  const paths: string[] = [];
  service.server.on('request', (request: { url?: string }) => paths.push(request.url ?? ''));
  const unknown = Array.from({ length: 2 * MAX_STATUS_IDS + 10 }, (_, index) => `rec-9${index}`);

  const statuses = await bridge.serverStatusesOf([...unknown, 'rec-01', 'fo-01', 'rec-01']);

  expect(statuses.map((status) => status.serverId).sort()).toEqual(['fo-01', 'rec-01']);
  const asked = idsAsked(paths);
  expect(asked.map((ids) => ids.length).sort((a, b) => b - a)).toEqual([MAX_STATUS_IDS, MAX_STATUS_IDS, 12]);
  expect(asked.flat().sort()).toEqual([...unknown, 'rec-01', 'fo-01'].sort());
});

test('without a site put, the simulator knows the servers named as it knows each one alone', async () => {
  await world.current.seed(TEST_SITE);
  const service = await startSimulatorService(world.current);
  const bridge = bridgeTo(service.url);

  const statuses = await bridge.serverStatusesOf(['rec-01', 'fo-01', 'rec-99']);

  expect(statuses.map(({ serverId, role, reachable }) => ({ serverId, role, reachable }))).toEqual([
    { serverId: 'fo-01', role: 'standby', reachable: true },
    { serverId: 'rec-01', role: 'recorder', reachable: true },
  ]);
  for (const status of statuses) {
    expect({ ...(await bridge.serverStatusOf(status.serverId)), observedAt: null }).toEqual({
      ...status,
      observedAt: null,
    });
  }
  expect(await rejectionOf(bridge.serverStatusOf('rec-99'))).toMatchObject({ code: 'unknown-server' });
});

test('malformed ids are refused as a malformed request', async () => {
  const { service } = await seededBridge();
  const transport = new BridgeTransport({ url: service.url, token: SIMULATOR_TOKEN });
  const statusOf = (query: string) =>
    rejectionOf(transport.call({ method: 'GET', path: `${BridgePaths.status}?${query}`, timeoutMs: 2_000 }));
  try {
    const refusals = await Promise.all(
      [
        'ids=',
        'ids=rec-01,,fo-01',
        'ids=rec%2001',
        'ids=.rec-01',
        `ids=${'r'.repeat(65)}`,
        `ids=${Array(MAX_STATUS_IDS + 1)
          .fill('rec-01')
          .join(',')}`,
        'ids=rec-01&ids=fo-01',
      ].map(statusOf),
    );

    for (const refusal of refusals) {
      expect(refusal).toBeInstanceOf(VmsRejected);
      expect(refusal).toMatchObject({ code: 'malformed-request' });
    }
  } finally {
    transport.close();
  }
});

test('a bridge written before the ids query answers every server: only the servers asked about are kept', async () => {
  const paths: string[] = [];
  const older = createHttpServer((request, response) => {
    paths.push(request.url ?? '');
    const [status, body] =
      new URL(request.url ?? '/', 'http://bridge').pathname === BridgePaths.status
        ? [200, { servers: ['fo-01', 'fo-02', 'rec-01', 'rec-02'].map((serverId) => statusJson(serverId)) }]
        : [404, { error: { code: 'not-found', message: `no path ${request.url}` } }];
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const port = await listen(older, 0, '127.0.0.1');
  try {
    const bridge = bridgeTo(`http://127.0.0.1:${port}`);
    const unknown = Array.from({ length: MAX_STATUS_IDS }, (_, index) => `rec-9${index}`);

    const few = await bridge.serverStatusesOf(['rec-02', 'fo-01', 'rec-99']);
    // Split over two calls, each answered with every server: each server asked about, once.
    const many = await bridge.serverStatusesOf([...unknown, 'rec-01', 'fo-02']);

    expect(few.map((status) => status.serverId)).toEqual(['fo-01', 'rec-02']);
    expect(many.map((status) => status.serverId).sort()).toEqual(['fo-02', 'rec-01']);
    expect(idsAsked(paths).map((ids) => ids.length)).toEqual([3, expect.any(Number), expect.any(Number)]);
    expect(idsAsked(paths.slice(1)).flat().sort()).toEqual([...unknown, 'rec-01', 'fo-02'].sort());
  } finally {
    await stopServer(older);
  }
});

test('each mutating call is applied once: the same request id again answers already-applied', async () => {
  const { service, bridge } = await seededBridge();
  const calls = [
    () => bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
    () =>
      bridge.rebindCameras({
        requestId: 'f1',
        cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
        toServerId: 'fo-01',
      }),
    () => bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' }),
    () => bridge.demoteToStandby({ requestId: 'f1', serverId: 'rec-01' }),
  ];

  for (const call of calls) {
    expect(await call()).toBe('applied');
    expect(await call()).toBe('already-applied');
  }
  // Another request for a change already made changes nothing either.
  expect(await bridge.fenceRecorder({ requestId: 'f2', serverId: 'fo-01' })).toBe('applied');
  expect(await bridge.demoteToStandby({ requestId: 'f2', serverId: 'rec-01' })).toBe('already-applied');

  const state = await service.client.state();
  expect(state.servers.find((server) => server.serverId === 'rec-01')).toMatchObject({
    role: 'standby',
    boundCameras: ['rec-01-analog-1'],
    recordedCameras: [],
  });
  expect(state.servers.find((server) => server.serverId === 'fo-01')).toMatchObject({
    role: 'recorder',
    fenced: true,
    replacesServerId: 'rec-01',
    boundCameras: ['rec-01-ip-1', 'rec-01-ip-2'],
  });
  const log = await service.client.calls();
  for (const operation of ['promote', 'rebind']) {
    expect(log.filter((call) => call.operation === operation).map((call) => call.outcome)).toEqual([
      'applied',
      'already-applied',
    ]);
  }
  expect(log.filter((call) => call.operation === 'demote').map((call) => call.outcome)).toEqual([
    'applied',
    'already-applied',
    'already-applied',
  ]);
});

test('a request id used again with another body is rejected and changes nothing', async () => {
  const { service, bridge } = await seededBridge();
  await bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' });
  await bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' });
  await bridge.rebindCameras({ requestId: 'f1', cameraIds: ['rec-01-ip-1'], toServerId: 'fo-01' });

  const error = await rejectionOf(
    bridge.rebindCameras({ requestId: 'f1', cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'], toServerId: 'fo-01' }),
  );

  expect(error).toBeInstanceOf(VmsRejected);
  expect(error).toMatchObject({ code: 'request-id-conflict' });
  expect((await service.simulator.cameraBindings()).get('rec-01-ip-2')).toBe('rec-01');
});

test('a 4xx answer is VmsRejected with its code, and changes nothing', async () => {
  const { service, bridge } = await seededBridge();
  const before = await service.client.state();

  const refusals = await Promise.all([
    rejectionOf(
      bridge.promoteToRecorder({ requestId: 'r1', serverId: 'nowhere', replacesServerId: 'rec-01' }),
    ),
    rejectionOf(
      bridge.promoteToRecorder({ requestId: 'r2', serverId: 'master', replacesServerId: 'rec-01' }),
    ),
    rejectionOf(bridge.rebindCameras({ requestId: 'r3', cameraIds: ['rec-01-ip-1'], toServerId: 'fo-01' })),
    rejectionOf(bridge.fenceRecorder({ requestId: 'r4', serverId: 'master' })),
    rejectionOf(
      bridge.rebindCameras({ requestId: 'r5', cameraIds: ['rec-01-analog-1'], toServerId: 'master' }),
    ),
    rejectionOf(
      bridge.rebindCameras({ requestId: 'r6', cameraIds: ['no-such-camera'], toServerId: 'master' }),
    ),
    rejectionOf(bridge.isServerUp('nowhere')),
  ]);

  expect(refusals.map((error) => [(error as Error).constructor.name, (error as VmsRejected).code])).toEqual([
    ['VmsRejected', 'unknown-server'],
    ['VmsRejected', 'not-a-standby'],
    ['VmsRejected', 'not-a-recorder'],
    ['VmsRejected', 'not-a-recorder'],
    ['VmsRejected', 'camera-not-ip'],
    ['VmsRejected', 'unknown-camera'],
    ['VmsRejected', 'unknown-server'],
  ]);
  expect(await service.client.state()).toEqual(before);
});

test('a server the VMS cannot reach is VmsUnavailable: a partitioned Slave cannot be fenced and keeps recording', async () => {
  const { service, bridge } = await seededBridge();
  await service.client.setServerState('fo-01', 'down');
  await service.client.setServerState('rec-01', 'partitioned');

  const promote = await rejectionOf(
    bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
  );
  const fence = await rejectionOf(bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' }));

  for (const error of [promote, fence]) {
    expect(error).toBeInstanceOf(VmsUnavailable);
    expect(error).toMatchObject({ code: 'server-unreachable' });
  }
  const state = await service.client.state();
  expect(state.servers.find((server) => server.serverId === 'rec-01')?.recordedCameras).toEqual([
    'rec-01-analog-1',
    'rec-01-ip-1',
    'rec-01-ip-2',
  ]);
  // Heard again, it is fenced: the retry with the same request id applies.
  await service.client.setServerState('rec-01', 'up');
  expect(await bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' })).toBe('applied');
});

test('a 5xx answer is VmsUnavailable', async () => {
  // A simulator whose database does not exist answers every protocol call with 500.
  const lost = createPool(testServerUrl('vms_no_such_database'), world.current.logger, { max: 1 });
  const server = createSimulatorServer({ simulator: new VmsSimulator(lost), logger: world.current.logger });
  const port = await listen(server, 0, '127.0.0.1');
  try {
    const error = await rejectionOf(bridgeTo(`http://127.0.0.1:${port}`).serverStatus());

    expect(error).toBeInstanceOf(VmsUnavailable);
    expect(error).toMatchObject({ code: 'internal' });
  } finally {
    await stopServer(server);
    await lost.end();
  }
});

test('a slow call and a hung call are VmsUnavailable within the configured timeout, and answered once lifted', async () => {
  const { service, bridge } = await seededBridge({ timeoutMs: 500 });
  await service.client.setCallFault('promote', { delayMs: 10_000 });
  await service.client.setCallFault('status', { hang: true });

  const slow = await timedRejection(() =>
    bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
  );
  const hung = await timedRejection(() => bridge.serverStatus());

  for (const { error, ms } of [slow, hung]) {
    expect(error).toBeInstanceOf(VmsUnavailable);
    expect(error).toMatchObject({ code: 'timeout' });
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(2_500);
  }
  await service.client.resetFaults();
  expect(
    await bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
  ).toBe('applied');
  expect(await bridge.serverStatus()).toHaveLength(3);
});

test('a refused connection is VmsUnavailable', async () => {
  const error = await rejectionOf(bridgeTo(`http://127.0.0.1:${await closedPort()}`).serverStatus());

  expect(error).toBeInstanceOf(VmsUnavailable);
  expect(error).toMatchObject({ code: 'connection-refused' });
});

test('a missing or wrong token is refused as VmsRejected, and nothing changes', async () => {
  const { service } = await seededBridge();
  const promote = (bridge: HttpVmsBridge) =>
    rejectionOf(bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }));

  const refusals = [
    await promote(bridgeTo(service.url, { token: 'not-the-token' })),
    await promote(new HttpVmsBridge({ url: service.url, timeoutMs: 2_000, installTimeoutMs: 2_000 })),
  ];

  for (const error of refusals) {
    expect(error).toBeInstanceOf(VmsRejected);
    expect(error).toMatchObject({ code: 'unauthorized' });
  }
  expect(await service.client.calls()).toEqual([]);
});

test('a plugin install is followed to its end with its progress; repeated, it is already applied', async () => {
  const { service, bridge } = await seededBridge();
  await service.client.setCallFault('install-plugin', { delayMs: 600 });
  const progress: number[] = [];
  const request = { requestId: 'f1', serverId: 'fo-01', plugin: 'ANPR+' };

  expect(await bridge.installPlugin(request, (percent) => progress.push(percent))).toBe('applied');
  expect(await bridge.installPlugin(request)).toBe('already-applied');

  expect(progress.length).toBeGreaterThan(2);
  expect(progress.at(-1)).toBe(100);
  expect(progress.slice(0, -1).every((percent) => percent >= 0 && percent < 100)).toBe(true);
  expect(progress).toEqual([...progress].sort((a, b) => a - b));
  expect((await service.simulator.calls('install-plugin')).map((call) => call.outcome)).toEqual([
    'applied',
    'already-applied',
  ]);
});

test('a failed install rejects with the installer message; a retry with the same request id is a new attempt', async () => {
  const { service, bridge } = await seededBridge();
  await service.client.failPluginInstalls('fo-01', 'ANPR+', 2);
  const request = { requestId: 'f1', serverId: 'fo-01', plugin: 'ANPR+' };

  for (let attempt = 1; attempt <= 2; attempt += 1) {
    const error = await rejectionOf(bridge.installPlugin(request));
    expect(error).toBeInstanceOf(PluginInstallFailed);
    expect((error as Error).message).toContain('installer exited with code 1603');
  }
  expect(await bridge.installPlugin(request)).toBe('applied');
  expect((await service.simulator.calls('install-plugin')).map((call) => call.outcome)).toEqual([
    'failed',
    'failed',
    'applied',
  ]);
});

test('a hung install: the client gives up at its install timeout, and a retry follows the same install', async () => {
  const { service, bridge } = await seededBridge({ installTimeoutMs: 400 });
  await service.client.setCallFault('install-plugin', { hang: true });

  const first = await timedRejection(() =>
    bridge.installPlugin({ requestId: 'f1', serverId: 'fo-01', plugin: 'ANPR+' }),
  );
  expect(first.error).toBeInstanceOf(VmsUnavailable);
  expect(first.error).toMatchObject({ code: 'install-timeout' });
  expect(first.ms).toBeLessThan(3_000);

  const patient = bridgeTo(service.url, { installTimeoutMs: 30_000 });
  const retry = patient.installPlugin({ requestId: 'f2', serverId: 'fo-01', plugin: 'ANPR+' });
  await service.client.setCallFault('install-plugin', null);

  expect(await retry).toBe('applied');
  const installs = await service.simulator.calls('install-plugin');
  expect(installs.map(({ requestId, outcome }) => ({ requestId, outcome }))).toEqual([
    { requestId: 'f1', outcome: 'applied' },
  ]);
});

test('calls reuse one kept-alive connection', async () => {
  const { service, bridge } = await seededBridge();
  let connections = 0;
  service.server.on('connection', () => (connections += 1));

  for (let call = 0; call < 5; call += 1) await bridge.serverStatus();

  expect(connections).toBe(1);
});

test('docs/vms-bridge.openapi.yaml has exactly the paths of the protocol, and docs/vms-bridge.md every error code', () => {
  const read = (path: string) => readFileSync(join(projectRoot(), path), 'utf8');
  const spec = parse(read('docs/vms-bridge.openapi.yaml')) as { openapi: string; paths: object };
  const templated = (path: (id: string) => string, name: string) => path('ID').replace('ID', `{${name}}`);

  expect(spec.openapi).toBe('3.1.0');
  expect(Object.keys(spec.paths).sort()).toEqual(
    [
      BridgePaths.health,
      BridgePaths.status,
      ...[
        BridgePaths.serverStatus,
        BridgePaths.promote,
        BridgePaths.fence,
        BridgePaths.demote,
        BridgePaths.rebindCameras,
      ].map((path) => templated(path, 'serverId')),
      templated(BridgePaths.pluginInstalls, 'serverId'),
      templated(BridgePaths.operation, 'operationId'),
      BridgePaths.calls,
    ].sort(),
  );
  const guide = read('docs/vms-bridge.md');
  expect(Object.keys(ERROR_STATUS).filter((code) => !guide.includes(`\`${code}\``))).toEqual([]);
});

describe('configuration', () => {
  test('VMS_BRIDGE_* settings load with their defaults, and bad ones are refused with the variable named', () => {
    // No bridge: the simulated site, served by the worker on its default port; a bridge replaces it.
    expect(loadConfig({}).vmsBridge).toEqual({
      timeoutMs: 10_000,
      installTimeoutMs: 1_800_000,
      embeddedSimulator: { enabled: true, port: 7280 },
    });
    expect(
      loadConfig({ VMS_BRIDGE_URL: 'http://127.0.0.1:7280', VMS_BRIDGE_TOKEN: 't', VMS_BRIDGE_TIMEOUT: '3s' })
        .vmsBridge,
    ).toEqual({
      url: 'http://127.0.0.1:7280',
      token: 't',
      timeoutMs: 3_000,
      installTimeoutMs: 1_800_000,
      embeddedSimulator: { enabled: false, port: 7280 },
    });
    expect(loadConfig({ NODE_ENV: 'production' }).vmsBridge.embeddedSimulator.enabled).toBe(false);
    for (const [env, message] of [
      [{ VMS_BRIDGE_URL: 'vms-bridge:7280' }, 'VMS_BRIDGE_URL="vms-bridge:7280" must look like'],
      [{ VMS_BRIDGE_TIMEOUT: 'soon' }, 'VMS_BRIDGE_TIMEOUT="soon" is not a duration'],
      [
        { VMS_BRIDGE_TLS_CA_PATH: '/nonexistent/ca.pem' },
        'VMS_BRIDGE_TLS_CA_PATH="/nonexistent/ca.pem" cannot be read',
      ],
    ] as const) {
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(message);
    }
  });

  describe('TLS with client certificates (mTLS)', () => {
    let dir: string;
    const pem = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'vms-bridge-tls-'));
      openssl(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=test-ca',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
      );
      for (const [name, extension] of [
        ['server', 'subjectAltName=IP:127.0.0.1'],
        ['client', 'extendedKeyUsage=clientAuth'],
      ] as const) {
        openssl(
          'req',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-subj',
          `/CN=${name}`,
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.csr`,
        );
        writeFileSync(pem(`${name}.ext`), `${extension}\n`);
        openssl(
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-days',
          '1',
          '-extfile',
          `${name}.ext`,
          '-out',
          `${name}.pem`,
        );
      }
    });

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('the bridge is called over HTTPS with the CA and client certificate of the configuration', async () => {
      const server = createSimulatorServer({
        simulator: new VmsSimulator(world.current.db),
        logger: world.current.logger,
        tls: {
          cert: readFileSync(pem('server.pem')),
          key: readFileSync(pem('server.key')),
          clientCa: readFileSync(pem('ca.pem')),
        },
      });
      const port = await listen(server, 0, '127.0.0.1');
      try {
        const config = loadConfig({
          VMS_BRIDGE_URL: `https://127.0.0.1:${port}`,
          VMS_BRIDGE_TLS_CA_PATH: pem('ca.pem'),
          VMS_BRIDGE_TLS_CERT_PATH: pem('client.pem'),
          VMS_BRIDGE_TLS_KEY_PATH: pem('client.key'),
        }).vmsBridge;
        const withCertificate = bridgeTo(config.url as string, config);
        const withoutCertificate = bridgeTo(config.url as string, { tls: { ca: config.tls?.ca as Buffer } });

        expect(await withCertificate.serverStatus()).toEqual([]);
        expect(await rejectionOf(withoutCertificate.serverStatus())).toBeInstanceOf(VmsUnavailable);
      } finally {
        await stopServer(server);
      }
    });
  });
});
