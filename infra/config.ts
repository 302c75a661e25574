/** The one place that reads the environment: typed, validated once at start, failing fast. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { FailoverTuning } from '../domain/contracts';
import type { TLSConfig } from '@temporalio/client';
import { parseDuration } from '../domain/duration';
import type { MassFailurePolicy } from '../domain/liveness';
import { DEFAULT_MASS_FAILURE_POLICY } from '../domain/liveness';
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

/** The heartbeat gateway, the lease writer and the detector of the worker service (docs/liveness.md). */
export interface LivenessConfig {
  gateway: {
    host: string;
    /** 0: a free port chosen at start (the worker's ready file and log say which). */
    port: number;
    tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  };
  leaseWriteIntervalMs: number;
  checkpointPeriodMs: number;
  massFailure: MassFailurePolicy;
  vmsPollIntervalMs: number;
}

/** What `vms agent` needs: where its gateways are, and its own credential. */
export interface AgentConfig {
  gateways: string[];
  token?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** The site's VMS bridge (docs/vms-bridge.md): the HTTP service that carries the control plane's calls. */
export interface VmsBridgeConfig {
  /**
   * With no URL, the worker serves the simulated site as its bridge, on this port of the loopback (0: a free
   * one), unless it runs in production (NODE_ENV=production), where a missing bridge stops it.
   */
  embeddedSimulator: { enabled: boolean; port: number };
  /** Base URL, e.g. https://vms-bridge.site.local:7280; undefined when no bridge is configured. */
  url?: string;
  /** Bearer token sent with every call. */
  token?: string;
  /** Deadline of each call to the bridge. */
  timeoutMs: number;
  /** How long one plugin install is followed before the attempt gives up (a retry follows the same install). */
  installTimeoutMs: number;
  /** HTTPS with a private CA, and a client certificate for bridges that authenticate callers by mTLS. */
  tls?: { ca?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } };
}

/** Where alerts go (docs/alerts.md): webhooks that take a signed JSON POST per alert. */
export interface AlertsConfig {
  webhooks: string[];
  /** HMAC-SHA256 key of the signature every delivery carries. */
  secret?: string;
  timeoutMs: number;
}

export interface AppConfig {
  /** The VMS site this deployment protects; part of every workflow id. */
  site: string;
  databaseUrl: string;
  temporal: TemporalConfig;
  failover: FailoverTuning;
  monitor: { signalsPerRun: number };
  liveness: LivenessConfig;
  agent: AgentConfig;
  alerts: AlertsConfig;
  vmsBridge: VmsBridgeConfig;
  log: { level: string; format: LogFormat };
  /** The PGlite server `scripts/postgres.sh` starts on a machine without PostgreSQL (development only). */
  embeddedPostgres: { port: number; dataDir: string };
  worker: {
    identity: string;
    /** Prometheus endpoint of the Temporal runtime (`/metrics`); 0 turns it off. */
    metricsPort: number;
    /** How often the site's own metrics (servers, failovers, reinstalls, alerts) are read from PostgreSQL. */
    siteMetricsIntervalMs: number;
    /** HTTP `/healthz` (alive) and `/readyz` (polling) for orchestrators; 0 turns it off. */
    healthPort: number;
    /** Written once the worker polls, removed as soon as it starts shutting down. */
    readyFile?: string;
    /**
     * Workflows kept in the worker's cache. A monitor runs a workflow task about once per checkpoint period, so
     * with more monitors than cache slots the cache serves a burst (failovers, restores), not the steady state.
     */
    maxCachedWorkflows: number;
    /** PostgreSQL connections of the worker, all opened at start and kept open. */
    databaseConnections: number;
    /** Workflow tasks polled at once; heartbeats of many monitors need more than the SDK's 10 (docs/benchmark.md). */
    workflowTaskPollers?: number;
    /** Workflow tasks executed at once (the SDK's default is 40). */
    workflowTaskSlots?: number;
    /** Threads that run workflow code (the SDK's default is 1). */
    workflowThreads?: number;
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

/**
 * Workflows the worker caches unless told otherwise: the monitors, failover workflows and promoted servers'
 * monitors of a burst of a hundred failovers, and every monitor of a site of up to 500 Slaves. The SDK's own
 * default, sized from the heap limit (2,310 on a 4 GB heap), held 1.1 GB at 10,000 Slaves for workflows a
 * checkpoint every 10 minutes evicts before they are used again: 500 halved the worker's memory there and
 * made nothing slower (docs/benchmark.md).
 */
const DEFAULT_CACHED_WORKFLOWS = 500;

/** The SDK's maxConcurrentWorkflowTaskExecutions when none is given. */
const SDK_WORKFLOW_TASK_SLOTS = 40;

/** A share, written 0.5 or 50%. */
const fraction = (env: Env, name: string, fallback: number): number => {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const parsed = raw.endsWith('%') ? Number(raw.slice(0, -1)) / 100 : Number(raw);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1) {
    throw new ConfigError(`${name}="${raw}" must be a share from 0 to 1 (or 0% to 100%)`);
  }
  return parsed;
};

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

const loadGatewayTls = (env: Env): LivenessConfig['gateway']['tls'] => {
  const cert = fileContents(env, 'GATEWAY_TLS_CERT_PATH');
  const key = fileContents(env, 'GATEWAY_TLS_KEY_PATH');
  const clientCa = fileContents(env, 'GATEWAY_TLS_CLIENT_CA_PATH');
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('GATEWAY_TLS_CERT_PATH and GATEWAY_TLS_KEY_PATH must be set together');
  }
  if (cert === undefined || key === undefined) {
    if (clientCa !== undefined)
      throw new ConfigError('GATEWAY_TLS_CLIENT_CA_PATH needs GATEWAY_TLS_CERT_PATH and _KEY_PATH');
    return undefined;
  }
  return { cert, key, ...(clientCa !== undefined && { clientCa }) };
};

