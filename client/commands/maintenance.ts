/** `vms maintenance SERVER --for 20m`: a planned outage (a reboot) during which the Slave is not failed over. */
import type { Command } from 'commander';
import { durationArgument, serverIdArgument } from '../arguments';
import { formatTime, printLine } from '../output';
import { withSession } from '../session';

export const registerMaintenanceCommand = (program: Command): void => {
  program
    .command('maintenance')
    .description('start a maintenance window: no failover of the Slave until it ends; --for 0 ends it')
    .argument('<server>', 'Slave server id', serverIdArgument)
    .requiredOption(
      '--for <duration>',
      'length of the window (e.g. 20m, 1h); 0 ends it',
      durationArgument({ allowZero: true }),
    )
    .action((serverId: string, options: { for: number }) =>
      withSession(async (session) => {
        const fleet = await session.fleet();
        const { untilMs } = await session.answeredByWorker('maintenance update', () =>
          fleet.startMaintenance(serverId, options.for),
        );
        printLine(
          untilMs === null
            ? `${serverId}: maintenance ended, failover protection applies again`
            : `${serverId}: in maintenance until ${formatTime(untilMs)}, no failover until then`,
        );
      }),
    );
};
