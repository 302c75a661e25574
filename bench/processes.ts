/**
 * The worker under test and the simulated VMS as processes of their own (`node dist/workers/main.js`,
 * `vms simulator serve`), and CPU and memory read from /proc: of the worker, of the simulator, of the local
 * Temporal server, of PostgreSQL and of the whole machine.
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

/** A child process of the bench, started with exactly the environment given, its output to a log file. */
const spawnService = (
  args: string[],
  env: Record<string, string>,
  logFile: string,
): { child: ChildProcess; exitCode: () => number | null | undefined; stop: () => Promise<number | null> } => {
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, args, { env, stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  return {
    child,
    exitCode: () => exitCode,
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

/** Waits until `ready` gives a value, while the process runs, for at most READY_WITHIN_MS. */
const waitUntilReady = async <T>(
  what: string,
  service: ReturnType<typeof spawnService>,
  logFile: string,
  ready: () => T | undefined,
): Promise<{ pid: number; value: T }> => {
  const giveUpAt = Date.now() + READY_WITHIN_MS;
  let value: T | undefined;
  while ((value = ready()) === undefined) {
    const exitCode = service.exitCode();
    if (exitCode !== undefined) throw new Error(`${what} exited with code ${exitCode} (log: ${logFile})`);
    if (Date.now() > giveUpAt) {
      service.child.kill('SIGKILL');
      throw new Error(`${what} was not ready within ${READY_WITHIN_MS} ms (log: ${logFile})`);
    }
    await sleep(100);
  }
  if (service.child.pid === undefined) throw new Error(`${what} has no pid`);
  return { pid: service.child.pid, value };
};

/** Starts the worker service with exactly the environment given, and waits until it polls. */
export const startWorker = async (
  env: Record<string, string>,
  readyFile: string,
  logFile: string,
  nodeArgs: string[] = [],
): Promise<WorkerProcess> => {
  const service = spawnService(
    [...nodeArgs, join(projectRoot(), 'dist', 'workers', 'main.js')],
    env,
    logFile,
  );
  const { pid, value: gatewayUrl } = await waitUntilReady('the worker', service, logFile, () =>
    existsSync(readyFile) ? readGatewayUrl(readyFile) : undefined,
  );
  return { pid, gatewayUrl, stop: service.stop };
};

export interface SimulatorProcess {
  pid: number;
  /** Its bridge API: http://127.0.0.1:<port>. */
  url: string;
  stop(): Promise<number | null>;
}

/** The URL `vms simulator serve` logs once it listens (JSON log lines). */
const listeningUrl = (logFile: string): string | undefined => {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('VMS simulator listening')) continue;
    try {
      const { url } = JSON.parse(line) as { url?: unknown };
      if (typeof url === 'string') return url;
    } catch {
      // A line still being written.
    }
  }
  return undefined;
};

/**
 * The simulated VMS as its own process (`vms simulator serve` on a free port of the loopback), as a site's
 * bridge is: its CPU is not the worker's, and is reported apart.
 */
export const startSimulator = async (
  env: Record<string, string>,
  logFile: string,
): Promise<SimulatorProcess> => {
  const cli = join(projectRoot(), 'dist', 'client', 'cli.js');
  const service = spawnService(
    [cli, 'simulator', 'serve', '--port', '0', '--host', '127.0.0.1'],
    { ...env, LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
    logFile,
  );
  const { pid, value: url } = await waitUntilReady('the VMS simulator', service, logFile, () =>
    existsSync(logFile) ? listeningUrl(logFile) : undefined,
  );
  return { pid, url, stop: service.stop };
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
 * The PostgreSQL backends serving a local process over TCP: the Temporal server's persistence, when it keeps
 * it in this PostgreSQL (the production stack; a dev server keeps SQLite in its own process), or the simulated
 * VMS's. A backend's title ends with its client's address, `127.0.0.1(port)`; the process's own TCP sockets give
 * those ports.
 */
const backendsServing = (pid: number | undefined): number[] => {
  if (pid === undefined) return [];
  const ports = tcpClientPorts(pid);
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
  /**
   * PostgreSQL for the worker: its shared processes and the run database's backends, but those of the
   * simulated VMS and of the bench's own checks. A backend that ended within the window is not counted.
   */
  postgresCores: number;
  /** The PostgreSQL backends of the local Temporal server (backendsServing); undefined if it has none. */
  temporalPersistenceCores: number | undefined;
  /** The bench process itself: the heartbeat agents, mostly. */
  benchCores: number;
  /** The simulated VMS: its process and its PostgreSQL backends (the site's VMS, other machines in a real site). */
  vmsCores: number;
  machineCores: number;
  seconds: number;
}

/** Marks a moment; `since` gives the CPU used from that moment to now. */
export const cpuMark = (
  workerPid: number,
  simulatorPid: number,
  serverPid: number | undefined,
  database: string,
) => {
  const at = Date.now();
  const worker = processCpuSeconds(workerPid) ?? 0;
  const simulator = processCpuSeconds(simulatorPid) ?? 0;
  const server = serverPid === undefined ? undefined : processCpuSeconds(serverPid);
  // The run database's backends serving the simulated VMS are its, and those serving the bench's own checks
  // are nobody's; the rest serve the worker.
  const backends = () => {
    const vms = backendsServing(simulatorPid);
    const apart = new Set([...vms, ...backendsServing(process.pid)]);
    return { worker: postgresPids(database).filter((pid) => !apart.has(pid)), vms };
  };
  const before = backends();
  const postgres = cpuOf(before.worker);
  const vmsPostgres = cpuOf(before.vms);
  const persistence = cpuOf(backendsServing(serverPid));
  const bench = process.cpuUsage();
  const machine = machineCpuSeconds();
  return {
    since(): CpuWindow {
      const seconds = (Date.now() - at) / 1000;
      const serverNow = serverPid === undefined ? undefined : processCpuSeconds(serverPid);
      // A backend that started within the window counts from 0.
      const secondsSince = (before: Map<number, number>, pids: number[]): number =>
        [...cpuOf(pids)].reduce((sum, [pid, now]) => sum + now - (before.get(pid) ?? 0), 0);
      const now = backends();
      const postgresSeconds = secondsSince(postgres, now.worker);
      const persistencePids = backendsServing(serverPid);
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
        vmsCores:
          ((processCpuSeconds(simulatorPid) ?? simulator) - simulator + secondsSince(vmsPostgres, now.vms)) /
          seconds,
        machineCores: (machineCpuSeconds().busy - machine.busy) / seconds,
        seconds,
      };
    },
  };
};

export const workerRssMb = (pid: number): number => processRssMb(pid) ?? 0;