const siteMetricsInterval = (env: Env): number => {
  const intervalMs = durationMs(env, 'SITE_METRICS_INTERVAL', '15s');
  if (intervalMs < 1_000 || intervalMs > 600_000) {
    throw new ConfigError(
      `SITE_METRICS_INTERVAL="${text(env, 'SITE_METRICS_INTERVAL')}" must be from 1s to 10m`,
    );
  }
  return intervalMs;
};

const loadLiveness = (env: Env): LivenessConfig => {
  const tls = loadGatewayTls(env);
  const leaseWriteIntervalMs = durationMs(env, 'LEASE_WRITE_INTERVAL', '1s');
  if (leaseWriteIntervalMs > 10_000) {
    throw new ConfigError(`LEASE_WRITE_INTERVAL="${text(env, 'LEASE_WRITE_INTERVAL')}" must be at most 10s`);
  }
  const checkpointPeriodMs = durationMs(env, 'LIVENESS_CHECKPOINT_PERIOD', '10m');
  if (checkpointPeriodMs < 1_000 || checkpointPeriodMs > 3_600_000) {
    throw new ConfigError(
      `LIVENESS_CHECKPOINT_PERIOD="${text(env, 'LIVENESS_CHECKPOINT_PERIOD')}" must be from 1s to 1h`,
    );
  }
  return {
    gateway: {
      host: text(env, 'GATEWAY_HOST') ?? '0.0.0.0',
      port: integer(env, 'GATEWAY_PORT', 7380, 0, 65_535),
      ...(tls !== undefined && { tls }),
    },
    leaseWriteIntervalMs,
    checkpointPeriodMs,
    vmsPollIntervalMs: durationMs(env, 'VMS_STATUS_POLL_INTERVAL', '1s'),
    massFailure: {
      share: fraction(env, 'MASS_FAILURE_SHARE', DEFAULT_MASS_FAILURE_POLICY.share),
      minimum: integer(env, 'MASS_FAILURE_MINIMUM', DEFAULT_MASS_FAILURE_POLICY.minimum, 1, 100_000),
    },
  };
};

