/** The one place that reads the environment: typed, validated once at start, failing fast. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { TLSConfig } from '@temporalio/client';
import { parseDuration } from '../domain/duration';
import { DEFAULT_SITE, DEFAULT_TASK_QUEUE } from '../domain/names';
import { projectRoot } from './paths';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type LogFormat = 'pretty' | 'json';

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** TLS settings, in the SDK's own type so that every field reaches it; undefined means plain TCP. */
  tls?: TLSConfig;
  apiKey?: string;
}

export interface FailoverTuning {
  /** How often a Slave waiting for a matched standby looks again, besides being told when one appears. */
  standbyRecheckMs: number;
  pluginRetryInitialMs: number;
  pluginRetryMaxIntervalMs: number;
  pluginRetryMaxAttempts: number;
  /** How long the promoted server may take to come up before the plugin reinstall starts retrying. */
  serverUpTimeoutMs: number;
}

export interface AppConfig {
  /** The VMS site this deployment protects; part of every workflow id. */
  site: string;
  databaseUrl: string;
  temporal: TemporalConfig;
  failover: FailoverTuning;
  monitor: { heartbeatsPerRun: number };
  log: { level: string; format: LogFormat };
  /** The PGlite server `scripts/postgres.sh` starts on a machine without PostgreSQL (development only). */
  embeddedPostgres: { port: number; dataDir: string };
  worker: {
    identity: string;
    /** Prometheus endpoint of the Temporal runtime (`/metrics`); 0 turns it off. */
    metricsPort: number;
    /** HTTP `/healthz` (alive) and `/readyz` (polling) for orchestrators; 0 turns it off. */
    healthPort: number;
    /** Written once the worker polls, removed as soon as it starts shutting down. */
    readyFile?: string;
    maxCachedWorkflows?: number;
    /** PostgreSQL connections of the worker, all opened at start and kept open. */
    databaseConnections: number;
    /** Workflow tasks polled at once; heartbeats of many monitors need more than the SDK's 10 (docs/benchmark.md). */
    workflowTaskPollers?: number;
    /** Workflow tasks executed at once (the SDK's default is 40). */
    workflowTaskSlots?: number;
  };
}

type Env = Record<string, string | undefined>;

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/vms_failover';
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const text = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
};

const durationMs = (env: Env, name: string, fallback: string): number => {
  const raw = text(env, name) ?? fallback;
  const parsed = parseDuration(raw);
  if (parsed === undefined || parsed <= 0) {
    throw new ConfigError(`${name}="${raw}" is not a duration (examples: 500ms, 30s, 5m)`);
  }
  return parsed;
};

const integer = (env: Env, name: string, fallback: number, min: number, max: number): number => {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const parsed = Number(raw);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(`${name}="${raw}" must be a whole number from ${min} to ${max}`);
  }
  return parsed;
};

/** An integer setting that has no default of ours: left out, the SDK chooses. */
const optionalInteger = (env: Env, name: string, min: number, max: number): number | undefined =>
  text(env, name) === undefined ? undefined : integer(env, name, min, min, max);

/** The SDK's maxConcurrentWorkflowTaskExecutions when none is given. */
const SDK_WORKFLOW_TASK_SLOTS = 40;

const flag = (env: Env, name: string): boolean => {
  const raw = text(env, name)?.toLowerCase();
  if (raw === undefined || raw === 'false' || raw === '0' || raw === 'no') return false;
  if (raw === 'true' || raw === '1' || raw === 'yes') return true;
  throw new ConfigError(`${name}="${raw}" must be true or false`);
};

/** A secret given either inline or as a file path (NAME_FILE), never both. */
const secret = (env: Env, name: string): string | undefined => {
  const inline = text(env, name);
  const file = text(env, `${name}_FILE`);
  if (inline !== undefined && file !== undefined)
    throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
  if (file === undefined) return inline;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new ConfigError(`${name}_FILE="${file}" cannot be read`);
  }
};

const fileContents = (env: Env, name: string): Buffer | undefined => {
  const path = text(env, name);
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch {
    throw new ConfigError(`${name}="${path}" cannot be read`);
  }
};

