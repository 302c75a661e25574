/** What a run prints: a readable report, then one JSON line a script can parse. */
import type { RunResult } from './run';
import { formatPercentiles, round } from './stats';

export const summaryLine = (result: RunResult) => ({
  slaves: result.slaves,
  failures: result.failures,
  intervalMs: result.intervalMs,
  timeoutMs: result.timeoutMs,
  overheadMsP50: round(result.overhead.p50),
  overheadMsP95: round(result.overhead.p95),
  overheadMsP99: round(result.overhead.p99),
  overheadMsMax: round(result.overhead.max),
  detectMsP50: round(result.detection.p50),
  detectMsP99: round(result.detection.p99),
  workflowStartMsP99: round(result.workflowStart.p99),
  heartbeatsPerSec: round(result.heartbeatsPerSec),
  signalLagMsP99: round(result.signalLag.p99),
  monitorsBehind: result.monitorsBehind,
  workerCpuCores: round(result.steadyCpu.workerCores, 2),
  workerRssMb: round(result.workerRssMb),
  ...result.correctness,
});

export type Summary = ReturnType<typeof summaryLine>;

export const correctnessFailures = (result: RunResult): string[] =>
  Object.entries(result.correctness)
    .filter(([, count]) => count !== 0)
    .map(([name, count]) => `${name}=${count}`);

export const report = (result: RunResult): string => {
  const perSlave = (value: number) => round(value / result.slaves, 4);
  const cpu = result.steadyCpu;
  const failoverCpu = result.failoverCpu;
  const server = (cores: number | undefined) =>
    cores === undefined ? 'not local' : `${round(cores, 2)} cores`;
  return [
    '',
    `== ${result.slaves} Slaves, heartbeat every ${result.intervalMs} ms, timeout ${result.timeoutMs} ms, ` +
      `${result.failures} failing at once (${round(result.runSeconds)} s) ==`,
    formatPercentiles('failover overhead (cameras - deadline)', result.overhead),
    formatPercentiles('detection overhead (started - deadline)', result.detection),
    formatPercentiles('failover workflow started - deadline', result.workflowStart),
    formatPercentiles('end to end (cameras - last sent - T)', result.endToEnd),
    formatPercentiles('signal lag (sent - handled)', result.signalLag),
    formatPercentiles('signal accepted by the server', result.ack),
    formatPercentiles('bench sender behind schedule', result.scheduleLag),
    `heartbeats: ${round(result.heartbeatsPerSec)}/s sustained over ${round(cpu.seconds)} s; ` +
      `${result.heartbeatsSent} sent, ${result.heartbeatsHandled} handled, ${result.monitorsBehind} monitors behind ` +
      `after ${result.drainMs} ms; send failures ${JSON.stringify(result.sendFailures)}`,
    `monitors started at ${round(result.monitorStartsPerSec)}/s`,
    `steady CPU: worker ${round(cpu.workerCores, 2)} cores (${perSlave(cpu.workerCores * 1000)} ms/s per Slave), ` +
      `Temporal server ${server(cpu.serverCores)}, machine ${round(cpu.machineCores, 2)} cores busy`,
    `failover CPU: worker ${round(failoverCpu.workerCores, 2)} cores, Temporal server ${server(failoverCpu.serverCores)}, ` +
      `machine ${round(failoverCpu.machineCores, 2)} cores busy over ${round(failoverCpu.seconds)} s`,
    `worker RSS: ${round(result.workerRssIdleMb)} MB idle, ${round(result.workerRssMb)} MB monitoring ` +
      `(${round(((result.workerRssMb - result.workerRssIdleMb) * 1024) / result.slaves)} kB per Slave)`,
    `correctness: ${Object.entries(result.correctness)
      .map(([name, count]) => `${name} ${count}`)
      .join(', ')} (failovers caused by the end of the run, not counted: ${result.failoversAfterRun})`,
  ].join('\n');
};
