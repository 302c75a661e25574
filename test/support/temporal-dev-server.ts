/**
 * A Temporal dev server of a test's own, on free ports with a persistent SQLite file, that the test may
 * stop (SIGTERM or SIGKILL) and start again on the same file. The shared dev server is never touched.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../../domain/search-attributes';
import { projectRoot } from '../../infra/paths';
import { eventually } from './wait';

/**
 * Ports the dev servers take: below Linux's ephemeral range (32768 and up), so that nothing that binds port 0
 * or connects out is handed one of them while a server is stopped for a test; above the range of
 * support/cli.ts closedPort(). Two test files picking the same port is retried (see `start`).
 */
const DEV_SERVER_PORTS = { from: 25_000, to: 32_767 };

const isFree = async (port: number): Promise<boolean> => {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise((resolve) => server.close(resolve));
  return bound;
};

/** `count` distinct ports that were free a moment ago. */
const pickPorts = async (count: number): Promise<number[]> => {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port =
      DEV_SERVER_PORTS.from + Math.floor(Math.random() * (DEV_SERVER_PORTS.to - DEV_SERVER_PORTS.from + 1));
    if (!ports.has(port) && (await isFree(port))) ports.add(port);
  }
  return [...ports];
};

const portTaken = (output: string): boolean => /address already in use/i.test(output);
const PORT_ATTEMPTS = 5;

/** The project's Temporal CLI (installed by setup), or the one on PATH. */
export const temporalCli = (): string => {
  const local = join(projectRoot(), '.tools', 'bin', 'temporal');
  return existsSync(local) ? local : 'temporal';
};

export interface DevServer {
  /** Fixed once the first start succeeded (it may move to other ports if another process took them). */
  readonly address: string;
  /** Starts the server (again) on the same ports and database file; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it with the given signal; resolves once the process is gone. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  output(): string;
}

export const createDevServer = async (dbFile: string): Promise<DevServer> => {
  let ports = await pickPorts(4);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  let startedOnce = false;
  const addressOf = (): string => `127.0.0.1:${ports[0]}`;
  const args = (): string[] => {
    const [port, uiPort, httpPort, metricsPort] = ports.map(String) as [string, string, string, string];
    return [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      port,
      '--ui-port',
      uiPort,
      '--http-port',
      httpPort,
      '--metrics-port',
      metricsPort,
      '--headless',
      '--db-filename',
      dbFile,
      '--sqlite-pragma',
      'journal_mode=wal',
      '--log-level',
      'warn',
      ...ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ];
  };
  /** Starts the process; resolves false when it exited because a port was taken meanwhile. */
  const startOnce = async (): Promise<boolean> => {
    const address = addressOf();
    let ownOutput = '';
    const started = spawn(temporalCli(), args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    const collect = (chunk: Buffer) => {
      ownOutput += chunk.toString();
      output += chunk.toString();
    };
    started.stdout?.on('data', collect);
    started.stderr?.on('data', collect);
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    const answered = await eventually(
      `the Temporal dev server at ${address} to answer`,
      async () => {
        if (started.exitCode !== null) {
          if (portTaken(ownOutput)) return 'port-taken';
          throw new Error(`the dev server exited:\n${output}`);
        }
        try {
          const connection = await Connection.connect({ address, connectTimeout: '1s' });
          try {
            await connection.workflowService.getSystemInfo({});
            return 'answered';
          } finally {
            await connection.close();
          }
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    return answered === 'answered';
  };
  return {
    get address() {
      return addressOf();
    },
    output: () => output,
    start: async () => {
      // A restart must keep its ports (clients hold the address); a first start may move to others.
      for (let attempt = 1; ; attempt += 1) {
        if (await startOnce()) break;
        if (startedOnce || attempt === PORT_ATTEMPTS) {
          throw new Error(`the dev server could not bind its ports ${ports.join(', ')}:\n${output}`);
        }
        ports = await pickPorts(4);
      }
      startedOnce = true;
    },
    stop: async (signal) => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
};
