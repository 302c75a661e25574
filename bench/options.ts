/**
 * The benchmark's command line: the size of the simulated site. A bad value is reported by commander
 * (`bench: error: option '--slaves <list>' argument 'x' is invalid. ...`) and nothing runs.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../domain/duration';

export interface BenchOptions {
  /** One run per size, smallest first; the chart draws overhead against these. */
  slaveCounts: number[];
  intervalMs: number;
  timeoutMs: number;
  failures: number;
  standbys: number;
  ipCamerasPerSlave: number;
  /** Heartbeat requests in flight at once from the bench process (kept-alive connections to the gateway). */
  senderConcurrency: number;
  /** The detector's checkpoint period (LIVENESS_CHECKPOINT_PERIOD of the worker under test). */
  checkpointPeriodMs: number;
  /** How long every Slave heartbeats before the failure, after a warm-up of two intervals. */
  steadyMs: number;
  smoke: boolean;
  keepDatabase: boolean;
}

const SMOKE: Omit<BenchOptions, 'smoke' | 'keepDatabase' | 'senderConcurrency'> = {
  slaveCounts: [40],
  // Short enough that every monitor is told of its Slave within the run, so that the smoke checks it.
  checkpointPeriodMs: 5_000,
  intervalMs: 1_000,
  timeoutMs: 3_000,
  failures: 5,
  standbys: 5,
  ipCamerasPerSlave: 2,
  steadyMs: 5_000,
};

const MAX_SLAVES = 20_000;

/** The configuration of the targets, the README's table and the chart. */
export const DEFAULT_INTERVAL_MS = 5_000;
export const DEFAULT_TIMEOUT_MS = 15_000;
/** The worker's own default (docs/liveness.md). */
const DEFAULT_CHECKPOINT_PERIOD_MS = 600_000;

const wholeNumber =
  (min: number, max: number) =>
  (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return parsed;
  };

const duration =
  (minMs: number) =>
  (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < minMs) {
      throw new InvalidArgumentError(`must be a duration of at least ${minMs} ms (examples: 500ms, 5s, 1m)`);
    }
    return ms;
  };

const slaveList = (value: string): number[] => {
  const counts = value.split(',').map((part) => wholeNumber(1, MAX_SLAVES)(part.trim()));
  return [...new Set(counts)].sort((a, b) => a - b);
};

export const parseBenchOptions = (argv: string[]): BenchOptions => {
  const program = new Command('bench')
    .description(
      'Failover latency and monitoring capacity of a simulated site on the real stack: S Slaves heartbeat ' +
        "every I to the worker's gateway, K of them stop at the same moment, F standbys take their place.",
    )
    .option(
      '--slaves <list>',
      'Slaves monitored; a comma list runs one fresh site per size',
      slaveList,
      [1_000],
    )
    .addOption(
      new Option('--interval <duration>', 'heartbeat interval of each Slave')
        .argParser(duration(100))
        .default(DEFAULT_INTERVAL_MS, '5s'),
    )
    .addOption(
      new Option('--timeout <duration>', 'failover timeout of each Slave (no heartbeat for this long)')
        .argParser(duration(1_000))
        .default(DEFAULT_TIMEOUT_MS, '15s'),
    )
    .option(
      '--failures <count>',
      'Slaves whose heartbeats stop at the same moment',
      wholeNumber(1, MAX_SLAVES),
      100,
    )
    .option(
      '--standbys <count>',
      'standby failover servers (default: as many as failures)',
      wholeNumber(1, MAX_SLAVES),
    )
    .option('--cameras <count>', 'IP cameras per Slave', wholeNumber(1, 64), 4)
    .option(
      '--senders <count>',
      'heartbeat requests in flight at once (kept-alive HTTP connections to the gateway)',
      wholeNumber(1, 1_000),
      64,
    )
    .addOption(
      new Option(
        '--checkpoint-period <duration>',
        "the detector's checkpoint to each monitor (LIVENESS_CHECKPOINT_PERIOD of the worker)",
      )
        .argParser(duration(1_000))
        .default(DEFAULT_CHECKPOINT_PERIOD_MS, '10m'),
    )
    .addOption(
      new Option('--steady <duration>', 'time every Slave heartbeats before the failure')
        .argParser(duration(1_000))
        .default(20_000, '20s'),
    )
    .option('--smoke', 'a small quick configuration whose correctness counters must be 0', false)
    .option('--keep-database', 'keep the run database for inspection', false)
    .addHelpText(
      'after',
      '\nRun through npm run bench -- [options]. Unless TEMPORAL_ADDRESS is set, the benchmark starts a Temporal\n' +
        'dev server of its own (port BENCH_TEMPORAL_PORT, 7243 by default) on a new SQLite file and stops it at\n' +
        'the end. Temporal and PostgreSQL must be on 127.0.0.1. Method and figures: docs/benchmark.md.',
    )
    .exitOverride()
    .configureOutput({ outputError: (message, write) => write(`bench: ${message}`) });
  program.parse(argv, { from: 'user' });
  const raw = program.opts<{
    slaves: number[];
    interval: number;
    timeout: number;
    failures: number;
    standbys?: number;
    cameras: number;
    senders: number;
    checkpointPeriod: number;
    steady: number;
    smoke: boolean;
    keepDatabase: boolean;
  }>();
  const options: BenchOptions = raw.smoke
    ? { ...SMOKE, senderConcurrency: raw.senders, smoke: true, keepDatabase: raw.keepDatabase }
    : {
        slaveCounts: raw.slaves,
        intervalMs: raw.interval,
        timeoutMs: raw.timeout,
        failures: raw.failures,
        standbys: raw.standbys ?? raw.failures,
        ipCamerasPerSlave: raw.cameras,
        senderConcurrency: raw.senders,
        checkpointPeriodMs: raw.checkpointPeriod,
        steadyMs: raw.steady,
        smoke: false,
        keepDatabase: raw.keepDatabase,
      };
  const problem = optionProblem(options);
  if (problem !== undefined) {
    throw new InvalidArgumentError(problem);
  }
  return options;
};

const optionProblem = (options: BenchOptions): string | undefined => {
  const smallest = options.slaveCounts[0] ?? 0;
  if (options.failures > smallest) {
    return `--failures ${options.failures} is more than the smallest --slaves (${smallest})`;
  }
  if (options.standbys < options.failures) {
    return `--standbys ${options.standbys} is fewer than --failures ${options.failures}: every failed Slave needs one`;
  }
  if (options.timeoutMs <= options.intervalMs) {
    return `--timeout must be longer than --interval, or healthy Slaves would be failed over`;
  }
  return undefined;
};
