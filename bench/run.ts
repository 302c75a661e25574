/**
 * One benchmark run on the real stack: a fresh database, the worker service as its own process, S Slaves
 * heartbeating from this process, then K of them stopping at the same moment.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { createFleet } from '../app/fleet';
import type { Fleet } from '../app/fleet';
import { monitorWorkflowId } from '../domain/names';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import { projectRoot } from '../infra/paths';
import type { Correctness } from './checks';
import { committedCount, correctness, failoverTimings, failoversAfterRun, promotedServers } from './checks';
import { HeartbeatSenders } from './heartbeats';
import { mapLimited } from '../infra/limit';
import type { BenchOptions } from './options';
import type { CpuWindow } from './processes';
import { cpuMark, findTemporalServerPid, startWorker, workerRssMb } from './processes';
import { createRunDatabase, dropRunDatabase, seedSite, slaveId } from './site';
import type { Percentiles } from './stats';
import { percentiles } from './stats';

/** Calls to the server made in bulk (monitor starts, queries, terminations) are bounded too. */
const BULK_CONCURRENCY = 32;
const POLL_MS = 100;
/** After the deadline, failovers get this long to commit the cameras before they count as missed. */
const FAILOVER_GRACE_MS = 120_000;
const DRAIN_WITHIN_MS = 60_000;

export interface RunResult {
  slaves: number;
  failures: number;
  intervalMs: number;
  timeoutMs: number;
  overhead: Percentiles;
  detection: Percentiles;
  /** The failover workflow's start (Temporal's record) minus the deadline. */
  workflowStart: Percentiles;
  /** Cameras committed minus (last heartbeat sent by the Slave + timeout): the Slave's own view. */
  endToEnd: Percentiles;
  /** Signal sent to signal handled by the monitor (its workflow clock), last heartbeat of each Slave. */
  signalLag: Percentiles;
  ack: Percentiles;
  scheduleLag: Percentiles;
  heartbeatsPerSec: number;
  heartbeatsSent: number;
  heartbeatsHandled: number;
  sendFailures: Record<string, number>;
  /** Monitors that had not handled every heartbeat acknowledged to the bench, DRAIN_WITHIN_MS after the last. */
  monitorsBehind: number;
  drainMs: number;
  steadyCpu: CpuWindow;
  failoverCpu: CpuWindow;
  workerRssIdleMb: number;
  workerRssMb: number;
  monitorStartsPerSec: number;
  correctness: Correctness;
  /** Failovers caused by the end of the run (monitors whose timeout ran out before they were ended). */
  failoversAfterRun: number;
  runSeconds: number;
}

export interface RunEnvironment {
  config: AppConfig;
  client: Client;
  logger: Logger;
  /** Worker settings passed through from the bench's own environment (worker tuning). */
  workerEnv: Record<string, string>;
}

const log = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

const workerEnvironment = (
  config: AppConfig,
  run: { site: string; taskQueue: string; databaseUrl: string; readyFile: string },
  passThrough: Record<string, string>,
): Record<string, string> => ({
  ...passThrough,
  DATABASE_URL: run.databaseUrl,
  TEMPORAL_ADDRESS: config.temporal.address,
  TEMPORAL_NAMESPACE: config.temporal.namespace,
  TEMPORAL_TASK_QUEUE: run.taskQueue,
  VMS_SITE: run.site,
  WORKER_IDENTITY: `${run.site}-worker`,
  WORKER_READY_FILE: run.readyFile,
  METRICS_PORT: '0',
  HEALTH_PORT: '0',
  LOG_LEVEL: 'warn',
  LOG_FORMAT: 'json',
});

/** K Slaves spread evenly over the site, so that their heartbeat phases are spread too before they stop. */
const failingSlaves = (slaves: string[], failures: number): string[] =>
  Array.from(
    { length: failures },
    (_, index) => slaves[Math.floor((index * slaves.length) / failures)] ?? '',
  );

const waitFor = async (what: string, withinMs: number, done: () => Promise<boolean>): Promise<boolean> => {
  const giveUpAt = Date.now() + withinMs;
  while (Date.now() < giveUpAt) {
    if (await done()) return true;
    await sleep(POLL_MS);
  }
  log(`gave up waiting for ${what} after ${withinMs} ms`);
  return false;
};

/** Ends every workflow of the run, so that nothing of it stays on the shared dev server. */
const terminateRun = async (client: Client, workflowIds: string[]): Promise<void> => {
  await mapLimited(workflowIds, BULK_CONCURRENCY, async (workflowId) => {
    try {
      await client.workflow.getHandle(workflowId).terminate('benchmark run finished');
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return;
      const message = (error as Error).message;
      // Already closed (completed or failed over and finished): nothing to end.
      if (!/already completed|not running|already (been )?terminated/i.test(message)) throw error;
    }
  });
};