const loadAgent = (env: Env): AgentConfig => {
  const gateways = (text(env, 'VMS_GATEWAY_URL') ?? 'http://127.0.0.1:7380')
    .split(',')
    .map((gateway) => gateway.trim())
    .filter((gateway) => gateway !== '');
  for (const gateway of gateways) {
    let url: URL;
    try {
      url = new URL(gateway);
    } catch {
      throw new ConfigError(`VMS_GATEWAY_URL: "${gateway}" is not a URL such as http://master:7380`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError(`VMS_GATEWAY_URL: "${gateway}" must be http:// or https://`);
    }
  }
  const token = secret(env, 'VMS_AGENT_TOKEN');
  const ca = fileContents(env, 'VMS_GATEWAY_CA_PATH');
  const cert = fileContents(env, 'VMS_AGENT_TLS_CERT_PATH');
  const key = fileContents(env, 'VMS_AGENT_TLS_KEY_PATH');
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('VMS_AGENT_TLS_CERT_PATH and VMS_AGENT_TLS_KEY_PATH must be set together');
  }
  const tls =
    ca !== undefined || cert !== undefined
      ? { ...(ca && { ca }), ...(cert && key && { cert, key }) }
      : undefined;
  return { gateways, ...(token !== undefined && { token }), ...(tls !== undefined && { tls }) };
};

