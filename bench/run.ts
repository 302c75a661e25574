/**
 * One benchmark run on the real stack: a fresh database, the worker service as its own process, S Slaves
 * heartbeating from this process to the worker's gateway, then K of them stopping at the same moment (their
 * agents silent, the servers down in the VMS).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { createFleet } from '../app/fleet';
import type { Fleet } from '../app/fleet';
import { collectSiteStatus } from '../app/site-status';
import { SiteView } from '../app/site-view';
import { monitorWorkflowId } from '../domain/names';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import { projectRoot } from '../infra/paths';
import { mapLimited } from '../infra/limit';
import { VmsSimulator } from '../vms/simulator';
import type { SiteCorrectness } from './checks';
import {
  committedCount,
  failoverTimings,
  failoversAfterRun,
  leasesBehind,
  outsideRoster,
  promotedServers,
  siteCorrectness,
} from './checks';
import { HeartbeatAgents } from './heartbeats';
import type { BenchOptions } from './options';
import type { CpuWindow } from './processes';
import { cpuMark, findTemporalServerPid, startSimulator, startWorker, workerRssMb } from './processes';
import {
  createRunDatabase,
  dropRunDatabase,
  ipCameraIds,
  issueAgentTokens,
  seedSite,
  simulatedSite,
  slaveId,
  standbyId,
} from './site';
import type { Percentiles } from './stats';
import { percentiles } from './stats';
import { actionsBetween, monitorHistories } from './temporal-actions';

/** Calls to the server made in bulk (monitor starts, queries, terminations) are bounded too. */
const BULK_CONCURRENCY = 32;
const POLL_MS = 100;
/** After the deadline, failovers get this long to commit the cameras before they count as missed. */
const FAILOVER_GRACE_MS = 120_000;
const DRAIN_WITHIN_MS = 60_000;
/** The agents stop on their own, whatever happens, after the run's steps; starting a monitor takes less. */
const MONITOR_START_BUDGET_MS = 200;

/** What the liveness path must have done; every counter must be 0. */
export interface LivenessCorrectness {
  /** Heartbeats the gateway refused or did not answer: the system could not hear a Slave that was alive. */
  heartbeatsFailed: number;
  /** Servers whose last heartbeat acknowledged by the gateway never reached its lease in PostgreSQL. */
  leasesBehind: number;
  /**
   * Monitors that did not hear their Slave: the detector does not watch it (not in its roster), or, when the
   * checkpoint period lets every monitor be told within the run, the monitor was never told of a heartbeat.
   */
  monitorsBehind: number;
  /** Slaves alive at the end (healthy or promoted) whose monitor is not running or not in 'monitoring'. */
  monitorsLost: number;
  /** Slaves alive at the end that `vms status` does not show as 'monitoring' (asked once, after the above). */
  statusMisread: number;
  /** 1 when the wait for the above gave up before they were all 0. */
  drainGaveUp: number;
}

export type Correctness = SiteCorrectness & LivenessCorrectness;

export interface RunResult {
  slaves: number;
  failures: number;
  intervalMs: number;
  timeoutMs: number;
  checkpointPeriodMs: number;
  overhead: Percentiles;
  detection: Percentiles;
  /** The failover workflow's start (Temporal's record) minus the deadline. */
  workflowStart: Percentiles;
  /** Cameras committed minus (last heartbeat sent by the Slave + timeout): the Slave's own view. */
  endToEnd: Percentiles;
  /** The detector's deadline report recorded in the monitor's history, minus the deadline it carries. */
  deadlineReport: Percentiles;
  /** A heartbeat request, sent to answer read, as the agent sees it. */
  gatewayRequest: Percentiles;
  scheduleLag: Percentiles;
  heartbeatsPerSec: number;
  heartbeatsSent: number;
  sendFailures: Record<string, number>;
  /** Billable Temporal events recorded in the monitors' histories during the steady window, by kind. */
  steadyActions: Record<string, number>;
  /** All of them, per monitored Slave and hour of the steady window. */
  actionsPerSlaveHour: number;
  /** All of them over the heartbeats the gateway took in the window: 0 when no heartbeat costs an action. */
  actionsPerHeartbeat: number;
  /** Signals other than the detector's reports in the monitors' histories (the old heartbeat signal, say). */
  otherSignals: number;
  /** Whether every monitor was due a checkpoint within the run, so `monitorsBehind` checked what it was told. */
  reportsChecked: boolean;
  drainMs: number;
  /** How long `vms status` took to read the site, once, after the wait for the liveness view. */
  statusMs: number;
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
  /** Node flags for the worker process (a CPU profile). */
  workerNodeArgs: string[];
}

const log = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