export const runOnce = async (
  env: RunEnvironment,
  options: BenchOptions,
  slaves: number,
): Promise<RunResult> => {
  const { config, client, logger } = env;
  const runStartedAt = Date.now();
  const runId = randomBytes(4).toString('hex');
  const site = `bench-${runId}`;
  const taskQueue = `bench-${runId}`;
  const database = `vms_bench_${runId}`;
  const runDir = join(projectRoot(), '.data', 'bench', site);
  mkdirSync(runDir, { recursive: true });
  log(
    `run ${site}: ${slaves} Slaves, heartbeat every ${options.intervalMs} ms, timeout ${options.timeoutMs} ms, ` +
      `${options.failures} failing, ${options.standbys} standbys (worker log ${join(runDir, 'worker.log')})`,
  );

  const { url: databaseUrl, db } = await createRunDatabase(config.databaseUrl, database, logger);
  const slaveIds = Array.from({ length: slaves }, (_, index) => slaveId(index));
  const failed = failingSlaves(slaveIds, options.failures);
  const workflowIds = new Set(slaveIds.map((id) => monitorWorkflowId(site, id)));
  let stopWorker: (() => Promise<number | null>) | undefined;
  try {
    await seedSite(db, {
      slaves,
      standbys: options.standbys,
      ipCamerasPerSlave: options.ipCamerasPerSlave,
      timeoutMs: options.timeoutMs,
    });
    const readyFile = join(runDir, 'ready');
    const worker = await startWorker(
      workerEnvironment(config, { site, taskQueue, databaseUrl, readyFile }, env.workerEnv),
      readyFile,
      join(runDir, 'worker.log'),
    );
    stopWorker = () => worker.stop();
    const serverPid = findTemporalServerPid(Number(config.temporal.address.split(':')[1] ?? '7233'));
    const workerRssIdleMb = workerRssMb(worker.pid);
    const fleet: Fleet = createFleet({
      config: { ...config, site, temporal: { ...config.temporal, taskQueue } },
      client,
      db,
    });

    const startsBegan = Date.now();
    await mapLimited(slaveIds, BULK_CONCURRENCY, (id) => fleet.startMonitor(id));
    const monitorStartsPerSec = slaves / ((Date.now() - startsBegan) / 1000);
    log(`${slaves} monitors started (${Math.round(monitorStartsPerSec)}/s)`);

    const warmUpMs = 2 * options.intervalMs;
    const stopAllAtMs =
      Date.now() + warmUpMs + options.steadyMs + options.timeoutMs + FAILOVER_GRACE_MS + 60_000;
    const senders = new HeartbeatSenders(fleet, options.intervalMs, options.senderConcurrency, stopAllAtMs);
    senders.startAll(slaveIds);
    await sleep(warmUpMs);

    const steadyMark = cpuMark(worker.pid, serverPid);
    const sentBeforeSteady = senders.counts.sent;
    await sleep(options.steadyMs);
    const steadyCpu = steadyMark.since();
    const heartbeatsPerSec = (senders.counts.sent - sentBeforeSteady) / steadyCpu.seconds;
    const rssSteadyMb = workerRssMb(worker.pid);
    log(
      `steady: ${Math.round(heartbeatsPerSec)} heartbeats/s, worker ${steadyCpu.workerCores.toFixed(2)} cores, ` +
        `${Math.round(rssSteadyMb)} MB`,
    );

    const failoverMark = cpuMark(worker.pid, serverPid);
    await senders.fail(failed);
    log(`${failed.length} Slaves stopped heartbeating; deemed broken in ${options.timeoutMs} ms`);
    const promotedAgents = new Set<string>();
    const allCommitted = await waitFor('the failovers', options.timeoutMs + FAILOVER_GRACE_MS, async () => {
      // A promoted server is a protected Slave with its own monitor: its agent heartbeats from now on.
      for (const serverId of await promotedServers(db)) {
        if (promotedAgents.has(serverId)) continue;
        promotedAgents.add(serverId);
        workflowIds.add(monitorWorkflowId(site, serverId));
        senders.start(serverId, Date.now());
      }
      // Done once every failed Slave's cameras are committed and its promoted server heartbeats.
      return (await committedCount(db, failed)) === failed.length && promotedAgents.size >= failed.length;
    });
    // Two more intervals: the promoted servers' monitors handle their first heartbeats, the others keep going.
    if (allCommitted) await sleep(2 * options.intervalMs);
    const failoverCpu = failoverMark.since();
    const heartbeatsStoppedAtMs = Date.now();
    await senders.stopAll();

    const monitored = [...slaveIds, ...promotedAgents];
    const drainBegan = Date.now();
    let states = new Map<string, { received: number; lastAtMs: number | null }>();
    await waitFor('the monitors to handle every heartbeat', DRAIN_WITHIN_MS, async () => {
      const behind = monitored.filter((id) => (states.get(id)?.received ?? -1) < senders.sentTo(id));
      const fresh = await mapLimited(behind, BULK_CONCURRENCY, async (id) => {
        // A monitor too far behind to answer a query in time counts as behind; it is asked again.
        const state = await fleet.monitorState(id).catch(() => undefined);
        return state === undefined
          ? []
          : [[id, { received: state.heartbeatsReceived, lastAtMs: state.lastHeartbeatAtMs }] as const];
      });
      states = new Map([...states, ...fresh.flat()]);
      return monitored.every((id) => (states.get(id)?.received ?? 0) >= senders.sentTo(id));
    });
    const drainMs = Date.now() - drainBegan;
    const monitorsBehind = monitored.filter(
      (id) => (states.get(id)?.received ?? 0) < senders.sentTo(id),
    ).length;
    const heartbeatsHandled = monitored.reduce((sum, id) => sum + (states.get(id)?.received ?? 0), 0);
    const failedSet = new Set(failed);
    const signalLag = slaveIds
      .filter((id) => !failedSet.has(id))
      .flatMap((id) => {
        const lastAtMs = states.get(id)?.lastAtMs;
        const sentAtMs = senders.lastSentAtMs(id);
        return lastAtMs === undefined || lastAtMs === null || sentAtMs === undefined
          ? []
          : [lastAtMs - sentAtMs];
      });

    const timings = (await failoverTimings(db)).filter((timing) => failedSet.has(timing.slaveId));
    const committed = timings.filter((timing) => timing.camerasCommittedMs !== null);
    const workflowStartMs = await mapLimited(timings, BULK_CONCURRENCY, async (timing) => {
      const started = await client.workflow
        .getHandle(timing.id)
        .describe()
        .then((description) => description.startTime.getTime())
        .catch(() => undefined);
      return started === undefined ? [] : [started - timing.deadlineMs];
    });
    const result: Omit<RunResult, 'correctness' | 'failoversAfterRun' | 'runSeconds'> = {
      slaves,
      failures: failed.length,
      intervalMs: options.intervalMs,
      timeoutMs: options.timeoutMs,
      overhead: percentiles(committed.map((timing) => (timing.camerasCommittedMs ?? 0) - timing.deadlineMs)),
      detection: percentiles(timings.map((timing) => timing.startedMs - timing.deadlineMs)),
      workflowStart: percentiles(workflowStartMs.flat()),
      endToEnd: percentiles(
        committed.map(
          (timing) =>
            (timing.camerasCommittedMs ?? 0) -
            ((senders.lastSentAtMs(timing.slaveId) ?? 0) + options.timeoutMs),
        ),
      ),
      signalLag: percentiles(signalLag),
      ack: percentiles(senders.counts.ackMs),
      scheduleLag: percentiles(senders.counts.scheduleLagMs),
      heartbeatsPerSec,
      heartbeatsSent: senders.counts.sent,
      heartbeatsHandled,
      sendFailures: Object.fromEntries(senders.errors),
      monitorsBehind,
      drainMs,
      steadyCpu,
      failoverCpu,
      workerRssIdleMb,
      workerRssMb: rssSteadyMb,
      monitorStartsPerSec,
    };
    const failoverIds = (await db.query<{ id: string }>('SELECT id FROM failovers')).rows.map(
      (row) => row.id,
    );
    await terminateRun(client, [...workflowIds, ...failoverIds]);
    await worker.stop();
    stopWorker = undefined;
    return {
      ...result,
      correctness: await correctness(db, failed, heartbeatsStoppedAtMs),
      failoversAfterRun: await failoversAfterRun(db, failed, heartbeatsStoppedAtMs),
      runSeconds: (Date.now() - runStartedAt) / 1000,
    };
  } finally {
    if (stopWorker !== undefined) {
      await terminateRun(client, [...workflowIds]).catch((error: unknown) =>
        log(`could not end the run's workflows: ${(error as Error).message}`),
      );
      await stopWorker();
    }
    await db.end();
    if (!options.keepDatabase) await dropRunDatabase(config.databaseUrl, database);
  }
};
