/** `vms settings SERVER`: the failover settings of a Slave, as in its general settings in the VMS. */
import type { Command } from 'commander';
import { formatDuration } from '../../domain/duration';
import type { FailoverSettings } from '../../domain/site';
import { durationArgument, serverIdArgument } from '../arguments';
import { printLine } from '../output';
import { withSession } from '../session';

const describeSettings = (serverId: string, settings: FailoverSettings): string =>
  `${serverId}: ${settings.protected ? 'protected' : 'not protected'}, failover after ${formatDuration(settings.timeoutMs)} without a heartbeat`;

export const registerSettingsCommand = (program: Command): void => {
  program
    .command('settings')
    .description(
      'show or change the failover settings of a Slave; options not given keep their current value',
    )
    .argument('<server>', 'server id', serverIdArgument)
    .option(
      '--timeout <duration>',
      'failover after this long without a heartbeat (e.g. 30s, 2m)',
      durationArgument(),
    )
    .option('--protect', 'place the Slave under failover protection (starts its monitor)')
    .option('--no-protect', 'remove failover protection (stops its monitor)')
    .action((serverId: string, options: { timeout?: number; protect?: boolean }) =>
      withSession(async (session) => {
        const current = await (await session.site()).server(serverId);
        if (options.timeout === undefined && options.protect === undefined) {
          printLine(describeSettings(serverId, current.settings));
          return;
        }
        const settings: FailoverSettings = {
          protected: options.protect ?? current.settings.protected,
          timeoutMs: options.timeout ?? current.settings.timeoutMs,
        };
        const fleet = await session.fleet();
        const { monitorStarted } = await session.answeredByWorker('settings update', () =>
          fleet.updateSettings(serverId, settings),
        );
        printLine(describeSettings(serverId, settings));
        if (monitorStarted) printLine(`${serverId}: monitoring started`);
        if (current.settings.protected && !settings.protected) printLine(`${serverId}: monitor stopped`);
      }),
    );
};
