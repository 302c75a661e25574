/**
 * `vms simulator ...` and `vms bridge check`, run as child processes: the simulator served over HTTP and
 * stopped by SIGTERM, its faults injected from the command line, and the conformance check passing against
 * it and failing, with a report of what was expected and seen, against a deliberately broken bridge.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { HttpVmsBridge } from '../vms/http-bridge';
import { VmsSimulator } from '../vms/simulator';
import { listen, stopServer } from '../vms/simulator-server';
import { buildCli, closedPort, runCli, startCli } from './support/cli';
import type { CliProcess, CliResult } from './support/cli';
import { TEST_DATA_DIR } from './support/environment';
import { site, slave, standby } from './support/site';
import { eventually } from './support/wait';
import { useTestWorld } from './support/world';

const TOKEN = 'cli-simulator-token';
const world = useTestWorld();
let cliPath: string;
let workDir: string;
const children: CliProcess[] = [];
const servers: Server[] = [];

beforeAll(() => {
  cliPath = buildCli('cli-simulator-test');
  workDir = mkdtempSync(join(TEST_DATA_DIR, 'cli-simulator-'));
}, 180_000);

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null) child.child.kill('SIGKILL');
    await child.exited;
  }
  for (const server of servers.splice(0)) await stopServer(server);
});

const siteFile = (): string => {
  const path = join(workDir, `site-${randomUUID()}.yaml`);
  writeFileSync(
    path,
    stringify(site(slave({ id: 'rec-01', ipCameras: 2, analogCameras: 1 }), standby('fo-01'))),
  );
  return path;
};

/** `vms simulator serve --port 0` over the test's database; resolves once it listens, with its URL. */
const serveSimulator = async (): Promise<{ process: CliProcess; url: string }> => {
  const served = startCli(cliPath, world.current, ['simulator', 'serve', '--port', '0', '--token', TOKEN]);
  children.push(served);
  const url = await eventually('the simulator to listen', () => {
    if (served.child.exitCode !== null) throw new Error(`vms simulator serve exited:\n${served.stdout()}`);
    const line = served.logs().find((log) => log.msg === 'VMS simulator listening');
    return Promise.resolve(line?.url as string | undefined);
  });
  return { process: served, url };
};

const vms = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
  runCli(cliPath, world.current, args, env);

const statusOf = async (url: string) => {
  const bridge = new HttpVmsBridge({ url, token: TOKEN, timeoutMs: 5_000, installTimeoutMs: 5_000 });
  try {
    return await bridge.serverStatus();
  } finally {
    bridge.close();
  }
};

test('vms simulator serve answers the bridge protocol and stops on SIGTERM', async () => {
  const { process: served, url } = await serveSimulator();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(await statusOf(url)).toEqual([]);

  served.child.kill('SIGTERM');
  const { code } = await served.exited;

  expect(code).toBe(0);
  expect(served.logs().map((line) => line.msg)).toEqual(
    expect.arrayContaining(['VMS simulator listening', 'VMS simulator stopping', 'VMS simulator stopped']),
  );
  expect(
    served
      .stdout()
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('{')),
  ).toEqual([]);
});

