/**
 * The worker under test as its own process (`node dist/workers/main.js`), and CPU and memory read from
 * /proc: of the worker, of the local Temporal server and of the whole machine.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, readdirSync, readlinkSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../infra/paths';

const READY_WITHIN_MS = 180_000;
const EXIT_WITHIN_MS = 30_000;

export interface WorkerProcess {
  pid: number;
  /** The worker's heartbeat gateway, from its ready file: http://127.0.0.1:<port>. */
  gatewayUrl: string;
  stop(): Promise<number | null>;
}

/** The ready file is written once, whole, but may be read while it is being written. */
const readGatewayUrl = (readyFile: string): string | undefined => {
  try {
    const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { gateway?: unknown };
    return typeof ready.gateway === 'string' ? ready.gateway : undefined;
  } catch {
    return undefined;
  }
};

/** Starts the worker service with exactly the environment given, and waits until it polls. */
export const startWorker = async (
  env: Record<string, string>,
  readyFile: string,
  logFile: string,
): Promise<WorkerProcess> => {
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [join(projectRoot(), 'dist', 'workers', 'main.js')], {
    env,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const giveUpAt = Date.now() + READY_WITHIN_MS;
  let gatewayUrl: string | undefined;
  while ((gatewayUrl = existsSync(readyFile) ? readGatewayUrl(readyFile) : undefined) === undefined) {
    if (exitCode !== undefined) throw new Error(`the worker exited with code ${exitCode} (log: ${logFile})`);
    if (Date.now() > giveUpAt) {
      child.kill('SIGKILL');
      throw new Error(`the worker was not ready within ${READY_WITHIN_MS} ms (log: ${logFile})`);
    }
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('the worker process has no pid');
  return {
    pid: child.pid,
    gatewayUrl,
    async stop() {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timedOut = sleep(EXIT_WITHIN_MS).then(() => 'timeout' as const);
      const outcome = await Promise.race([exited, timedOut]);
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        return exited;
      }
      return outcome;
    },
  };
};

const clockTicksPerSecond = (): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
};

const TICKS = clockTicksPerSecond();

/** CPU seconds a process used so far (user + system), or undefined once it is gone. */
const processCpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
};

const processRssMb = (pid: number): number | undefined => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
};

/** Busy and total CPU seconds of the whole machine, all cores together. */
const machineCpuSeconds = (): { busy: number; total: number } => {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: (total - idle) / TICKS, total: total / TICKS };
};

/** Inodes of the sockets listening on `port` (any local address), from /proc/net/tcp and tcp6. */
const listeningSocketInodes = (port: number): Set<string> => {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st ... inode: state 0A is LISTEN.
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9] !== undefined) {
        inodes.add(fields[9]);
      }
    }
  }
  return inodes;
};

/**
 * The local Temporal server serving `port` (the dev server, or the production stack's server), found as the
 * process that holds the listening socket; undefined when there is none on this machine.
 */
