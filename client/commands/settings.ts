/** `vms settings SERVER`: the failover settings of a Slave, as in its general settings in the VMS. */
import { Option } from 'commander';
import type { Command } from 'commander';
import { setLivenessSource } from '../../app/liveness-source';
import { formatDuration } from '../../domain/duration';
import type { FailoverSettings, LivenessSource } from '../../domain/site';
import { LIVENESS_SOURCES } from '../../domain/site';
import { durationArgument, serverIdArgument } from '../arguments';
import { printLine } from '../output';
import { withSession } from '../session';

const LIVENESS_NAMES: Record<LivenessSource, string> = {
  agent: 'heard through its agent',
  vms: 'heard through the VMS (no agent)',
  both: 'heard through its agent or the VMS',
};

const describeSettings = (serverId: string, settings: FailoverSettings, liveness: LivenessSource): string =>
  `${serverId}: ${settings.protected ? 'protected' : 'not protected'}, failover after ${formatDuration(settings.timeoutMs)} without a heartbeat, ${LIVENESS_NAMES[liveness]}`;

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
    .addOption(
      new Option('--liveness <source>', 'how it is heard: its agent, the VMS (no agent), or both').choices(
        LIVENESS_SOURCES,
      ),
    )
    .action((serverId: string, options: { timeout?: number; protect?: boolean; liveness?: LivenessSource }) =>
      withSession(async (session) => {
        const current = await (await session.site()).server(serverId);
        const liveness = options.liveness ?? current.livenessSource;
        if (options.liveness !== undefined)
          await setLivenessSource(await session.db(), serverId, options.liveness);
        if (options.timeout === undefined && options.protect === undefined) {
          printLine(describeSettings(serverId, current.settings, liveness));
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
        printLine(describeSettings(serverId, settings, liveness));
        if (monitorStarted) printLine(`${serverId}: monitoring started`);
        if (current.settings.protected && !settings.protected) printLine(`${serverId}: monitor stopped`);
      }),
    );
};