test('seed, down, up, partition, slow, hang, fail-plugin, disks and reset-faults change the served site', async () => {
  const { url } = await serveSimulator();
  const simulator = new VmsSimulator(world.current.db);
  // The URL and token from the environment, as an operator sets them once.
  const env = { VMS_BRIDGE_URL: url, VMS_BRIDGE_TOKEN: TOKEN };
  const run = async (...args: string[]): Promise<string> => {
    const result = await vms(['simulator', ...args], env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    return result.stdout.trim();
  };

  expect(await run('seed', siteFile())).toMatch(/^Simulated site loaded from .*: 3 servers, 3 cameras\.$/);
  expect(await run('down', 'rec-01')).toBe('rec-01 is down.');
  expect(await run('partition', 'fo-01')).toBe('fo-01 is partitioned.');
  expect(
    (await statusOf(url)).filter((server) => !server.reachable).map((server) => server.serverId),
  ).toEqual(['fo-01', 'rec-01']);
  expect(await run('up', 'rec-01')).toBe('rec-01 is up.');
  expect(await run('slow', 'promote', '2s')).toBe('promote now takes 2000 ms.');
  expect(await run('hang', 'install-plugin')).toBe('install-plugin hangs.');
  expect(await run('fail-plugin', 'fo-01', 'ANPR+', '--times', '2')).toBe(
    'The next 2 installs of ANPR+ on fo-01 fail.',
  );
  expect(await run('disks', 'rec-01', 'D=broken', 'E=ok')).toBe('rec-01 reports D=broken E=ok.');

  expect(await simulator.callFault('promote')).toEqual({ delayMs: 2_000 });
  expect(await simulator.callFault('install-plugin')).toEqual({ hang: true });
  expect((await statusOf(url)).find((server) => server.serverId === 'rec-01')).toMatchObject({
    reachable: true,
    recording: true,
    disks: [
      { letter: 'C', healthy: true },
      { letter: 'D', healthy: false },
      { letter: 'E', healthy: true },
    ],
  });

  expect(await run('reset-faults')).toBe('Every fault is lifted.');
  expect(await simulator.callFault('promote')).toBeNull();
  expect(
    (await statusOf(url)).every((server) => server.reachable && server.disks.every((d) => d.healthy)),
  ).toBe(true);
  const installs = await world.current.db.query('SELECT 1 FROM vms_sim.plugin_install_faults');
  expect(installs.rowCount).toBe(0);
});

test('bad input exits 2 and changes nothing; a simulator that does not answer exits 3', async () => {
  const { url } = await serveSimulator();
  const at = ['--url', url, '--token', TOKEN];
  expect((await vms(['simulator', 'seed', siteFile(), ...at])).code).toBe(0);
  const badSite = join(workDir, 'bad-site.yaml');
  writeFileSync(badSite, 'servers:\n  - id: rec-09\n    role: recorder\n');
  const before = await statusOf(url);

  const refused = await Promise.all([
    vms(['simulator', 'slow', 'reboot', '1s', ...at]),
    vms(['simulator', 'down', 'nowhere', ...at]),
    vms(['simulator', 'disks', 'rec-01', 'D=melted', ...at]),
    vms(['simulator', 'seed', join(workDir, 'missing.yaml'), ...at]),
    vms(['simulator', 'seed', badSite, ...at]),
    vms(['simulator', 'down', 'rec-01', '--url', url, '--token', 'wrong']),
  ]);

  expect(refused.map((result) => result.code)).toEqual([2, 2, 2, 2, 2, 2]);
  expect(refused.map((result) => result.stderr.trim())).toEqual([
    expect.stringContaining(
      "value 'reboot' is invalid for argument 'operation'. Allowed choices are health,",
    ),
    'vms: error: the VMS has no server nowhere (PUT /v1/simulator/servers/nowhere/state)',
    expect.stringContaining('disk state "melted" must be ok or broken'),
    expect.stringContaining('missing.yaml: no such file'),
    expect.stringMatching(/bad-site\.yaml:3:11: servers\[0\]\.role: must be one of/),
    expect.stringContaining('a valid bearer token is required'),
  ]);
  const withoutTime = (status: Awaited<ReturnType<typeof statusOf>>) =>
    status.map(({ observedAt: _at, ...server }) => server);
  expect(withoutTime(await statusOf(url))).toEqual(withoutTime(before));

  const unreachable = await vms([
    'simulator',
    'reset-faults',
    '--url',
    `http://127.0.0.1:${await closedPort()}`,
  ]);
  expect(unreachable.code).toBe(3);
  expect(unreachable.stderr).toMatch(
    /^vms: error: the VMS simulator at http:\/\/127\.0\.0\.1:\d+ did not answer/,
  );
});

const checkArgs = (url: string, ...extra: string[]) => [
  'bridge',
  'check',
  url,
  '--standby',
  'fo-01',
  '--slave',
  'rec-01',
  '--camera',
  'rec-01-ip-1',
  '--camera',
  'rec-01-ip-2',
  ...extra,
];

test('vms bridge check passes against the simulator', async () => {
  const { url } = await serveSimulator();
  expect((await vms(['simulator', 'seed', siteFile(), '--url', url, '--token', TOKEN])).code).toBe(0);

  const result = await vms(checkArgs(url, '--token', TOKEN));

  const lines = result.stdout.trim().split('\n');
  expect(lines.filter((line) => !line.startsWith('PASS  '))).toEqual([
    `${lines.length - 1} checks: ${lines.length - 1} passed, 0 failed, 0 skipped`,
  ]);
  expect(lines.length).toBeGreaterThan(20);
  expect(result.code).toBe(0);
  // It did what it says: the standby records the cameras, the Slave is a fenced standby.
  const state = await new VmsSimulator(world.current.db).state();
  expect(state.servers.find((server) => server.serverId === 'fo-01')).toMatchObject({
    role: 'recorder',
    recordedCameras: ['rec-01-ip-1', 'rec-01-ip-2'],
  });
  expect(state.servers.find((server) => server.serverId === 'rec-01')).toMatchObject({
    role: 'standby',
    recordedCameras: [],
  });
  expect(state.plugins).toContainEqual({ serverId: 'fo-01', plugin: 'vms-bridge-check' });
});

/**
 * A bridge that gets the contract wrong: it asks for no token, answers every call "applied" however often
 * it is repeated, takes an unknown server for an internal error, starts a new install on every start, and
 * takes a second and a half to demote.
 */
const brokenBridge = async (): Promise<string> => {
  const send = (response: ServerResponse, status: number, body: unknown): void => {
    if (!response.destroyed) {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    const path = request.url ?? '';
    const observedAt = new Date().toISOString();
    if (path === '/v1/health') return send(response, 200, { status: 'ok' });
    if (path === '/v1/servers/status') {
      return send(response, 200, {
        servers: ['fo-01', 'rec-01'].map((serverId) => ({
          serverId,
          role: 'recorder',
          reachable: true,
          recording: true,
          disks: [],
          observedAt,
        })),
      });
    }
    if (path.includes('bridge-check-unknown')) {
      return send(response, 500, { error: { code: 'internal', message: 'something went wrong' } });
    }
    if (path.endsWith('/plugin-installs')) {
      return send(response, 202, {
        operationId: randomUUID(),
        requestId: 'any',
        serverId: 'fo-01',
        plugin: 'vms-bridge-check',
        status: 'running',
        progress: 0,
        outcome: null,
        message: null,
      });
    }
    if (path.endsWith('/demote')) {
      setTimeout(() => send(response, 200, { outcome: 'applied' }), 1_500);
      return undefined;
    }
    if (request.method === 'POST') return send(response, 200, { outcome: 'applied' });
    return send(response, 404, { error: { code: 'not-found', message: path } });
  });
  servers.push(server);
  return `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
};

test('vms bridge check fails against a broken bridge and says what was expected and seen', async () => {
  const url = await brokenBridge();

  const result = await vms(checkArgs(url, '--token', TOKEN, '--timeout', '500ms', '--install-timeout', '1s'));

  expect(result.code).toBe(1);
  const lines = result.stdout.trim().split('\n');
  const line = (check: string) => lines.find((candidate) => candidate.includes(`  ${check}:`));
  expect(line('health')).toMatch(/^PASS  health: 200 \{"status":"ok"\} in \d+ ms$/);
  expect(line('a call without the token is refused')).toMatch(
    /^FAIL  a call without the token is refused: expected 401 \{"error": \{"code": "unauthorized", \.\.\.\}\}; seen 200 /,
  );
  expect(line('a call about an unknown server is refused')).toMatch(
    /^FAIL  .*: expected 404 \{"error": \{"code": "unknown-server", \.\.\.\}\}; seen 500 \{"error":\{"code":"internal"/,
  );
  expect(line('promote fo-01 in place of rec-01')).toMatch(/^PASS /);
  expect(line('promote fo-01 in place of rec-01, repeated with the same request id')).toMatch(
    /^FAIL  .*: expected 200 \{"outcome":"already-applied"\}; seen 200 \{"outcome":"applied"\} in \d+ ms$/,
  );
  // It takes POST /v1/calls for a promotion: an answer without the calls' answers.
  expect(line('several calls in one request, answered in order')).toMatch(
    /^FAIL  .*; seen 200 \{"outcome":"applied"\} in \d+ ms$/,
  );
  expect(line('plugin install started again with the same request id')).toMatch(
    /^FAIL  .*; seen 202 \{"operationId":"[0-9a-f-]+"/,
  );
  expect(line('demote rec-01 to standby')).toMatch(
    /^FAIL  .*; seen the VMS bridge did not answer POST \/v1\/servers\/rec-01\/demote within 500 ms$/,
  );
  expect(line('every answer within 500 ms')).toMatch(/^FAIL  .*; seen \d+ calls got no answer in time/);
  expect(lines.at(-1)).toMatch(/^\d+ checks: \d+ passed, \d+ failed, 0 skipped$/);
  expect(result.stderr.trim()).toMatch(/^vms: error: \d+ of \d+ checks failed$/);
});

test('vms bridge check of a bridge that does not answer exits 3', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;

  const result = await vms(checkArgs(url));

  expect(result.code).toBe(3);
  expect(result.stdout).toMatch(
    /^FAIL  health: expected 200 with a JSON body; seen the VMS bridge at .* is unreachable/,
  );
  expect(result.stderr).toContain(`vms: error: the VMS bridge at ${url} did not answer`);
});

test('the simulator and bridge commands have --help, and the check says it is destructive', async () => {
  for (const command of [['simulator'], ['simulator', 'serve'], ['simulator', 'slow'], ['bridge', 'check']]) {
    const result = await vms([...command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: vms/);
  }
  expect((await vms(['bridge', 'check', '--help'])).stdout).toContain('DESTRUCTIVE');
});
