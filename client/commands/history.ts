/** `vms history [SERVER]`: past and running failovers with their timings, and the event log. */
import type { Command } from 'commander';
import type { FailoverRecord } from '../../store/failovers';
import { serverIdArgument } from '../arguments';
import { formatSpan, formatTime, printJson, printLine, printTable } from '../output';
import { withSession } from '../session';

const EVENT_LIMIT = 200;

const since = (from: Date, to: Date | null): number | null =>
  to === null ? null : to.getTime() - from.getTime();

/** Detection is when the Slave was deemed broken: the missed deadline, or the heartbeat reporting dead disks. */
const timings = (failover: FailoverRecord) => ({
  detectedAt: failover.deadlineAt.toISOString(),
  detectionToStartMs: since(failover.deadlineAt, failover.startedAt),
  detectionToCamerasCommittedMs: since(failover.deadlineAt, failover.camerasCommittedAt),
  detectionToCompletedMs: since(failover.deadlineAt, failover.completedAt),
});

const formatDetails = (details: Record<string, unknown>): string =>
  Object.entries(details)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');

export const registerHistoryCommand = (program: Command): void => {
  program
    .command('history')
    .description('failovers (detection → cameras committed → completed) and the failover event log')
    .argument('[server]', 'only what concerns this server', serverIdArgument)
    .option('--json', 'machine-readable output')
    .action((serverId: string | undefined, options: { json?: boolean }) =>
      withSession(async (session) => {
        const site = await session.site();
        if (serverId !== undefined) await site.server(serverId);
        const failovers = await site.failovers(serverId);
        const events = await site.events(serverId, EVENT_LIMIT);
        if (options.json === true) {
          printJson({
            failovers: failovers.map((failover) => ({ ...failover, timings: timings(failover) })),
            events,
          });
          return;
        }
        printLine(serverId === undefined ? 'Failovers' : `Failovers of ${serverId}`);
        printTable(
          [
            'FAILOVER',
            'SLAVE',
            'REASON',
            'REPLACED BY',
            'STATUS',
            'DETECTED',
            'CAMERAS COMMITTED',
            'COMPLETED',
            'IP MOVED',
            'ANALOG LEFT',
          ],
          failovers.map((failover) => [
            failover.id,
            failover.slaveId,
            failover.reason,
            failover.failoverServerId ?? '-',
            failover.status,
            formatTime(failover.deadlineAt),
            formatSpan(failover.deadlineAt, failover.camerasCommittedAt),
            formatSpan(failover.deadlineAt, failover.completedAt),
            String(failover.ipCamerasMoved ?? '-'),
            String(failover.analogCamerasLeft ?? '-'),
          ]),
        );
        printLine();
        printLine(`Events (last ${EVENT_LIMIT})`);
        printTable(
          ['AT', 'SERVER', 'EVENT', 'DETAILS'],
          events.map((event) => [
            formatTime(event.at),
            event.serverId,
            event.event,
            formatDetails(event.details),
          ]),
        );
      }),
    );
};
