/**
 * A Temporal dev server of a test's own, on free ports with a persistent SQLite file, that the test may
 * stop (SIGTERM or SIGKILL) and start again on the same file. The shared dev server is never touched.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../../domain/search-attributes';
import { projectRoot } from '../../infra/paths';
import { eventually } from './wait';

export const freePort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
};

/** The project's Temporal CLI (installed by setup), or the one on PATH. */
export const temporalCli = (): string => {
  const local = join(projectRoot(), '.tools', 'bin', 'temporal');
  return existsSync(local) ? local : 'temporal';
};

export interface DevServer {
  address: string;
  /** Starts the server (again) on the same ports and database file; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it with the given signal; resolves once the process is gone. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  output(): string;
}

export const createDevServer = async (dbFile: string): Promise<DevServer> => {
  const [port, uiPort, httpPort, metricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const address = `127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--headless',
    '--db-filename',
    dbFile,
    '--sqlite-pragma',
    'journal_mode=wal',
    '--log-level',
    'warn',
    ...ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
  ];
  return {
    address,
    output: () => output,
    start: async () => {
      const started = spawn(temporalCli(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      exited = new Promise((resolve) => started.once('exit', () => resolve()));
      await eventually(
        `the Temporal dev server at ${address} to answer`,
        async () => {
          if (started.exitCode !== null) throw new Error(`the dev server exited:\n${output}`);
          try {
            const connection = await Connection.connect({ address, connectTimeout: '1s' });
            try {
              await connection.workflowService.getSystemInfo({});
              return true;
            } finally {
              await connection.close();
            }
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    },
    stop: async (signal) => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
};