const loadTemporalTls = (env: Env): TLSConfig | undefined => {
  const crt = fileContents(env, 'TEMPORAL_TLS_CERT_PATH');
  const key = fileContents(env, 'TEMPORAL_TLS_KEY_PATH');
  if ((crt === undefined) !== (key === undefined)) {
    throw new ConfigError('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  const serverRootCACertificate = fileContents(env, 'TEMPORAL_TLS_CA_PATH');
  const serverNameOverride = text(env, 'TEMPORAL_TLS_SERVER_NAME');
  const enabled = flag(env, 'TEMPORAL_TLS') || crt !== undefined || serverRootCACertificate !== undefined;
  if (!enabled) return undefined;
  // Assigned field by field: a name the SDK does not know is a type error, not a setting silently dropped.
  const tls: TLSConfig = {};
  if (serverNameOverride !== undefined) tls.serverNameOverride = serverNameOverride;
  if (serverRootCACertificate !== undefined) tls.serverRootCACertificate = serverRootCACertificate;
  if (crt !== undefined && key !== undefined) tls.clientCertPair = { crt, key };
  return tls;
};

const loadTemporal = (env: Env): TemporalConfig => {
  const apiKey = secret(env, 'TEMPORAL_API_KEY');
  // An API key always travels over TLS (Temporal Cloud and clusters behind a TLS proxy require it).
  const tls = loadTemporalTls(env) ?? (apiKey !== undefined ? {} : undefined);
  return {
    address: text(env, 'TEMPORAL_ADDRESS') ?? '127.0.0.1:7233',
    namespace: text(env, 'TEMPORAL_NAMESPACE') ?? 'default',
    taskQueue: text(env, 'TEMPORAL_TASK_QUEUE') ?? DEFAULT_TASK_QUEUE,
    ...(tls !== undefined && { tls }),
    ...(apiKey !== undefined && { apiKey }),
  };
};

/** The variables that say which Temporal cluster to reach and how (address, namespace, TLS, API key). */
const TEMPORAL_CONNECTION_VARIABLES = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CA_PATH',
  'TEMPORAL_TLS_CERT_PATH',
  'TEMPORAL_TLS_KEY_PATH',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_API_KEY',
  'TEMPORAL_API_KEY_FILE',
];

/** Those of `env` that are set: for a child process (a worker, the CLI) that must reach the same cluster. */
export const temporalConnectionEnv = (env: Env = process.env): Record<string, string> =>
  Object.fromEntries(
    TEMPORAL_CONNECTION_VARIABLES.flatMap((name) => {
      const value = text(env, name);
      return value === undefined ? [] : [[name, value]];
    }),
  );

const loadDatabaseUrl = (env: Env): string => {
  const url = secret(env, 'DATABASE_URL') ?? DEFAULT_DATABASE_URL;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error('protocol');
  } catch {
    throw new ConfigError('DATABASE_URL must look like postgres://user:password@host:5432/database');
  }
  return url;
};

export const loadConfig = (env: Env = process.env): AppConfig => {
  const level = text(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(level))
    throw new ConfigError(`LOG_LEVEL="${level}" must be one of ${LOG_LEVELS.join(', ')}`);
  const formatRaw = text(env, 'LOG_FORMAT') ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (formatRaw !== 'pretty' && formatRaw !== 'json')
    throw new ConfigError(`LOG_FORMAT="${formatRaw}" must be pretty or json`);
  const readyFile = text(env, 'WORKER_READY_FILE');
  const maxCachedWorkflows = optionalInteger(env, 'WORKER_MAX_CACHED_WORKFLOWS', 0, 1_000_000);
  const workflowTaskSlots = optionalInteger(env, 'WORKER_WORKFLOW_TASK_SLOTS', 2, 10_000);
  const workflowTaskPollers = optionalInteger(env, 'WORKER_WORKFLOW_TASK_POLLERS', 2, 1_000);
  if (
    workflowTaskPollers !== undefined &&
    workflowTaskPollers > (workflowTaskSlots ?? SDK_WORKFLOW_TASK_SLOTS)
  ) {
    throw new ConfigError(
      `WORKER_WORKFLOW_TASK_POLLERS=${workflowTaskPollers} cannot exceed WORKER_WORKFLOW_TASK_SLOTS=${workflowTaskSlots ?? SDK_WORKFLOW_TASK_SLOTS}`,
    );
  }
  const site = text(env, 'VMS_SITE') ?? DEFAULT_SITE;
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(site)) {
    throw new ConfigError(`VMS_SITE="${site}" must be 1 to 31 lower-case letters, digits or "-"`);
  }
  return {
    site,
    databaseUrl: loadDatabaseUrl(env),
    temporal: loadTemporal(env),
    failover: {
      standbyRecheckMs: durationMs(env, 'FAILOVER_STANDBY_RECHECK', '30s'),
      pluginRetryInitialMs: durationMs(env, 'PLUGIN_RETRY_INITIAL', '5s'),
      pluginRetryMaxIntervalMs: durationMs(env, 'PLUGIN_RETRY_MAX_INTERVAL', '10m'),
      pluginRetryMaxAttempts: integer(env, 'PLUGIN_RETRY_MAX_ATTEMPTS', 10, 1, 1_000),
      serverUpTimeoutMs: durationMs(env, 'PROMOTED_SERVER_UP_TIMEOUT', '10m'),
    },
    monitor: { heartbeatsPerRun: integer(env, 'MONITOR_HEARTBEATS_PER_RUN', 5_000, 10, 9_000) },
    log: { level, format: formatRaw },
    embeddedPostgres: {
      port: integer(env, 'EMBEDDED_PG_PORT', 5432, 0, 65_535),
      dataDir: resolve(text(env, 'EMBEDDED_PG_DATA_DIR') ?? join(projectRoot(), '.data', 'pglite')),
    },
    worker: {
      identity: text(env, 'WORKER_IDENTITY') ?? `vms-worker@${hostname()}`,
      metricsPort: integer(env, 'METRICS_PORT', 9464, 0, 65_535),
      healthPort: integer(env, 'HEALTH_PORT', 0, 0, 65_535),
      databaseConnections: integer(env, 'WORKER_DATABASE_CONNECTIONS', 10, 1, 500),
      ...(readyFile !== undefined && { readyFile }),
      ...(maxCachedWorkflows !== undefined && { maxCachedWorkflows }),
      ...(workflowTaskPollers !== undefined && { workflowTaskPollers }),
      ...(workflowTaskSlots !== undefined && { workflowTaskSlots }),
    },
  };
};
