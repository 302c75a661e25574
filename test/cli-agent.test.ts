/**
 * The heartbeat agent, `vms agent`, run as a child process as it runs on each Slave: it heartbeats to the
 * gateway with its own server's token, keeps a Slave out of Broken recorders past its timeout, reports broken
 * disks, keeps trying when a send fails, and stops cleanly on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readLeases } from '../store/leases';
import { buildCli, closedPort, runCli, startCli } from './support/cli';
import type { CliProcess } from './support/cli';
import { failoverRows } from './support/db';
import { TEST_DATA_DIR } from './support/environment';
import { site, slave, standby } from './support/site';
import { startTcpProxy } from './support/tcp-proxy';
import { eventually, failoverOf, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();
let cliPath: string;
const agents: CliProcess[] = [];

beforeAll(() => {
  cliPath = buildCli('cli-agent-test');
}, 120_000);

afterEach(async () => {
  for (const agent of agents.splice(0)) {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await agent.exited;
  }
});

const gatewayUrl = (): string => `http://127.0.0.1:${world.current.liveness.gateway.address()?.port}`;

/** What an agent on `serverId` is configured with: its gateway and its own token. */
const agentEnv = async (serverId: string, gateway = gatewayUrl()): Promise<Record<string, string>> => ({
  VMS_GATEWAY_URL: gateway,
  VMS_AGENT_TOKEN: await world.current.agents.tokenOf(serverId),
});

const startAgent = (env: Record<string, string>, ...args: string[]): CliProcess => {
  const agent = startCli(cliPath, world.current, ['agent', ...args], env);
  agents.push(agent);
  return agent;
};

const runAgent = async (serverId: string, ...args: string[]) =>
  runCli(cliPath, world.current, ['agent', '--server', serverId, ...args], await agentEnv(serverId));

const logged = (agent: CliProcess, what: string, matches: (line: Record<string, unknown>) => boolean) =>
  eventually(what, () => Promise.resolve(agent.logs().some(matches) ? true : undefined));

const stopAgent = async (agent: CliProcess) => {
  agent.child.kill('SIGTERM');
  return agent.exited;
};

test('heartbeats keep a Slave monitoring past its timeout; SIGTERM stops the agent cleanly', async () => {
  const { seed, withWorker, fleet, db, liveness } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));

  const { state, stopped } = await withWorker(async () => {
    const agent = startAgent(await agentEnv('rec-01'), '--server', 'rec-01', '--interval', '200ms');
    // The monitor starts once the agent is heard, as when the agent runs before protection is enabled.
    await logged(
      agent,
      'the agent to reach the gateway',
      (line) => line.msg === 'Heartbeats reaching the gateway',
    );
    await fleet.startMonitor('rec-01');
    // Alive for three timeouts: without the agent it would have failed over after the first.
    const alive = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) =>
        (candidate.lastHeartbeatAtMs ?? 0) - candidate.sinceMs > 3 * candidate.settings.timeoutMs,
    );
    return { state: alive, stopped: await stopAgent(agent) };
  });

  expect(state).toMatchObject({ phase: 'monitoring', broken: null, brokenDisks: [] });
  expect(liveness.gateway.stats.accepted).toBeGreaterThan(10);
  expect(await failoverRows(db)).toEqual([]);
  expect(stopped.code).toBe(0);
  expect(stopped.stderr).toBe('');
  const messages = stopped.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  expect(messages).toEqual(
    expect.arrayContaining([
      'Heartbeat agent started',
      'Heartbeats reaching the gateway',
      'Heartbeat agent stopping',
      'Heartbeat agent stopped',
    ]),
  );
});

