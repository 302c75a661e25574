/**
 * The site as `vms status` shows it: every server of PostgreSQL's record with its cameras, its last heartbeat
 * and its monitor. A monitor is described by Temporal alone (one describe: running, the folder it put its
 * Slave in, its pending workflow task), and its phase read from PostgreSQL (the open hold, the Slave's latest
 * failover): no worker replays thousands of monitors to answer a status. A worker is asked one query, to tell
 * whether one answers, and one per monitor whose workflow task failed before, to tell a stuck monitor.
 */
import { ServiceError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { brokenLetters } from '../domain/liveness';
import type { Folder } from '../domain/site';
import { mapLimited } from '../infra/limit';
import type { FailoverRecord, FailoverStatus } from '../store/failovers';
import type { ServerRecord } from '../store/servers';
import { isDeadlineExceeded } from './failures';
import type { Fleet, MonitorRecord } from './fleet';
import type { SiteView } from './site-view';

/** How long the monitors asked get to answer their state query before the worker is deemed not running. */
export const QUERY_DEADLINE_MS = 5_000;
/** How long Temporal gets to describe one monitor. */
const DESCRIBE_DEADLINE_MS = 5_000;
const DESCRIBE_CONCURRENCY = 16;
const QUERY_CONCURRENCY = 16;

export type MonitorStatus =
  | 'monitoring'
  | 'failover held'
  | 'failing over'
  | 'failed over'
  | 'not monitored'
  | 'worker not answering'
  | 'monitor stuck';

export interface ServerStatus {
  id: string;
  hostname: string;
  folder: Folder;
  role: ServerRecord['role'];
  state: ServerRecord['status'];
  protected: boolean;
  timeoutMs: number;
  /** The broken Slave this server took over from. */
  replaces: string | null;
  cameras: { ip: number; analog: number };
  monitor: MonitorStatus;
  /** A stuck monitor: the attempt of its workflow task, whose earlier attempts failed. */
  monitorTaskAttempt: number | null;
  lastHeartbeatAt: string | null;
  brokenDisks: string[];
  maintenanceUntil: string | null;
  /** A standby that failed a failover, until `vms standby in-service`. */
  outOfService: { since: string; reason: string } | null;
}

/** No answer within the deadline, or a call that failed because the worker that held it has just stopped. */
const isUnanswered = (error: unknown): boolean => isDeadlineExceeded(error) || error instanceof ServiceError;

type Described = MonitorRecord | 'unanswered';

const describeMonitor = async (client: Client, fleet: Fleet, serverId: string): Promise<Described> => {
  try {
    return await client.withDeadline(Date.now() + DESCRIBE_DEADLINE_MS, () => fleet.monitorRecord(serverId));
  } catch (error) {
    if (isUnanswered(error)) return 'unanswered';
    throw error;
  }
};

const answersQuery = async (fleet: Fleet, serverId: string): Promise<boolean> => {
  try {
    await fleet.monitorState(serverId);
    return true;
  } catch (error) {
    if (isUnanswered(error)) return false;
    throw error;
  }
};

/**
 * Which monitors answer a query: every one whose workflow task failed before (a failed attempt that has since
 * passed is no defect), and one other, which stands for the worker. Asked together within one deadline.
 */
const askWorker = async (
  client: Client,
  fleet: Fleet,
  running: { id: string; taskAttempt: number }[],
): Promise<{ answered: Map<string, boolean>; workerAnswers: boolean }> => {
  const suspects = running.filter((monitor) => monitor.taskAttempt > 1).map((monitor) => monitor.id);
  const representative = running.find((monitor) => monitor.taskAttempt <= 1)?.id;
  const asked = representative === undefined ? suspects : [representative, ...suspects];
  const answered = new Map(
    asked.length === 0
      ? []
      : await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
          mapLimited(asked, QUERY_CONCURRENCY, async (id) => [id, await answersQuery(fleet, id)] as const),
        ),
  );
  const workerAnswers =
    representative === undefined
      ? suspects.some((id) => answered.get(id) === true)
      : answered.get(representative) === true;
  return { answered, workerAnswers };
};

/** What is known of one server's monitor, from Temporal and PostgreSQL. */
export interface MonitorEvidence {
  /** One describe of its monitor; 'unanswered' when Temporal gave no answer in time; undefined: not a Slave. */
  record: MonitorRecord | 'unanswered' | undefined;
  /** Whether it answered a state query, when it was asked one. */
  answered: boolean | undefined;
  /** Whether the monitor asked on the worker's behalf answered (a worker polls the task queue). */
  workerAnswers: boolean;
  /** The Slave is in the open mass-failure hold. */
  held: boolean;
  /** The status of the Slave's latest failover, if it has one. */
  latestFailover: FailoverStatus | undefined;
}

