/**
 * The Temporal server a reliability spec stops and starts again. By default a dev server of the spec's own
 * on a persistent SQLite file (the shared dev server is never stopped). Under `npm run test:production-stack`
 * (TEMPORAL_SERVER_UNDER_TEST=production-stack) the production stack's server itself, the one every test
 * of that run talks to: stopped with the signal given, started again by scripts/production-stack.sh.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TemporalConfig } from '../../infra/config';
import { projectRoot } from '../../infra/paths';
import { temporalConfig } from './environment';
import { createDevServer } from './temporal-dev-server';
import { eventually } from './wait';

export interface TemporalServerUnderTest {
  /** How to reach it, as infra/temporal.ts takes it (TLS included). */
  temporal: TemporalConfig;
  /** Starts it (again) on the same data; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it with the given signal; resolves once the process is gone. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** After the test: a dev server of its own is ended and its file removed; the production server runs on. */
  release(): Promise<void>;
}

const run = promisify(execFile);

const productionStack = (): TemporalServerUnderTest => {
  const script = async (command: string): Promise<string> => {
    try {
      const { stdout } = await run('bash', ['scripts/production-stack.sh', command], {
        cwd: projectRoot(),
        timeout: 180_000,
      });
      return stdout.trim();
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`scripts/production-stack.sh ${command} failed:\n${stdout}${stderr}`);
    }
  };
  const start = async (): Promise<void> => {
    await script('start');
  };
  return {
    temporal: temporalConfig(),
    start,
    stop: async (signal) => {
      const pid = Number(await script('pid'));
      process.kill(pid, signal);
      await eventually(
        `the Temporal server (pid ${pid}) to exit`,
        () => Promise.resolve(isRunning(pid) ? undefined : true),
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    },
    release: start,
  };
};

/** A killed server nobody has reaped yet is a zombie: it still has a pid, and it no longer runs. */
const isRunning = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

const devServerOfItsOwn = async (): Promise<TemporalServerUnderTest> => {
  const workDir = mkdtempSync(join(tmpdir(), 'vms-temporal-restart-'));
  const server = await createDevServer(join(workDir, 'temporal.sqlite'));
  const { namespace, taskQueue } = temporalConfig();
  return {
    // Read after the first start: the server may have moved to other ports if its first ones were taken.
    get temporal() {
      return { address: server.address, namespace, taskQueue };
    },
    start: () => server.start(),
    stop: (signal) => server.stop(signal),
    release: async () => {
      await server.stop('SIGKILL');
      rmSync(workDir, { recursive: true, force: true });
    },
  };
};

export const temporalServerUnderTest = (): Promise<TemporalServerUnderTest> =>
  process.env.TEMPORAL_SERVER_UNDER_TEST === 'production-stack'
    ? Promise.resolve(productionStack())
    : devServerOfItsOwn();
