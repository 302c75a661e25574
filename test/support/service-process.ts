/**
 * The worker service (`workers/main.js`) run as a child process, the way it runs on the Master, so that a
 * test can kill it for real. The build is private to the tests (another build may rewrite dist/) and shared
 * by the test files: the first one to need it compiles it, under a lock directory.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { temporalConnectionEnv } from '../../infra/config';
import { projectRoot } from '../../infra/paths';
import { TEST_DATA_DIR } from './environment';
import { eventually } from './wait';

const BUILDS_DIR = join(TEST_DATA_DIR, 'service-builds');
const LATEST = join(BUILDS_DIR, 'latest');
const BUILD_LOCK = join(TEST_DATA_DIR, 'service-builds.lock');
/** The directories the build compiles: a source saved in any of them makes the next test file build again. */
const SOURCE_DIRS = (
  JSON.parse(readFileSync(join(projectRoot(), 'tsconfig.build.json'), 'utf8')) as { include: string[] }
).include;
/** Builds older than this are removed; a test file never runs that long. */
const STALE_BUILD_MS = 3_600_000;

/** The service this test file runs, set by buildService(). */
let serviceMain: string | undefined;

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

const LOCK_OWNER = join(BUILD_LOCK, 'owner');
/** A build takes minutes on a loaded machine; a lock held far longer was left by a run that was killed. */
const STALE_LOCK_MS = 10 * 60_000;
/** Between taking the lock and naming its owner, a lock has no owner for a moment. */
const UNNAMED_LOCK_GRACE_MS = 30_000;

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Left by a process that no longer runs, or held for longer than any build takes. */
const isStale = (): boolean => {
  try {
    const ageMs = Date.now() - statSync(BUILD_LOCK).mtimeMs;
    if (ageMs > STALE_LOCK_MS) return true;
    if (!existsSync(LOCK_OWNER)) return ageMs > UNNAMED_LOCK_GRACE_MS;
    const owner = Number(readFileSync(LOCK_OWNER, 'utf8'));
    return Number.isSafeInteger(owner) && owner > 0 && !isAlive(owner);
  } catch {
    // Released while it was being looked at: not stale, free.
    return false;
  }
};

const tryLock = (): boolean => {
  try {
    mkdirSync(BUILD_LOCK);
    writeFileSync(LOCK_OWNER, String(process.pid));
    return true;
  } catch {
    if (isStale()) {
      // Moved aside rather than deleted: of two processes finding it stale, only one moves it.
      try {
        renameSync(BUILD_LOCK, `${BUILD_LOCK}.stale-${randomUUID()}`);
      } catch {
        return false;
      }
    }
    return false;
  }
};

/** The newest build, if it is newer than every source file. */
const upToDateBuild = (): string | undefined => {
  if (!existsSync(LATEST)) return undefined;
  const dir = join(BUILDS_DIR, readFileSync(LATEST, 'utf8').trim());
  const main = join(dir, 'workers', 'main.js');
  return existsSync(main) && statSync(LATEST).mtimeMs >= newestSourceMs() ? main : undefined;
};

/**
 * Compiles the service once for every test file that needs it. Each build goes to a directory of its own
 * and is never rewritten: a file whose services run from one build is not disturbed by a newer one.
 */
export const buildService = async (): Promise<void> => {
  mkdirSync(BUILDS_DIR, { recursive: true });
  await eventually('the service build lock', () => Promise.resolve(tryLock() || undefined), {
    timeoutMs: 180_000,
    intervalMs: 200,
  });
  try {
    serviceMain = upToDateBuild();
    if (serviceMain !== undefined) return;
    const startedAt = new Date();
    const name = `build-${startedAt.getTime()}-${randomUUID().slice(0, 8)}`;
    const dir = join(BUILDS_DIR, name);
    try {
      execFileSync(
        process.execPath,
        [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', dir],
        { cwd: projectRoot(), stdio: 'pipe' },
      );
    } catch (error) {
      // tsc emits even with type errors in files being edited elsewhere; only a missing service is fatal.
      if (!existsSync(join(dir, 'workers', 'main.js'))) throw error;
    }
    writeFileSync(LATEST, name);
    // Sources saved while the build ran must make the next file build again.
    utimesSync(LATEST, startedAt, startedAt);
    serviceMain = join(dir, 'workers', 'main.js');
    for (const entry of readdirSync(BUILDS_DIR, { withFileTypes: true })) {
      const path = join(BUILDS_DIR, entry.name);
      if (
        entry.isDirectory() &&
        entry.name !== name &&
        Date.now() - statSync(path).mtimeMs > STALE_BUILD_MS
      ) {
        rmSync(path, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
    for (const entry of readdirSync(TEST_DATA_DIR)) {
      if (entry.startsWith('service-builds.lock.stale-')) {
        rmSync(join(TEST_DATA_DIR, entry), { recursive: true, force: true });
      }
    }
  }
};

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** WORKER_READY_FILE: the service writes it when it polls and removes it when it stops. */
  readyFile: string;
  /** Everything written to stdout and stderr. */
  output(): string;
  /** The JSON log lines written to stdout. */
  logs(): LogLine[];
  /** stdout lines that are not JSON: a service writing structured logs has none. */
  unstructuredLines(): string[];
  exited: Promise<number | null>;
  /** Resolves once the worker polls its task queue. */
  ready(): Promise<void>;
  /** The URL of its heartbeat gateway, once it is ready. */
  gateway(): string;
  /** SIGKILL: no shutdown, no cleanup, in-flight work lost. Resolves once the process is gone. */
  kill(): Promise<void>;
}

const running = new Set<ServiceProcess>();

export const startService = (env: Record<string, string>): ServiceProcess => {
  const readyFile = join(TEST_DATA_DIR, `service-ready-${randomUUID()}`);
  if (serviceMain === undefined) throw new Error('call buildService() in beforeAll first');
  const child = spawn(process.execPath, [serviceMain], {
    cwd: projectRoot(),
    env: {
      PATH: process.env.PATH,
      ...temporalConnectionEnv(),
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
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = () => stdout.split('\n').filter((line) => line.trim() !== '');
  const parse = (line: string): LogLine | undefined => {
    try {
      return JSON.parse(line) as LogLine;
    } catch {
      return undefined;
    }
  };
  const service: ServiceProcess = {
    child,
    readyFile,
    output: () => `${stdout}${stderr}`,
    logs: () =>
      lines().flatMap((line): LogLine[] => {
        const parsed = parse(line);
        return parsed === undefined ? [] : [parsed];
      }),
    unstructuredLines: () => lines().filter((line) => parse(line) === undefined),
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
    gateway: () => (JSON.parse(readFileSync(readyFile, 'utf8')) as { gateway: string }).gateway,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      // A killed service leaves its ready file behind.
      rmSync(readyFile, { force: true });
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
