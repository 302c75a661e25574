/**
 * The worker service (`workers/main.js`) run as a child process, the way it runs on the Master, so that a
 * test can kill it for real. The build is private to the test run (another build may rewrite dist/) and
 * shared by the test files: the first one to need it compiles it, under a lock directory.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../infra/paths';
import { TEST_DATA_DIR, temporalAddress } from './environment';
import { eventually } from './wait';

const BUILD_DIR = join(TEST_DATA_DIR, 'service-dist');
const BUILT_MARKER = join(BUILD_DIR, '.built');
const BUILD_LOCK = join(TEST_DATA_DIR, 'service-dist.lock');
const SOURCE_DIRS = ['domain', 'infra', 'vms', 'activities', 'workflows', 'workers', 'client', 'bench'];
export const SERVICE_MAIN = join(BUILD_DIR, 'workers', 'main.js');

const newestSourceMs = (): number => {
  let newest = 0;
  const visit = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of SOURCE_DIRS) visit(join(projectRoot(), dir));
  return newest;
};

const upToDate = (): boolean =>
  existsSync(BUILT_MARKER) && statSync(BUILT_MARKER).mtimeMs >= newestSourceMs();

const tryLock = (): boolean => {
  try {
    mkdirSync(BUILD_LOCK);
    return true;
  } catch {
    return false;
  }
};

/** Compiles the service once for every test file that needs it. */
export const buildService = async (): Promise<void> => {
  mkdirSync(TEST_DATA_DIR, { recursive: true });
  await eventually('the service build lock', () => Promise.resolve(tryLock() || undefined), {
    timeoutMs: 180_000,
    intervalMs: 200,
  });
  try {
    if (upToDate()) return;
    const startedAt = Date.now();
    rmSync(BUILD_DIR, { recursive: true, force: true });
    try {
      execFileSync(
        process.execPath,
        [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR],
        { cwd: projectRoot(), stdio: 'pipe' },
      );
    } catch (error) {
      // tsc emits even with type errors in files being edited elsewhere; only a missing service is fatal.
      if (!existsSync(SERVICE_MAIN)) throw error;
    }
    writeFileSync(BUILT_MARKER, '');
    // The marker must not look older than sources saved while the build ran.
    const now = new Date(Math.max(Date.now(), startedAt));
    utimesSync(BUILT_MARKER, now, now);
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
};

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr. */
  output(): string;
  /** The JSON log lines written to stdout. */
  logs(): LogLine[];
  exited: Promise<number | null>;
  /** Resolves once the worker polls its task queue. */
  ready(): Promise<void>;
  /** SIGKILL: no shutdown, no cleanup, in-flight work lost. Resolves once the process is gone. */
  kill(): Promise<void>;
}

const running = new Set<ServiceProcess>();

export const startService = (env: Record<string, string>): ServiceProcess => {
  const readyFile = join(TEST_DATA_DIR, `service-ready-${randomUUID()}`);
  const child = spawn(process.execPath, [SERVICE_MAIN], {
    cwd: projectRoot(),
    env: {
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: temporalAddress(),
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      METRICS_PORT: '0',
      WORKER_READY_FILE: readyFile,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      rmSync(readyFile, { force: true });
      resolve(code);
    }),
  );
  const service: ServiceProcess = {
    child,
    output: () => `${stdout}${stderr}`,
    logs: () =>
      stdout.split('\n').flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      }),
    exited,
    ready: async () => {
      await eventually(
        'the worker service to become ready',
        () => {
          if (child.exitCode !== null) {
            throw new Error(`the worker service exited with ${child.exitCode}:\n${service.output()}`);
          }
          return Promise.resolve(existsSync(readyFile) ? true : undefined);
        },
        { timeoutMs: 90_000, intervalMs: 100 },
      );
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      running.delete(service);
    },
  };
  running.add(service);
  return service;
};

/** Kills every service a test left running (call from afterEach). */
export const killAllServices = async (): Promise<void> => {
  await Promise.all([...running].map((service) => service.kill()));
};
