/**
 * Runs the built `vms` CLI as a child process against a test world: its database, site id and task queue,
 * while the test runs a worker in-process. The CLI is built once per test file into a private directory,
 * so a test never reads a dist/ that another build is rewriting.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { temporalConnectionEnv } from '../../infra/config';
import { projectRoot } from '../../infra/paths';
import { TEST_DATA_DIR } from './environment';
import type { TestContext } from './world';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  /** The JSON log lines the agent wrote to stdout. */
  logs(): { msg?: string; [field: string]: unknown }[];
  exited: Promise<CliResult>;
}

/** Builds the CLI for one test file; call from beforeAll. Returns the path of cli.js. */
export const buildCli = (name: string): string => {
  const outDir = join(TEST_DATA_DIR, `${name}-dist`);
  mkdirSync(TEST_DATA_DIR, { recursive: true });
  rmSync(outDir, { recursive: true, force: true });
  const cli = join(outDir, 'client', 'cli.js');
  try {
    execFileSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir],
      { cwd: projectRoot(), stdio: 'pipe' },
    );
  } catch (error) {
    // tsc emits even with type errors in files being edited elsewhere; only a missing CLI is fatal.
    if (!existsSync(cli)) throw error;
  }
  return cli;
};

/** The environment of `vms` for this test: the world's database, site, task queue and failover tuning. */
export const cliEnv = (world: TestContext, overrides: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const { failover } = world.config;
  return {
    PATH: process.env.PATH,
    ...temporalConnectionEnv(),
    DATABASE_URL: world.databaseUrl,
    VMS_SITE: world.site,
    TEMPORAL_TASK_QUEUE: world.taskQueue,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    // Failovers started from monitors the CLI starts use the same quick retries as the test worker.
    PLUGIN_RETRY_INITIAL: `${failover.pluginRetryInitialMs}ms`,
    PLUGIN_RETRY_MAX_INTERVAL: `${failover.pluginRetryMaxIntervalMs}ms`,
    PLUGIN_RETRY_MAX_ATTEMPTS: String(failover.pluginRetryMaxAttempts),
    PROMOTED_SERVER_UP_TIMEOUT: `${failover.serverUpTimeoutMs}ms`,
    FAILOVER_STANDBY_RECHECK: `${failover.standbyRecheckMs}ms`,
    ...(failover.standbyChecksPerRun !== undefined && {
      FAILOVER_STANDBY_CHECKS_PER_RUN: String(failover.standbyChecksPerRun),
    }),
    ...overrides,
  };
};

/** Runs `vms ARGS...` to its end. Asynchronous: the worker of the test runs in this process meanwhile. */
export const runCli = (
  cliPath: string,
  world: TestContext,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, ...args],
      { cwd: projectRoot(), env: cliEnv(world, env), timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });

const parseLogs = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; [field: string]: unknown });

/** Starts a long-running `vms` command (the agent); the caller stops it with a signal. */
export const startCli = (
  cliPath: string,
  world: TestContext,
  args: string[],
  env: Record<string, string> = {},
): CliProcess => {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: projectRoot(),
    env: cliEnv(world, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliResult>((resolve) =>
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
  return { child, stdout: () => stdout, logs: () => parseLogs(stdout), exited };
};

export const logsOf = parseLogs;

/**
 * Ports for closedPort(): below the dev servers' (support/temporal-dev-server.ts) and below Linux's ephemeral
 * range, so that no server binding port 0 and no dev server of another test file is ever handed one.
 */
const CLOSED_PORTS = { from: 20_000, to: 24_999 };

const refusesConnections = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });

/** A local TCP port nothing listens on, and nothing of the tests will: a service "down" at a known address. */
export const closedPort = async (): Promise<number> => {
  for (;;) {
    const port = CLOSED_PORTS.from + Math.floor(Math.random() * (CLOSED_PORTS.to - CLOSED_PORTS.from + 1));
    if (await refusesConnections(port)) return port;
  }
};