export const findTemporalServerPid = (port: number): number | undefined => {
  const inodes = listeningSocketInodes(port);
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        const target = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`))?.[1];
        if (target !== undefined && inodes.has(target)) return Number(entry);
      }
    } catch {
      // The process ended while the list was read, or its descriptors are not ours to see.
    }
  }
  return undefined;
};

/** PostgreSQL's shared processes (the postmaster's title is its command line, not `postgres: ...`). */
const POSTGRES_SHARED =
  /^postgres: (?:[^:]+: )?(checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher|stats collector|archiver)/;

/**
 * The PostgreSQL processes that work for this run: the server's shared processes (WAL writer, checkpointer,
 * ...) and the backends and autovacuum workers of the run's database, whose name is in their process title.
 * Backends of other databases (other users of the same server) are left out.
 */
const postgresPids = (database: string): number[] =>
  postgresProcesses(
    (title) =>
      !title.startsWith('postgres:') || POSTGRES_SHARED.test(title) || title.includes(` ${database} `),
  );

/**
 * The PostgreSQL backends serving the Temporal server process `serverPid`: its persistence, when it keeps it
 * in this PostgreSQL (the production stack; a dev server keeps SQLite in its own process). A backend's title
 * ends with its client's address, `127.0.0.1(port)`; the server's own TCP sockets give those ports.
 */
const temporalPersistencePids = (serverPid: number | undefined): number[] => {
  if (serverPid === undefined) return [];
  const ports = tcpClientPorts(serverPid);
  if (ports.size === 0) return [];
  return postgresProcesses((title) => {
    const client = /\((\d+)\)/.exec(title);
    return client?.[1] !== undefined && ports.has(Number(client[1]));
  });
};

/** The local ports of the TCP connections a process holds (IPv4 and IPv6). */
const tcpClientPorts = (pid: number): Set<number> => {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkOrEmpty(`/proc/${pid}/fd/${fd}`));
      if (socket?.[1] !== undefined) inodes.add(socket[1]);
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    let lines: string[];
    try {
      lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const local = fields[1]?.split(':')[1];
      if (local !== undefined && fields[9] !== undefined && inodes.has(fields[9]))
        ports.add(parseInt(local, 16));
    }
  }
  return ports;
};

const readlinkOrEmpty = (path: string): string => {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
};

/** PostgreSQL processes whose title (or the postmaster's command line) passes `keep`. */
const postgresProcesses = (keep: (title: string) => boolean): number[] => {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (keep(title)) pids.push(Number(entry));
    } catch {
      // The process ended while the list was read.
    }
  }
  return pids;
};

const cpuOf = (pids: number[]): Map<number, number> =>
  new Map(
    pids.flatMap((pid) => {
      const seconds = processCpuSeconds(pid);
      return seconds === undefined ? [] : [[pid, seconds] as const];
    }),
  );

export interface CpuWindow {
  /** Cores used on average over the window (1.0 = one core busy all the time). */
  workerCores: number;
  serverCores: number | undefined;
  /** PostgreSQL for this run (postgresPids); a backend that ended within the window is not counted. */
  postgresCores: number;
  /** The PostgreSQL backends of the local Temporal server (temporalPersistencePids); undefined if it has none. */
  temporalPersistenceCores: number | undefined;
  /** The bench process itself: the heartbeat agents, mostly. */
  benchCores: number;
  machineCores: number;
  seconds: number;
}

/** Marks a moment; `since` gives the CPU used from that moment to now. */
export const cpuMark = (workerPid: number, serverPid: number | undefined, database: string) => {
  const at = Date.now();
  const worker = processCpuSeconds(workerPid) ?? 0;
  const server = serverPid === undefined ? undefined : processCpuSeconds(serverPid);
  const postgres = cpuOf(postgresPids(database));
  const persistence = cpuOf(temporalPersistencePids(serverPid));
  const bench = process.cpuUsage();
  const machine = machineCpuSeconds();
  return {
    since(): CpuWindow {
      const seconds = (Date.now() - at) / 1000;
      const serverNow = serverPid === undefined ? undefined : processCpuSeconds(serverPid);
      // A backend that started within the window counts from 0.
      const secondsSince = (before: Map<number, number>, pids: number[]): number =>
        [...cpuOf(pids)].reduce((sum, [pid, now]) => sum + now - (before.get(pid) ?? 0), 0);
      const postgresSeconds = secondsSince(postgres, postgresPids(database));
      const persistencePids = temporalPersistencePids(serverPid);
      const benchUsage = process.cpuUsage(bench);
      return {
        workerCores: ((processCpuSeconds(workerPid) ?? worker) - worker) / seconds,
        serverCores:
          server === undefined || serverNow === undefined ? undefined : (serverNow - server) / seconds,
        postgresCores: postgresSeconds / seconds,
        temporalPersistenceCores:
          persistence.size === 0 && persistencePids.length === 0
            ? undefined
            : secondsSince(persistence, persistencePids) / seconds,
        benchCores: (benchUsage.user + benchUsage.system) / 1e6 / seconds,
        machineCores: (machineCpuSeconds().busy - machine.busy) / seconds,
        seconds,
      };
    },
  };
};

export const workerRssMb = (pid: number): number => processRssMb(pid) ?? 0;