const RECORDING_RESTORED: FailoverStatus[] = ['recording-restored', 'completed'];

/** The monitor state `vms status` shows, with the attempt of a stuck monitor's workflow task. */
export const monitorStatusOf = (
  evidence: MonitorEvidence,
): { status: MonitorStatus; taskAttempt: number | null } => {
  const { record, answered } = evidence;
  if (record === undefined) return { status: 'not monitored', taskAttempt: null };
  if (record === 'unanswered') return { status: 'worker not answering', taskAttempt: null };
  if (!record.running) return { status: 'not monitored', taskAttempt: null };
  const attempt = record.taskAttempt ?? 0;
  if (attempt > 1 && answered === false) return { status: 'monitor stuck', taskAttempt: attempt };
  if (answered !== true && !evidence.workerAnswers)
    return { status: 'worker not answering', taskAttempt: null };
  if (record.folder === 'BrokenRecorders') {
    const restored =
      evidence.latestFailover !== undefined && RECORDING_RESTORED.includes(evidence.latestFailover);
    return { status: restored ? 'failed over' : 'failing over', taskAttempt: null };
  }
  return { status: evidence.held ? 'failover held' : 'monitoring', taskAttempt: null };
};

/** The latest failover of each broken Slave. */
const latestFailovers = (failovers: FailoverRecord[]): Map<string, FailoverRecord> =>
  new Map(failovers.map((failover) => [failover.slaveId, failover]));

const countCameras = (
  cameras: { serverId: string; kind: 'ip' | 'analog' }[],
): Map<string, { ip: number; analog: number }> => {
  const counts = new Map<string, { ip: number; analog: number }>();
  for (const camera of cameras) {
    const count = counts.get(camera.serverId) ?? { ip: 0, analog: 0 };
    count[camera.kind] += 1;
    counts.set(camera.serverId, count);
  }
  return counts;
};

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export const collectSiteStatus = async (
  site: SiteView,
  client: Client,
  fleet: Fleet,
): Promise<ServerStatus[]> => {
  const [servers, cameras, leases, hold, failovers] = await Promise.all([
    site.servers(),
    site.cameras(),
    site.leases(),
    site.openHold(),
    site.failovers(),
  ]);
  const slaveIds = servers.filter((server) => server.role === 'slave').map((server) => server.id);
  const described = new Map(
    await mapLimited(
      slaveIds,
      DESCRIBE_CONCURRENCY,
      async (id) => [id, await describeMonitor(client, fleet, id)] as const,
    ),
  );
  const running = [...described].flatMap(([id, record]) =>
    record !== 'unanswered' && record.running ? [{ id, taskAttempt: record.taskAttempt ?? 0 }] : [],
  );
  const { answered, workerAnswers } = await askWorker(client, fleet, running);
  const held = new Set(hold?.slaves.map((slave) => slave.serverId) ?? []);
  const latest = latestFailovers(failovers);

  const cameraCounts = countCameras(cameras);
  const leaseOf = new Map(leases.map((lease) => [lease.serverId, lease]));
  const nowMs = Date.now();
  return servers.map((server): ServerStatus => {
    const monitor = monitorStatusOf({
      record: described.get(server.id),
      answered: answered.get(server.id),
      workerAnswers,
      held: held.has(server.id),
      latestFailover: latest.get(server.id)?.status,
    });
    const lease = leaseOf.get(server.id);
    const inMaintenance = server.maintenanceUntilMs !== null && server.maintenanceUntilMs > nowMs;
    return {
      id: server.id,
      hostname: server.hostname,
      folder: server.folder,
      role: server.role,
      state: server.status,
      protected: server.settings.protected,
      timeoutMs: server.settings.timeoutMs,
      replaces: server.replacesServerId,
      cameras: cameraCounts.get(server.id) ?? { ip: 0, analog: 0 },
      monitor: monitor.status,
      monitorTaskAttempt: monitor.taskAttempt,
      lastHeartbeatAt: isoOrNull(lease?.lastSeenMs ?? null),
      brokenDisks: lease === undefined ? [] : brokenLetters(lease.disks),
      maintenanceUntil: inMaintenance ? isoOrNull(server.maintenanceUntilMs) : null,
      outOfService:
        server.outOfService === null
          ? null
          : {
              since: new Date(server.outOfService.sinceMs).toISOString(),
              reason: server.outOfService.reason,
            },
    };
  });
};