test('disks stated broken are reported, and all material disks broken fail the Slave over', async () => {
  const { seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const { degraded, failover, broken } = await withWorker(async () => {
    expect((await runCli(cliPath, world.current, ['monitor', 'start', 'rec-01'])).code).toBe(0);
    const oneBroken = await runAgent(
      'rec-01',
      ...['--interval', '100ms', '--count', '1', '--disk', 'D=ok', '--disk', 'E=broken'],
    );
    expect(oneBroken.code).toBe(0);
    const degradedState = await monitorReaches(
      world.current,
      'rec-01',
      (state) => state.brokenDisks.length > 0,
    );

    const allBroken = await runAgent(
      'rec-01',
      ...['--interval', '100ms', '--count', '1', '--disk', 'D=broken', '--disk', 'E=broken'],
    );
    expect(allBroken.code).toBe(0);
    const result = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    return {
      degraded: degradedState,
      failover: result,
      broken: await world.current.fleet.monitorState('rec-01'),
    };
  });

  expect(degraded).toMatchObject({ phase: 'monitoring', brokenDisks: ['E'] });
  expect(failover).toMatchObject({ slaveId: 'rec-01', failoverServerId: 'fo-01' });
  expect(broken?.broken?.reason).toBe('all-disks-broken');
});

test('--drive checks the real file system: a missing mount point is a broken disk', async () => {
  const { seed, withWorker, fleet } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' })));
  const mounts = mkdtempSync(join(TEST_DATA_DIR, 'agent-drives-'));
  try {
    const state = await withWorker(async () => {
      await fleet.startMonitor('rec-01');
      const result = await runAgent(
        'rec-01',
        ...['--interval', '100ms', '--count', '1'],
        ...['--drive', `D=${mounts}`, '--drive', `E=${join(mounts, 'not-mounted')}`],
      );
      expect(result.code).toBe(0);
      return monitorReaches(world.current, 'rec-01', (candidate) => candidate.brokenDisks.length > 0);
    });
    expect(state).toMatchObject({ phase: 'monitoring', brokenDisks: ['E'] });
  } finally {
    rmSync(mounts, { recursive: true, force: true });
  }
});

test('a failed send is logged and tried again on the next tick, until the gateway answers', async () => {
  const { seed, withWorker, fleet, db, liveness } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' })));

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    // The agent's way to the gateway is cut as it starts (the Master rebooting, a network change).
    const address = liveness.gateway.address();
    const route = await startTcpProxy({ host: '127.0.0.1', port: address?.port ?? 0 });
    try {
      await route.cut();
      const agent = startAgent(
        await agentEnv('rec-01', `http://127.0.0.1:${route.port}`),
        ...['--server', 'rec-01', '--interval', '100ms'],
      );
      await logged(
        agent,
        'a failed send to be logged',
        (line) => line.msg === 'Heartbeat not sent: trying again next tick',
      );
      expect(await readLeases(db, ['rec-01'])).toEqual([]);
      await route.restore();
      await logged(
        agent,
        'the agent to reach the gateway after failures',
        (line) => line.msg === 'Heartbeats reaching the gateway' && Number(line.afterFailures) > 0,
      );
      await eventually(
        'the heartbeat of rec-01 in its lease',
        async () => (await readLeases(db, ['rec-01']))[0],
      );
      expect((await stopAgent(agent)).code).toBe(0);
      const failure = agent.logs().find((line) => line.msg === 'Heartbeat not sent: trying again next tick');
      expect(failure?.err).toMatch(
        new RegExp(`^no gateway took the heartbeat \\(http://127\\.0\\.0\\.1:${route.port}: `),
      );
    } finally {
      await route.close();
    }
  });
});

test('with --count, heartbeats that could not be sent make the agent exit non-zero', async () => {
  const port = await closedPort();
  const result = await runCli(
    cliPath,
    world.current,
    ['agent', '--server', 'rec-01', '--interval', '100ms', '--count', '1'],
    { VMS_GATEWAY_URL: `http://127.0.0.1:${port}`, VMS_AGENT_TOKEN: 'a-token-nobody-checks' },
  );
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(
    new RegExp(
      `^vms: error: 1 of 1 heartbeats were not sent \\(last: no gateway took the heartbeat \\(http://127\\.0\\.0\\.1:${port}: .*\\)\\)\\n$`,
    ),
  );
});

test("a heartbeat the gateway refuses (another server's token) makes the agent exit 2", async () => {
  const { seed, startLiveness } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), slave({ id: 'rec-02', timeout: '1h' })));
  await startLiveness();
  const result = await runCli(
    cliPath,
    world.current,
    ['agent', '--server', 'rec-01', '--interval', '100ms', '--count', '1'],
    await agentEnv('rec-02'),
  );
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(
    /^vms: error: 1 of 1 heartbeats were not sent \(last: this token is for "rec-02"/,
  );
  expect(world.current.liveness.gateway.stats.refused.forbidden).toBe(1);
});

test('bad agent options are refused before anything is sent', async () => {
  const cases: [string[], RegExp][] = [
    [['--server', 'rec-01', '--disk', 'D=maybe'], /disk state "maybe" must be ok or broken/],
    [
      ['--server', 'rec-01', '--disk', 'D=ok', '--drive', 'E=/mnt/e'],
      /give --disk \(stated\) or --drive \(checked\), not both/,
    ],
    [['--server', 'rec-01', '--interval', 'often'], /"often" is not a duration/],
    [['--server', 'rec-01', '--disk', '1=ok'], /"1" is not a drive letter/],
    [['--interval', '5s'], /required option '--server <id>' not specified/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(cliPath, world.current, ['agent', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^vms: error: .*${message.source}.*\\n$`));
  }
});