const loadVmsBridge = (env: Env): VmsBridgeConfig => {
  const url = text(env, 'VMS_BRIDGE_URL');
  if (url !== undefined) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      protocol = '';
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new ConfigError(`VMS_BRIDGE_URL="${url}" must look like https://vms-bridge.site.local:7280`);
    }
  }
  const ca = fileContents(env, 'VMS_BRIDGE_TLS_CA_PATH');
  const crt = fileContents(env, 'VMS_BRIDGE_TLS_CERT_PATH');
  const key = fileContents(env, 'VMS_BRIDGE_TLS_KEY_PATH');
  if ((crt === undefined) !== (key === undefined)) {
    throw new ConfigError('VMS_BRIDGE_TLS_CERT_PATH and VMS_BRIDGE_TLS_KEY_PATH must be set together');
  }
  const tls =
    ca === undefined && crt === undefined
      ? undefined
      : {
          ...(ca !== undefined && { ca }),
          ...(crt !== undefined && key !== undefined && { clientCertPair: { crt, key } }),
        };
  if (tls !== undefined && !url?.startsWith('https:')) {
    throw new ConfigError('VMS_BRIDGE_TLS_* files need an https:// VMS_BRIDGE_URL');
  }
  const token = secret(env, 'VMS_BRIDGE_TOKEN');
  const production = text(env, 'NODE_ENV') === 'production';
  const simulator = text(env, 'VMS_SIMULATOR')?.toLowerCase() ?? (production ? 'off' : 'embedded');
  if (simulator !== 'embedded' && simulator !== 'off') {
    throw new ConfigError(`VMS_SIMULATOR="${simulator}" must be embedded or off`);
  }
  return {
    embeddedSimulator: {
      enabled: url === undefined && simulator === 'embedded',
      port: integer(env, 'VMS_SIMULATOR_PORT', 7280, 0, 65_535),
    },
    ...(url !== undefined && { url }),
    ...(token !== undefined && { token }),
    timeoutMs: durationMs(env, 'VMS_BRIDGE_TIMEOUT', '10s'),
    installTimeoutMs: durationMs(env, 'VMS_BRIDGE_INSTALL_TIMEOUT', '30m'),
    ...(tls !== undefined && { tls }),
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

const loadAlerts = (env: Env): AlertsConfig => {
  const webhooks = (text(env, 'ALERT_WEBHOOK_URLS') ?? '')
    .split(',')
    .map((webhook) => webhook.trim())
    .filter((webhook) => webhook !== '');
  for (const webhook of webhooks) {
    let protocol = '';
    try {
      protocol = new URL(webhook).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new ConfigError(`ALERT_WEBHOOK_URLS: "${webhook}" must be an http:// or https:// URL`);
    }
  }
  const signingKey = secret(env, 'ALERT_WEBHOOK_SECRET');
  if (webhooks.length > 0 && signingKey === undefined) {
    throw new ConfigError(
      'ALERT_WEBHOOK_URLS needs ALERT_WEBHOOK_SECRET (or _FILE): every alert is signed with it',
    );
  }
  return {
    webhooks,
    ...(signingKey !== undefined && { secret: signingKey }),
    timeoutMs: durationMs(env, 'ALERT_WEBHOOK_TIMEOUT', '10s'),
  };
};

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
  const workflowTaskSlots = optionalInteger(env, 'WORKER_WORKFLOW_TASK_SLOTS', 2, 10_000);
  const workflowTaskPollers = optionalInteger(env, 'WORKER_WORKFLOW_TASK_POLLERS', 2, 1_000);
  const workflowThreads = optionalInteger(env, 'WORKER_WORKFLOW_THREADS', 1, 16);
  if (
    workflowTaskPollers !== undefined &&
    workflowTaskPollers > (workflowTaskSlots ?? SDK_WORKFLOW_TASK_SLOTS)
  ) {
    throw new ConfigError(
      `WORKER_WORKFLOW_TASK_POLLERS=${workflowTaskPollers} cannot exceed WORKER_WORKFLOW_TASK_SLOTS=${workflowTaskSlots ?? SDK_WORKFLOW_TASK_SLOTS}`,
    );
  }
  // The SDK would take 1 as 2, and slots above the cache as the cache's size, with a warning only.
  const maxCachedWorkflows = integer(
    env,
    'WORKER_MAX_CACHED_WORKFLOWS',
    DEFAULT_CACHED_WORKFLOWS,
    0,
    1_000_000,
  );
  if (maxCachedWorkflows === 1) {
    throw new ConfigError('WORKER_MAX_CACHED_WORKFLOWS=1 must be 0 (no cache) or at least 2');
  }
  if (maxCachedWorkflows > 0 && (workflowTaskSlots ?? SDK_WORKFLOW_TASK_SLOTS) > maxCachedWorkflows) {
    throw new ConfigError(
      `WORKER_WORKFLOW_TASK_SLOTS=${workflowTaskSlots ?? SDK_WORKFLOW_TASK_SLOTS} cannot exceed WORKER_MAX_CACHED_WORKFLOWS=${maxCachedWorkflows}`,
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
      // With retries backing off up to 10 s, a failed standby is given up 10 to 13 s after its first failure:
      // the next one records within 30 s.
      standbyBudgetMs: durationMs(env, 'FAILOVER_STANDBY_BUDGET', '10s'),
      standbyChecksPerRun: integer(env, 'FAILOVER_STANDBY_CHECKS_PER_RUN', 500, 2, 9_000),
    },
    monitor: { signalsPerRun: integer(env, 'MONITOR_SIGNALS_PER_RUN', 500, 10, 9_000) },
    liveness: loadLiveness(env),
    agent: loadAgent(env),
    alerts: loadAlerts(env),
    vmsBridge: loadVmsBridge(env),
    log: { level, format: formatRaw },
    embeddedPostgres: {
      port: integer(env, 'EMBEDDED_PG_PORT', 5432, 0, 65_535),
      dataDir: resolve(text(env, 'EMBEDDED_PG_DATA_DIR') ?? join(projectRoot(), '.data', 'pglite')),
    },
    worker: {
      identity: text(env, 'WORKER_IDENTITY') ?? `vms-worker@${hostname()}`,
      metricsPort: integer(env, 'METRICS_PORT', 9464, 0, 65_535),
      siteMetricsIntervalMs: siteMetricsInterval(env),
      healthPort: integer(env, 'HEALTH_PORT', 0, 0, 65_535),
      databaseConnections: integer(env, 'WORKER_DATABASE_CONNECTIONS', 10, 1, 500),
      ...(readyFile !== undefined && { readyFile }),
      maxCachedWorkflows,
      ...(workflowTaskPollers !== undefined && { workflowTaskPollers }),
      ...(workflowTaskSlots !== undefined && { workflowTaskSlots }),
      ...(workflowThreads !== undefined && { workflowThreads }),
    },
  };
};
