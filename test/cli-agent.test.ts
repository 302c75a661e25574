/**
 * The heartbeat agent, `vms agent`, run as a child process as it runs on each Slave: it keeps a Slave out
 * of Broken recorders past its timeout, reports broken disks, keeps trying when a send fails, and stops
 * cleanly on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildCli, closedPort, runCli, startCli } from './support/cli';
import type { CliProcess } from './support/cli';
import { TEST_DATA_DIR } from './support/environment';
import { site, slave, standby } from './support/site';
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

const startAgent = (...args: string[]): CliProcess => {
  const agent = startCli(cliPath, world.current, ['agent', ...args]);
  agents.push(agent);
  return agent;
};

/** The agent is connected to Temporal, and was told that the Slave has no monitor (yet). */
const notMonitoredReported = (agent: CliProcess) =>
  eventually('the agent to report a heartbeat refused for lack of a monitor', () =>
    Promise.resolve(
      agent
        .logs()
        .some(
          (line) =>
            line.msg === 'Heartbeat not sent: trying again next tick' &&
            /is not monitored/.test(String(line.err)),
        )
        ? true
        : undefined,
    ),
  );

const stopAgent = async (agent: CliProcess) => {
  agent.child.kill('SIGTERM');
  return agent.exited;
};

test('heartbeats keep a Slave monitoring past its timeout; SIGTERM stops the agent cleanly', async () => {
  const { seed, withWorker, fleet } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));

  const { state, stopped } = await withWorker(async () => {
    const agent = startAgent('--server', 'rec-01', '--interval', '200ms');
    // The monitor starts once the agent is connected, as when the agent runs before protection is enabled.
    await notMonitoredReported(agent);
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
  expect(state.heartbeatsReceived).toBeGreaterThan(10);
  expect(stopped.code).toBe(0);
  expect(stopped.stderr).toBe('');
  const messages = stopped.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  expect(messages).toEqual(
    expect.arrayContaining([
      'Heartbeat agent started',
      'Heartbeats reaching the monitor',
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
    const oneBroken = await runCli(cliPath, world.current, [
      'agent',
      ...[
        '--server',
        'rec-01',
        '--interval',
        '100ms',
        '--count',
        '1',
        '--disk',
        'D=ok',
        '--disk',
        'E=broken',
      ],
    ]);
    expect(oneBroken.code).toBe(0);
    const degradedState = await monitorReaches(
      world.current,
      'rec-01',
      (state) => state.brokenDisks.length > 0,
    );

    const allBroken = await runCli(cliPath, world.current, [
      'agent',
      ...[
        '--server',
        'rec-01',
        '--interval',
        '100ms',
        '--count',
        '1',
        '--disk',
        'D=broken',
        '--disk',
        'E=broken',
      ],
    ]);
    expect(allBroken.code).toBe(0);
    const result = await failoverOf(world.current, 'rec-01');
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
      const result = await runCli(cliPath, world.current, [
        'agent',
        ...['--server', 'rec-01', '--interval', '100ms', '--count', '1'],
        ...['--drive', `D=${mounts}`, '--drive', `E=${join(mounts, 'not-mounted')}`],
      ]);
      expect(result.code).toBe(0);
      return monitorReaches(world.current, 'rec-01', (candidate) => candidate.heartbeatsReceived === 1);
    });
    expect(state).toMatchObject({ phase: 'monitoring', brokenDisks: ['E'] });
  } finally {
    rmSync(mounts, { recursive: true, force: true });
  }
});

test('a failed send is logged and tried again on the next tick, until the monitor is there', async () => {
  const { seed, withWorker, fleet } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' })));

  const state = await withWorker(async () => {
    const agent = startAgent('--server', 'rec-01', '--interval', '100ms');
    await notMonitoredReported(agent);
    await fleet.startMonitor('rec-01');
    const reached = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) => candidate.heartbeatsReceived >= 2,
    );
    expect((await stopAgent(agent)).code).toBe(0);
    const failure = agent.logs().find((line) => line.msg === 'Heartbeat not sent: trying again next tick');
    expect(failure?.err).toBe(
      '"rec-01" is not monitored: start its monitor first (vms monitor start rec-01)',
    );
    return reached;
  });

  expect(state.phase).toBe('monitoring');
});

test('with --count, heartbeats that could not be sent make the agent exit non-zero', async () => {
  const port = await closedPort();
  const result = await runCli(
    cliPath,
    world.current,
    ['agent', '--server', 'rec-01', '--interval', '100ms', '--count', '1'],
    { TEMPORAL_ADDRESS: `127.0.0.1:${port}` },
  );
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(
    new RegExp(
      `^vms: error: 1 of 1 heartbeats were not sent \\(last: Temporal at 127\\.0\\.0\\.1:${port} is unreachable: .*\\)\\n$`,
    ),
  );
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
