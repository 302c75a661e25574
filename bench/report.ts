/** What a run prints: a readable report, then one JSON line a script can parse. */
import { cpus } from 'node:os';
import type { CpuWindow } from './processes';
import type { RunResult } from './run';
import { formatPercentiles, round } from './stats';

export const summaryLine = (result: RunResult) => ({
  slaves: result.slaves,
  failures: result.failures,
  intervalMs: result.intervalMs,
  timeoutMs: result.timeoutMs,
  checkpointPeriodMs: result.checkpointPeriodMs,
  overheadMsP50: round(result.overhead.p50),
  overheadMsP95: round(result.overhead.p95),
  overheadMsP99: round(result.overhead.p99),
  overheadMsMax: round(result.overhead.max),
  detectMsP50: round(result.detection.p50),
  detectMsP99: round(result.detection.p99),
  deadlineReportMsP50: round(result.deadlineReport.p50),
  deadlineReportMsP99: round(result.deadlineReport.p99),
  workflowStartMsP99: round(result.workflowStart.p99),
  gatewayMsP50: round(result.gatewayRequest.p50),
  gatewayMsP99: round(result.gatewayRequest.p99),
  heartbeatsPerSec: round(result.heartbeatsPerSec),
  temporalActionsPerSlaveHour: round(result.actionsPerSlaveHour, 2),
  temporalActionsPerHeartbeat: round(result.actionsPerHeartbeat, 4),
  workerCpuCores: round(result.steadyCpu.workerCores, 2),
  postgresCpuCores: round(result.steadyCpu.postgresCores, 2),
  temporalCpuCores:
    result.steadyCpu.serverCores === undefined ? null : round(result.steadyCpu.serverCores, 2),
  temporalPersistenceCpuCores:
    result.steadyCpu.temporalPersistenceCores === undefined
      ? null
      : round(result.steadyCpu.temporalPersistenceCores, 2),
  // The orchestrator's share of the machine: what the Master gives it (the VMS and agents are elsewhere).
  cpuCores: round(orchestratorCores(result.steadyCpu), 2),
  failoverCpuCores: round(orchestratorCores(result.failoverCpu), 2),
  cpuMsPerFailover: round(perFailoverMs(result, orchestratorCores)),
  vmsCpuMsPerFailover: round(perFailoverMs(result, (cpu) => cpu.vmsCores)),
  benchCpuCores: round(result.steadyCpu.benchCores, 2),
  vmsCpuCores: round(result.steadyCpu.vmsCores, 2),
  machineCpuCores: round(result.steadyCpu.machineCores, 2),
  cores: cpus().length,
  workerRssMb: round(result.workerRssMb),
  statusMs: result.statusMs,
  ...result.correctness,
});

export type Summary = ReturnType<typeof summaryLine>;

/**
 * CPU milliseconds one failover cost each part, on average: what the failover window used above the steady
 * state's rate, over the failed Slaves. What K failovers at once need of the machine is K times this.
 */
const perFailoverMs = (result: RunResult, cores: (cpu: CpuWindow) => number): number => {
  const window = result.failoverCpu;
  const above = cores(window) - cores(result.steadyCpu);
  return (above * window.seconds * 1000) / Math.max(1, result.failures);
};

/** The local Temporal server with its persistence (0 when it is not on this machine). */
function temporalCores(cpu: CpuWindow): number {
  return (cpu.serverCores ?? 0) + (cpu.temporalPersistenceCores ?? 0);
}

/** Worker, PostgreSQL and the local Temporal server with its persistence: the orchestrator's CPU. */
function orchestratorCores(cpu: CpuWindow): number {
  return cpu.workerCores + cpu.postgresCores + temporalCores(cpu);
}

export const correctnessFailures = (result: RunResult): string[] =>
  Object.entries(result.correctness)
    .filter(([, count]) => count !== 0)
    .map(([name, count]) => `${name}=${count}`);