const workerEnvironment = (
  config: AppConfig,
  run: {
    site: string;
    taskQueue: string;
    databaseUrl: string;
    readyFile: string;
    checkpointPeriodMs: number;
    vmsBridgeUrl: string;
  },
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
  // Its gateway on a free port of the loopback; the simulated VMS the bench started, as the site's bridge.
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  VMS_BRIDGE_URL: run.vmsBridgeUrl,
  LIVENESS_CHECKPOINT_PERIOD: `${run.checkpointPeriodMs}ms`,
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

interface MonitorView {
  running: boolean;
  /** The monitor keeps its Slave in the Servers folder: it is in phase 'monitoring'. */
  monitoring: boolean;
  /** The monitor was told of a heartbeat of its Slave (asked only when `withTold`). */
  told: boolean;
}

/**
 * A monitor as the bench sees it, from Temporal's record (one describe: running, the folder it keeps its Slave
 * in), and only when asked whether it was told of its Slave, from its state query, which a worker answers (at
 * 10,000 Slaves most monitors are out of the worker's cache, and queries alone would make it replay them all);
 * null when it did not answer in time.
 */
const monitorView = async (
  fleet: Fleet,
  serverId: string,
  withTold: boolean,
): Promise<MonitorView | null> => {
  try {
    const record = await fleet.monitorRecord(serverId);
    if (!record.running) return { running: false, monitoring: false, told: false };
    const state = withTold ? await fleet.monitorState(serverId) : undefined;
    return {
      running: true,
      monitoring: record.folder === 'Servers',
      told: (state?.lastHeartbeatAtMs ?? null) !== null,
    };
  } catch {
    return null;
  }
};

const isMonitoring = (view: MonitorView | null | undefined): boolean =>
  view?.running === true && view.monitoring;

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
  const shape = {
    slaves,
    standbys: options.standbys,
    ipCamerasPerSlave: options.ipCamerasPerSlave,
    timeoutMs: options.timeoutMs,
  };
  const slaveIds = Array.from({ length: slaves }, (_, index) => slaveId(index));
  const standbyIds = Array.from({ length: options.standbys }, (_, index) => standbyId(index));
  const failed = failingSlaves(slaveIds, options.failures);
  const failedSet = new Set(failed);
  const workflowIds = new Set(slaveIds.map((id) => monitorWorkflowId(site, id)));
  let stopWorker: (() => Promise<number | null>) | undefined;
  let stopSimulator: (() => Promise<number | null>) | undefined;
  try {
    await seedSite(db, shape);
    const vms = new VmsSimulator(db);
    await vms.putSite(simulatedSite(shape));
    const tokens = await issueAgentTokens(db, [...slaveIds, ...standbyIds]);
    log(`site seeded in PostgreSQL and in the VMS, ${tokens.size} agent tokens issued`);
    // The VMS is a process of its own, as a site's bridge is; its state is in the run's database.
    const simulator = await startSimulator(
      { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl },
      join(runDir, 'vms-simulator.log'),
    );
    stopSimulator = () => simulator.stop();
    const readyFile = join(runDir, 'ready');
    const worker = await startWorker(
      workerEnvironment(
        config,
        {
          site,
          taskQueue,
          databaseUrl,
          readyFile,
          checkpointPeriodMs: options.checkpointPeriodMs,
          vmsBridgeUrl: simulator.url,
        },
        env.workerEnv,
      ),
      readyFile,
      join(runDir, 'worker.log'),
      env.workerNodeArgs,
    );
    stopWorker = () => worker.stop();
    const serverPid = findTemporalServerPid(Number(config.temporal.address.split(':')[1] ?? '7233'));
    const workerRssIdleMb = workerRssMb(worker.pid);
    const fleet: Fleet = createFleet({
      config: {
        ...config,
        site,
        temporal: { ...config.temporal, taskQueue },
        liveness: { ...config.liveness, checkpointPeriodMs: options.checkpointPeriodMs },
      },
      client,
      db,
    });

    // The Slaves heartbeat all along, as real agents do, before their monitors start: a monitor's silence
    // counts from its start, and the first of a thousand monitors would otherwise wait out the other starts.
    const warmUpMs = 2 * options.intervalMs;
    const stopAllAtMs =
      Date.now() +
      slaves * MONITOR_START_BUDGET_MS +
      warmUpMs +
      options.steadyMs +
      options.timeoutMs +
      FAILOVER_GRACE_MS +
      2 * DRAIN_WITHIN_MS;
    const agents = new HeartbeatAgents(
      worker.gatewayUrl,
      tokens,
      options.intervalMs,
      options.senderConcurrency,
      stopAllAtMs,
    );
    agents.startAll(slaveIds);

    const startsBegan = Date.now();
    await mapLimited(slaveIds, BULK_CONCURRENCY, (id) => fleet.startMonitor(id));
    const monitorStartsPerSec = slaves / ((Date.now() - startsBegan) / 1000);
    log(`${slaves} monitors started (${Math.round(monitorStartsPerSec)}/s)`);
    // A monitor's first task enters its Slave in the detector's roster (a few Temporal actions, once): the
    // steady window begins when every monitor has done it, or it would count the start-up of the last ones.
    const watchedWithinMs = Math.max(60_000, slaves * MONITOR_START_BUDGET_MS);
    await waitFor('every monitor to enter its Slave in the roster', watchedWithinMs, async () => {
      return (await outsideRoster(db, slaveIds)).length === 0;
    });
    log(`every Slave in the detector's roster after ${Date.now() - startsBegan} ms`);
    await sleep(warmUpMs);

    const steadyMark = cpuMark(worker.pid, simulator.pid, serverPid, database);
    const steadyFromMs = Date.now();
    const sentBeforeSteady = agents.counts.sent;
    await sleep(options.steadyMs);
    const steadyCpu = steadyMark.since();
    const steadyToMs = Date.now();
    const steadyHeartbeats = agents.counts.sent - sentBeforeSteady;
    const heartbeatsPerSec = steadyHeartbeats / steadyCpu.seconds;
    const rssSteadyMb = workerRssMb(worker.pid);
    log(
      `steady: ${Math.round(heartbeatsPerSec)} heartbeats/s, worker ${steadyCpu.workerCores.toFixed(2)} cores, ` +
        `PostgreSQL ${steadyCpu.postgresCores.toFixed(2)}, ${Math.round(rssSteadyMb)} MB`,
    );

    const failoverMark = cpuMark(worker.pid, simulator.pid, serverPid, database);
    await agents.fail(failed);
    // They crashed: the VMS no longer reaches them and they record nothing.
    await mapLimited(failed, BULK_CONCURRENCY, (id) => vms.setServerDown(id, true));
    log(
      `${failed.length} Slaves stopped heartbeating and went down; deemed broken in ${options.timeoutMs} ms`,
    );
    const promoted = new Set<string>();
    const allCommitted = await waitFor('the failovers', options.timeoutMs + FAILOVER_GRACE_MS, async () => {
      // A promoted server is a protected Slave with its own monitor: its agent heartbeats from now on.
      for (const serverId of await promotedServers(db)) {
        if (promoted.has(serverId)) continue;
        promoted.add(serverId);
        workflowIds.add(monitorWorkflowId(site, serverId));
        agents.start(serverId, Date.now());
      }
      // Done once every failed Slave's cameras are committed and its promoted server heartbeats.
      return (await committedCount(db, failed)) === failed.length && promoted.size >= failed.length;
    });
    // Two more intervals: the promoted servers' agents are heard, the others keep going.
    if (allCommitted) await sleep(2 * options.intervalMs);
    const failoverCpu = failoverMark.since();

    // While every live server still heartbeats: did the system hear each one, and does each keep a monitor?
    const alive = [...slaveIds.filter((id) => !failedSet.has(id)), ...promoted];
    const heard = [...slaveIds, ...promoted];
    const targets = new Map(
      heard.flatMap((id) => {
        const receivedAtMs = agents.lastReceivedAtMs(id);
        return receivedAtMs === undefined ? [] : [[id, receivedAtMs] as const];
      }),
    );
    // With a short checkpoint period every monitor has been told of its Slave by now (smoke); with the
    // default ten minutes most have not, and only the roster and the leases stand for the detector's view.
    const reportsChecked = 2 * options.checkpointPeriodMs <= DRAIN_WITHIN_MS;
    const drainBegan = Date.now();
    let liveness = { leases: heard, roster: alive, untold: alive, lost: alive };
    const settled = await waitFor('the liveness view of every live server', DRAIN_WITHIN_MS, async () => {
      const asked = [...new Set([...liveness.lost, ...liveness.untold])];
      const views = new Map(
        await mapLimited(
          asked,
          BULK_CONCURRENCY,
          async (id) => [id, await monitorView(fleet, id, reportsChecked)] as const,
        ),
      );
      liveness = {
        leases: await leasesBehind(
          db,
          new Map(liveness.leases.map((id) => [id, targets.get(id) ?? Infinity])),
        ),
        roster: await outsideRoster(db, liveness.roster),
        untold: liveness.untold.filter((id) => reportsChecked && views.get(id)?.told !== true),
        lost: liveness.lost.filter((id) => !isMonitoring(views.get(id))),
      };
      return Object.values(liveness).every((ids) => ids.length === 0);
    });
    const drainMs = Date.now() - drainBegan;
    // A monitor that only failed to answer in time is asked once more.
    const lost = await mapLimited(liveness.lost, BULK_CONCURRENCY, async (id) =>
      isMonitoring(await monitorView(fleet, id, false)) ? [] : [id],
    );
    // What an operator's `vms status` shows of the live servers, and how long it takes to answer.
    const statusBegan = Date.now();
    const shown = await collectSiteStatus(new SiteView(db), client, fleet);
    const statusMs = Date.now() - statusBegan;
    const aliveSet = new Set(alive);
    const misread = shown
      .filter((server) => aliveSet.has(server.id) && server.monitor !== 'monitoring')
      .map((server) => `${server.id} (${server.monitor})`);
    const livenessCorrectness: LivenessCorrectness = {
      heartbeatsFailed: agents.counts.failed,
      leasesBehind: liveness.leases.length,
      monitorsBehind: new Set([...liveness.roster, ...liveness.untold]).size,
      monitorsLost: lost.flat().length,
      statusMisread: misread.length,
      drainGaveUp: settled ? 0 : 1,
    };
    for (const [name, ids] of Object.entries({ ...liveness, lost: lost.flat(), misread })) {
      if (ids.length > 0) log(`${name}: ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', ...' : ''}`);
    }

    const histories = await monitorHistories(
      client,
      [...slaveIds, ...promoted].map((id) => monitorWorkflowId(site, id)),
      BULK_CONCURRENCY,
    );
    const steadyActions = actionsBetween(histories, steadyFromMs, steadyToMs);
    const steadyActionCount = Object.values(steadyActions).reduce((sum, count) => sum + count, 0);
    const failedWorkflows = new Set(failed.map((id) => monitorWorkflowId(site, id)));
    const deadlineReport = histories
      .filter((history) => failedWorkflows.has(history.workflowId))
      .flatMap((history) =>
        history.reports.flatMap(({ report, recordedAtMs }) =>
          report.kind === 'deadline' ? [recordedAtMs - report.deadlineMs] : [],
        ),
      );

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
    const failoverIds = (await db.query<{ id: string }>('SELECT id FROM failovers')).rows.map(
      (row) => row.id,
    );
    // Monitors end before the agents stop, and the worker (with its detector) right after: no silence of
    // the end of the run is judged.
    await terminateRun(client, [...workflowIds, ...failoverIds]);
    const heartbeatsStoppedAtMs = Date.now();
    await agents.stopAll();
    await worker.stop();
    stopWorker = undefined;
    await simulator.stop();
    stopSimulator = undefined;
    const siteChecks = await siteCorrectness(
      db,
      {
        slaveIds: failed,
        cameraIds: failed.flatMap((id) => ipCameraIds(id, options.ipCamerasPerSlave)),
        cameraSlaveIds: failed.flatMap((id) => ipCameraIds(id, options.ipCamerasPerSlave).map(() => id)),
      },
      heartbeatsStoppedAtMs,
    );
    return {
      slaves,
      failures: failed.length,
      intervalMs: options.intervalMs,
      timeoutMs: options.timeoutMs,
      checkpointPeriodMs: options.checkpointPeriodMs,
      overhead: percentiles(committed.map((timing) => (timing.camerasCommittedMs ?? 0) - timing.deadlineMs)),
      detection: percentiles(timings.map((timing) => timing.startedMs - timing.deadlineMs)),
      workflowStart: percentiles(workflowStartMs.flat()),
      endToEnd: percentiles(
        committed.map(
          (timing) =>
            (timing.camerasCommittedMs ?? 0) -
            ((agents.lastSentAtMs(timing.slaveId) ?? 0) + options.timeoutMs),
        ),
      ),
      deadlineReport: percentiles(deadlineReport),
      gatewayRequest: percentiles(agents.counts.requestMs),
      scheduleLag: percentiles(agents.counts.scheduleLagMs),
      heartbeatsPerSec,
      heartbeatsSent: agents.counts.sent,
      sendFailures: Object.fromEntries(agents.errors),
      steadyActions,
      actionsPerSlaveHour: steadyActionCount / slaves / ((steadyToMs - steadyFromMs) / 3_600_000),
      actionsPerHeartbeat: steadyActionCount / steadyHeartbeats,
      otherSignals: histories.reduce((sum, history) => sum + history.otherSignals.length, 0),
      reportsChecked,
      drainMs,
      statusMs,
      steadyCpu,
      failoverCpu,
      workerRssIdleMb,
      workerRssMb: rssSteadyMb,
      monitorStartsPerSec,
      // Every heartbeat, up to the agents' stop.
      correctness: { ...siteChecks, ...livenessCorrectness, heartbeatsFailed: agents.counts.failed },
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
    await stopSimulator?.();
    await db.end();
    if (!options.keepDatabase) await dropRunDatabase(config.databaseUrl, database);
  }
};
