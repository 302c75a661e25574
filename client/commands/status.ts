/**
 * `vms status`: the server list as the VMS shows it, by folder, with the last heartbeat each gateway heard and
 * what the monitors know (app/site-status); then the liveness detector, a mass-failure hold and the alerts not
 * acknowledged. It answers with no worker running, and says so.
 */
import type { Command } from 'commander';
import type { SiteView } from '../../app/site-view';
import { QUERY_DEADLINE_MS, collectSiteStatus } from '../../app/site-status';
import type { ServerStatus } from '../../app/site-status';
import { formatDuration } from '../../domain/duration';
import { TERM_STALE_AFTER_MS } from '../../domain/liveness';
import { isMonitorable } from '../../domain/rules';
import type { Folder } from '../../domain/site';
import type { Alert } from '../../store/alerts';
import type { DetectorTerm } from '../../store/detector-term';
import type { Hold } from '../../store/holds';
import type { ServerRecord } from '../../store/servers';
import { formatAgo, formatTime, printJson, printLine, printTable } from '../output';
import { withSession } from '../session';

const FOLDER_TITLES: { folder: Folder; title: string }[] = [
  { folder: 'Servers', title: 'Servers' },
  { folder: 'FailoverServers', title: 'Failover servers' },
  { folder: 'BrokenRecorders', title: 'Broken recorders' },
];

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
  for (const { folder, title } of FOLDER_TITLES) {
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
        const servers = await collectSiteStatus(site, await session.client(), await session.fleet());
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