export const report = (result: RunResult): string => {
  const cores = cpus().length;
  const cpu = result.steadyCpu;
  const failoverCpu = result.failoverCpu;
  const server = (value: number | undefined) => (value === undefined ? 'not local' : `${round(value, 2)}`);
  const persistence = (value: number | undefined) =>
    value === undefined ? '' : ` (+ its PostgreSQL databases ${round(value, 2)})`;
  const perThousand = (value: number) => round((value * 1000) / result.slaves, 3);
  const hours = cpu.seconds / 3600;
  const heartbeatsPerSlaveHour = result.heartbeatsPerSec / result.slaves / (1 / 3600);
  return [
    '',
    `== ${result.slaves} Slaves, heartbeat every ${result.intervalMs} ms, timeout ${result.timeoutMs} ms, ` +
      `${result.failures} failing at once, checkpoint every ${result.checkpointPeriodMs} ms ` +
      `(${round(result.runSeconds)} s) ==`,
    formatPercentiles('failover overhead (cameras - deadline)', result.overhead),
    formatPercentiles('detection overhead (started - deadline)', result.detection),
    formatPercentiles('deadline report (recorded - deadline)', result.deadlineReport),
    formatPercentiles('failover workflow started - deadline', result.workflowStart),
    formatPercentiles('end to end (cameras - last sent - T)', result.endToEnd),
    formatPercentiles('gateway request (agent round trip)', result.gatewayRequest),
    formatPercentiles('bench sender behind schedule', result.scheduleLag),
    `heartbeats: ${round(result.heartbeatsPerSec)}/s sustained over ${round(cpu.seconds)} s ` +
      `(${round(heartbeatsPerSlaveHour)} per Slave-hour); ${result.heartbeatsSent} taken by the gateway; ` +
      `failures ${JSON.stringify(result.sendFailures)}`,
    `Temporal actions in the steady window: ${round(result.actionsPerSlaveHour, 2)} per Slave-hour ` +
      `${JSON.stringify(result.steadyActions)} over ${round(hours * 3600)} s, ` +
      `${round(result.actionsPerHeartbeat, 4)} per heartbeat; ` +
      `signals other than reports: ${result.otherSignals}`,
    `liveness view settled in ${result.drainMs} ms` +
      (result.reportsChecked
        ? ' (every monitor told of its Slave)'
        : ' (roster and leases; checkpoints not due)'),
    `monitors started at ${round(result.monitorStartsPerSec)}/s; vms status read the site in ${result.statusMs} ms`,
    `steady CPU (cores of ${cores}): worker ${round(cpu.workerCores, 2)} (${perThousand(cpu.workerCores)} per 1000 ` +
      `Slaves), PostgreSQL ${round(cpu.postgresCores, 2)}, Temporal server ${server(cpu.serverCores)}` +
      `${persistence(cpu.temporalPersistenceCores)}, ` +
      `bench agents ${round(cpu.benchCores, 2)}, VMS simulator ${round(cpu.vmsCores, 2)}, ` +
      `machine ${round(cpu.machineCores, 2)} busy`,
    `failover CPU (cores of ${cores}): worker ${round(failoverCpu.workerCores, 2)}, PostgreSQL ` +
      `${round(failoverCpu.postgresCores, 2)}, Temporal server ${server(failoverCpu.serverCores)}` +
      `${persistence(failoverCpu.temporalPersistenceCores)}, ` +
      `VMS simulator ${round(failoverCpu.vmsCores, 2)}, ` +
      `machine ${round(failoverCpu.machineCores, 2)} busy over ${round(failoverCpu.seconds)} s`,
    `CPU per failover (ms, window above the steady rate, over ${result.failures}): ` +
      `worker ${round(perFailoverMs(result, (window) => window.workerCores))}, ` +
      `PostgreSQL ${round(perFailoverMs(result, (window) => window.postgresCores))}, ` +
      `Temporal server ${round(perFailoverMs(result, temporalCores))}, ` +
      `all three ${round(perFailoverMs(result, orchestratorCores))}; ` +
      `VMS simulator ${round(perFailoverMs(result, (window) => window.vmsCores))}`,
    `worker RSS: ${round(result.workerRssIdleMb)} MB idle, ${round(result.workerRssMb)} MB monitoring ` +
      `(${round(((result.workerRssMb - result.workerRssIdleMb) * 1024) / result.slaves)} kB per Slave)`,
    `correctness: ${Object.entries(result.correctness)
      .map(([name, count]) => `${name} ${count}`)
      .join(', ')} (failovers caused by the end of the run, not counted: ${result.failoversAfterRun})`,
  ].join('\n');
};
