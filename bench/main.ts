/**
 * `npm run bench`: failover latency and monitoring capacity on the real stack (Temporal, PostgreSQL, the
 * worker service as its own process). Prints a report per run and ends with one JSON line per run; exits
 * non-zero when a correctness counter is not 0. Runs other than --smoke are kept in .data/bench/results.jsonl
 * and drawn in docs/bench-overhead.svg.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, temporalConnectionEnv } from '../infra/config';
import type { AppConfig } from '../infra/config';
import { createLogger } from '../infra/logger';
import { projectRoot } from '../infra/paths';
import { connectClient } from '../infra/temporal';
import { overheadChart } from './chart';
import type { ChartPoint } from './chart';
import { DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, parseBenchOptions } from './options';
import { correctnessFailures, report, summaryLine } from './report';
import type { Summary } from './report';
import { runOnce } from './run';

const LOOPBACK = /^(127\.0\.0\.1|localhost)(:\d+)?$/;

const RESULTS_FILE = join(projectRoot(), '.data', 'bench', 'results.jsonl');
const CHART_FILE = join(projectRoot(), 'docs', 'bench-overhead.svg');

const fail = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
};

/** The worker tuning the operator set for the bench, passed on to the worker process it starts. */
const workerTuningEnv = (config: AppConfig): Record<string, string> => ({
  WORKER_DATABASE_CONNECTIONS: String(config.worker.databaseConnections),
  WORKER_MAX_CACHED_WORKFLOWS: String(config.worker.maxCachedWorkflows),
  ...(config.worker.workflowTaskPollers !== undefined && {
    WORKER_WORKFLOW_TASK_POLLERS: String(config.worker.workflowTaskPollers),
  }),
  ...(config.worker.workflowTaskSlots !== undefined && {
    WORKER_WORKFLOW_TASK_SLOTS: String(config.worker.workflowTaskSlots),
  }),
  ...(config.worker.workflowThreads !== undefined && {
    WORKER_WORKFLOW_THREADS: String(config.worker.workflowThreads),
  }),
});

/** The latest run of each size with this heartbeat interval and timeout, for the chart. */
const chartPoints = (intervalMs: number, timeoutMs: number): ChartPoint[] => {
  const latest = new Map<number, Summary>();
  for (const line of readFileSync(RESULTS_FILE, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const summary = JSON.parse(line) as Summary;
    if (summary.intervalMs === intervalMs && summary.timeoutMs === timeoutMs)
      latest.set(summary.slaves, summary);
  }
  return [...latest.values()];
};

const main = async (): Promise<number> => {
  let options;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (error) {
    // Options that do not fit together; commander reported the others (a bad value) itself.
    if (error instanceof InvalidArgumentError) return fail(error.message);
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) return fail(`configuration error: ${error.message}`);
    throw error;
  }
  const databaseHost = new URL(config.databaseUrl).host;
  if (!LOOPBACK.test(config.temporal.address) || !LOOPBACK.test(databaseHost)) {
    return fail('the benchmark runs on 127.0.0.1 only: TEMPORAL_ADDRESS and DATABASE_URL must be local');
  }
  const logger = createLogger({ log: { level: 'warn', format: 'json' } });
  const client = await connectClient(config.temporal);
  const summaries: Summary[] = [];
  let broken = false;
  try {
    for (const slaves of options.slaveCounts) {
      const result = await runOnce(
        // The worker reaches the cluster the way the bench does (TLS, API key).
        {
          config,
          client,
          logger,
          workerEnv: { ...temporalConnectionEnv(), ...workerTuningEnv(config) },
          // Node flags for the worker only, e.g. a CPU profile: `--cpu-prof --cpu-prof-dir=DIR`.
          workerNodeArgs: (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
        },
        options,
        slaves,
      );
      process.stdout.write(`${report(result)}\n`);
      const summary = summaryLine(result);
      summaries.push(summary);
      const failures = correctnessFailures(result);
      if (failures.length > 0) {
        broken = true;
        process.stderr.write(`bench: correctness counters are not 0: ${failures.join(', ')}\n`);
      }
      // A run that broke a counter is reported, not kept among the figures.
      if (!options.smoke && failures.length === 0) {
        mkdirSync(join(projectRoot(), '.data', 'bench'), { recursive: true });
        appendFileSync(RESULTS_FILE, `${JSON.stringify(summary)}\n`);
      }
    }
  } finally {
    await client.connection.close();
  }
  // The chart is the README's: runs with another interval or timeout are kept in the results, not drawn.
  const drawn = options.intervalMs === DEFAULT_INTERVAL_MS && options.timeoutMs === DEFAULT_TIMEOUT_MS;
  if (!options.smoke && drawn && existsSync(RESULTS_FILE)) {
    const points = chartPoints(options.intervalMs, options.timeoutMs);
    writeFileSync(
      CHART_FILE,
      overheadChart(
        points,
        `heartbeat every ${options.intervalMs / 1000} s, timeout ${options.timeoutMs / 1000} s; latest run of each size`,
      ),
    );
    process.stderr.write(`bench: chart of ${points.length} sizes written to docs/bench-overhead.svg\n`);
  }
  for (const summary of summaries) process.stdout.write(`${JSON.stringify(summary)}\n`);
  return broken ? 1 : 0;
};

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
