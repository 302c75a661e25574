/**
 * `vms status`: the server list as the VMS shows it, by folder, with the last heartbeat each gateway heard and
 * what the monitors know; then the liveness detector, a mass-failure hold and the alerts not acknowledged.
 * Monitor state comes from a query, which needs a worker: queries are bounded, so the command answers even
 * with no worker. A monitor that does not answer is described: a workflow task failing again and again is told
 * apart from a worker that is not there.
 */
import { ServiceError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { Fleet } from '../../app/fleet';
import type { SiteView } from '../../app/site-view';
import { formatDuration } from '../../domain/duration';
import { TERM_STALE_AFTER_MS, brokenLetters } from '../../domain/liveness';
import type { Alert } from '../../store/alerts';
import type { DetectorTerm } from '../../store/detector-term';
import type { Hold } from '../../store/holds';
import { isMonitorable } from '../../domain/rules';
import { mapLimited } from '../../infra/limit';
import type { Folder } from '../../domain/site';
import type { ServerRecord } from '../../store/servers';
import type { MonitorState } from '../../workflows/definitions';
import { isDeadlineExceeded } from '../cli-errors';
import { formatAgo, formatTime, printJson, printLine, printTable } from '../output';
import { withSession } from '../session';

/** How long the monitors get to answer their state query before the worker is deemed not running. */
const QUERY_DEADLINE_MS = 5_000;
/** How long the monitors that did not answer get to be described. */
const DESCRIBE_DEADLINE_MS = 5_000;
const DESCRIBE_CONCURRENCY = 16;

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

const FOLDERS: { folder: Folder; title: string }[] = [
  { folder: 'Servers', title: 'Servers' },
  { folder: 'FailoverServers', title: 'Failover servers' },
  { folder: 'BrokenRecorders', title: 'Broken recorders' },
];

const PHASE_STATUS: Record<MonitorState['phase'], MonitorStatus> = {
  monitoring: 'monitoring',
  'failing-over': 'failing over',
  'failed-over': 'failed over',
};

type MonitorView = { status: MonitorStatus; state?: MonitorState; taskAttempt?: number };

/**
 * No answer within the deadline, or a call that failed because the worker that held the workflow has just
 * stopped: either way nobody can tell the monitor's state now.
 */
const isUnanswered = (error: unknown): boolean => isDeadlineExceeded(error) || error instanceof ServiceError;

const monitorView = async (fleet: Fleet, server: ServerRecord): Promise<MonitorView> => {
  if (server.role !== 'slave' || !(await fleet.isMonitorRunning(server.id)))
    return { status: 'not monitored' };
  try {
    const state = await fleet.monitorState(server.id);
    if (state === undefined) return { status: 'not monitored' };
    // A monitor started before the liveness layer answers without `heldBy`.
    const held = state.phase === 'monitoring' && (state.heldBy ?? null) !== null;
    return { status: held ? 'failover held' : PHASE_STATUS[state.phase], state };
  } catch (error) {
    if (isUnanswered(error)) return { status: 'worker not answering' };
    throw error;
  }
};

/**
 * A monitor that did not answer: its workflow task failed and is tried again (a defect of the workflow code,
 * which the worker log names), or no worker took its query. A monitor stuck so acts on no report: its Slave
 * would not fail over.
 */
const unansweredView = async (fleet: Fleet, serverId: string): Promise<MonitorView> => {
  try {
    const attempt = await fleet.monitorTaskAttempt(serverId);
    return attempt !== undefined && attempt > 1
      ? { status: 'monitor stuck', taskAttempt: attempt }
      : { status: 'worker not answering' };
  } catch (error) {
    if (isUnanswered(error)) return { status: 'worker not answering' };
    throw error;
  }
};

const describeUnanswered = async (
  client: Client,
  fleet: Fleet,
  servers: ServerRecord[],
  views: MonitorView[],
): Promise<MonitorView[]> => {
  if (!views.some((view) => view.status === 'worker not answering')) return views;
  return client.withDeadline(Date.now() + DESCRIBE_DEADLINE_MS, () =>
    mapLimited(
      servers.map((server, index) => ({ server, view: views[index] ?? { status: 'not monitored' } })),
      DESCRIBE_CONCURRENCY,
      async ({ server, view }) =>
        view.status === 'worker not answering' ? unansweredView(fleet, server.id) : view,
    ),
  );
};

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

const collectStatus = async (site: SiteView, client: Client, fleet: Fleet): Promise<ServerStatus[]> => {
  const servers = await site.servers();
  const cameras = await site.cameras();
  const leases = new Map((await site.leases()).map((lease) => [lease.serverId, lease]));
  const nowMs = Date.now();
  const views = await describeUnanswered(
    client,
    fleet,
    servers,
    await client.withDeadline(nowMs + QUERY_DEADLINE_MS, () =>
      Promise.all(servers.map((server) => monitorView(fleet, server))),
    ),
  );
  return servers.map((server, index): ServerStatus => {
    const view = views[index] ?? { status: 'not monitored' };
    const own = cameras.filter((camera) => camera.serverId === server.id);
    const lease = leases.get(server.id);
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
      cameras: {
        ip: own.filter((camera) => camera.kind === 'ip').length,
        analog: own.filter((camera) => camera.kind === 'analog').length,
      },
      monitor: view.status,
      monitorTaskAttempt: view.taskAttempt ?? null,
      lastHeartbeatAt: isoOrNull(lease?.lastSeenMs ?? null),
      brokenDisks: lease === undefined ? (view.state?.brokenDisks ?? []) : brokenLetters(lease.disks),
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

const ROLE_NAMES: Record<ServerRecord['role'], string> = {
  master: 'Master',
  slave: 'Slave',
  failover: 'Failover',
};

const describeState = (server: ServerStatus): string => {
  const parts: string[] = [server.state];
  if (server.replaces !== null && server.state === 'active') parts.push(`replaces ${server.replaces}`);
  if (server.brokenDisks.length > 0) parts.push(`broken disks ${server.brokenDisks.join(',')}`);
  if (server.outOfService !== null) {
    parts.push(`OUT OF SERVICE since ${formatTime(Date.parse(server.outOfService.since))}`);
  }
  return parts.join(', ');
};

/** A Slave that should be monitored and is not says so. */
const describeMonitor = (server: ServerStatus): string => {
  if (server.role !== 'slave') return '-';
  const standing = {
    id: server.id,
    role: server.role,
    status: server.state,
    folder: server.folder,
    settings: { protected: server.protected, timeoutMs: server.timeoutMs },
  };
  return server.monitor === 'not monitored' && isMonitorable(standing)
    ? 'not monitored (protected)'
    : server.monitor;
};

interface LivenessStatus {
  detector: {
    term: number;
    leader: string;
    observingSince: string;
    renewedAt: string;
    leading: boolean;
  } | null;
  hold: { id: string; since: string; slaves: string[] } | null;
  alerts: { id: string; kind: string; raisedAt: string; message: string }[];
}

const collectLiveness = async (site: SiteView): Promise<LivenessStatus> => {
  const [term, hold, alerts]: [DetectorTerm | undefined, Hold | undefined, Alert[]] = await Promise.all([
    site.detector(),
    site.openHold(),
    site.alerts(),
  ]);
  return {
    detector:
      term === undefined
        ? null
        : {
            term: term.term,
            leader: term.leader,
            observingSince: new Date(term.observingSinceMs).toISOString(),
            renewedAt: new Date(term.renewedAtMs).toISOString(),
            leading: Date.now() - term.renewedAtMs <= TERM_STALE_AFTER_MS,
          },
    hold:
      hold === undefined
        ? null
        : {
            id: hold.id,
            since: hold.openedAt.toISOString(),
            slaves: hold.slaves.map((slave) => slave.serverId),
          },
    alerts: alerts.map((alert) => ({
      id: alert.id,
      kind: alert.kind,
      raisedAt: alert.raisedAt.toISOString(),
      message: alert.message,
    })),
  };
};

const printLiveness = (liveness: LivenessStatus, nowMs: number): void => {
  printLine();
  const { detector } = liveness;
  if (detector === null) printLine('Liveness detector: never ran (no worker has started)');
  else if (!detector.leading) {
    printLine(
      `Liveness detector: NOT RUNNING (term ${detector.term} last renewed ${formatAgo(Date.parse(detector.renewedAt), nowMs)} by ${detector.leader}): nobody hears heartbeats`,
    );
  } else {
    printLine(
      `Liveness detector: term ${detector.term} on ${detector.leader}, observing since ${formatTime(Date.parse(detector.observingSince))}`,
    );
  }
  if (liveness.hold !== null) {
    printLine(
      `MASS FAILURE: failovers held since ${formatTime(Date.parse(liveness.hold.since))} for ${liveness.hold.slaves.join(', ')}: vms hold release ${liveness.hold.id} | vms hold dismiss ${liveness.hold.id}`,
    );
  }
  if (liveness.alerts.length > 0) {
    printLine();
    printLine('Alerts (vms alerts ack ID)');
    printTable(
      ['ALERT', 'RAISED', 'MESSAGE'],
      liveness.alerts.map((alert) => [alert.id, formatTime(Date.parse(alert.raisedAt)), alert.message]),
    );
  }
};

const printStatus = (site: string, servers: ServerStatus[], liveness: LivenessStatus): void => {
  const nowMs = Date.now();
  printLine(`Site ${site}, ${formatTime(nowMs)}`);
  printLiveness(liveness, nowMs);
  for (const { folder, title } of FOLDERS) {
    printLine();
    printLine(title);
    printTable(
      ['SERVER', 'ROLE', 'STATE', 'LAST HEARTBEAT', 'CAMERAS IP/ANALOG', 'MONITOR', 'TIMEOUT', 'MAINTENANCE'],
      servers
        .filter((server) => server.folder === folder)
        .map((server) => [
          server.id,
          ROLE_NAMES[server.role],
          describeState(server),
          server.lastHeartbeatAt === null ? '-' : formatAgo(Date.parse(server.lastHeartbeatAt), nowMs),
          `${server.cameras.ip}/${server.cameras.analog}`,
          describeMonitor(server),
          server.role === 'slave' ? formatDuration(server.timeoutMs) : '-',
          server.maintenanceUntil === null ? '-' : `until ${formatTime(Date.parse(server.maintenanceUntil))}`,
        ]),
    );
  }
  if (servers.some((server) => server.monitor === 'worker not answering')) {
    printLine();
    printLine(
      `worker not answering: monitor states are unknown (no answer within ${QUERY_DEADLINE_MS / 1000}s); check that a vms worker runs for this site`,
    );
  }
  for (const server of servers.filter((candidate) => candidate.monitor === 'monitor stuck')) {
    printLine();
    printLine(
      `monitor stuck: the workflow task of ${server.id}'s monitor failed and is tried again (attempt ${server.monitorTaskAttempt}); it acts on no report, so ${server.id} would not fail over. The worker log says why (workflow task failed).`,
    );
  }
};

export const registerStatusCommand = (program: Command): void => {
  program
    .command('status')
    .description('the server list by folder: roles, states, heartbeats, cameras, monitors, maintenance')
    .option('--json', 'machine-readable output')
    .action((options: { json?: boolean }) =>
      withSession(async (session) => {
        const site = await session.site();
        const servers = await collectStatus(site, await session.client(), await session.fleet());
        const liveness = await collectLiveness(site);
        if (options.json === true) {
          printJson({
            site: session.config.site,
            workerAnswering: !servers.some((server) => server.monitor === 'worker not answering'),
            ...liveness,
            servers,
          });
        } else {
          printStatus(session.config.site, servers, liveness);
        }
      }),
    );
};
