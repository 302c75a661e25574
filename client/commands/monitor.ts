/** `vms monitor start|stop`: failover protection of Slaves, one monitor workflow each. Both are idempotent. */
import type { Command } from 'commander';
import { failureType } from '../../app/failures';
import { ErrorType } from '../../domain/errors';
import { serverIdArgument } from '../arguments';
import { CliError, ExitCode } from '../cli-errors';
import { printLine } from '../output';
import { withSession } from '../session';

const collectServerIds = (value: string, previous: string[] = []): string[] => [
  ...previous,
  serverIdArgument(value),
];

export const registerMonitorCommands = (program: Command): void => {
  const monitor = program.command('monitor').description('failover protection of Slave servers');

  monitor
    .command('start')
    .description('start monitoring protected Slaves; a Slave already monitored is left as it is')
    .argument('[servers...]', 'Slave server ids', collectServerIds, [])
    .option('--all', 'every protected Slave in the Servers folder')
    .action((servers: string[], options: { all?: boolean }) =>
      withSession(async (session) => {
        if (options.all === true && servers.length > 0) {
          throw new CliError('give --all or server ids, not both', ExitCode.BadInput);
        }
        if (options.all !== true && servers.length === 0) {
          throw new CliError('name the Slaves to monitor, or give --all', ExitCode.BadInput);
        }
        const fleet = await session.fleet();
        const targets = options.all === true ? await (await session.site()).monitorableSlaveIds() : servers;
        if (targets.length === 0) printLine('No protected Slave in the Servers folder: nothing to monitor.');
        for (const serverId of targets) {
          try {
            const { workflowId } = await fleet.startMonitor(serverId);
            printLine(`${serverId}: monitoring started (${workflowId})`);
          } catch (error) {
            if (failureType(error) !== ErrorType.MonitorAlreadyRunning) throw error;
            printLine(`${serverId}: already monitored`);
          }
        }
      }),
    );

  monitor
    .command('stop')
    .description(
      'stop monitoring Slaves (their protection setting is kept); a Slave not monitored is left as it is',
    )
    .argument('<servers...>', 'Slave server ids', collectServerIds, [])
    .action((servers: string[]) =>
      withSession(async (session) => {
        const fleet = await session.fleet();
        const site = await session.site();
        for (const serverId of servers) {
          await site.server(serverId);
          try {
            await fleet.stopMonitor(serverId);
            printLine(`${serverId}: monitor stopped`);
          } catch (error) {
            if (failureType(error) !== ErrorType.MonitorNotRunning) throw error;
            printLine(`${serverId}: not monitored`);
          }
        }
      }),
    );
};
