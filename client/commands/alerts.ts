/** `vms alerts [--all]`, `vms alerts ack ID...`: events that need a person, until acknowledged. */
import type { Command } from 'commander';
import { acknowledge, alertDeliveries, alerts } from '../../app/holds';
import { formatTime, printJson, printLine, printTable } from '../output';
import { withSession } from '../session';
import { operatorName } from './hold';

export const registerAlertCommands = (program: Command): void => {
  const command = program
    .command('alerts')
    .description('events that need a person: list them, acknowledge them');

  command
    .command('list', { isDefault: true })
    .description('alerts not acknowledged yet (all of them with --all)')
    .option('--all', 'acknowledged ones too')
    .option('--json', 'machine-readable output')
    .action((options: { all?: boolean; json?: boolean }) =>
      withSession(async (session) => {
        const raised = await alerts(await session.db(), { all: options.all === true });
        if (options.json === true) {
          printJson(raised);
          return;
        }
        printTable(
          ['ALERT', 'RAISED', 'SERVER', 'ACKNOWLEDGED', 'MESSAGE'],
          raised.map((alert) => [
            alert.id,
            formatTime(alert.raisedAt),
            alert.serverId ?? '-',
            alert.acknowledgedAt === null
              ? '-'
              : `${formatTime(alert.acknowledgedAt)} ${alert.acknowledgedBy ?? ''}`,
            alert.message,
          ]),
          'no alert',
        );
      }),
    );

  command
    .command('ack')
    .description('acknowledge alerts: they no longer show in vms status')
    .argument('<alerts...>', 'alert ids (vms alerts)')
    .action((ids: string[]) =>
      withSession(async (session) => {
        const acknowledged = await acknowledge(await session.db(), ids, operatorName());
        const unknown = ids.filter((id) => !acknowledged.includes(id));
        if (acknowledged.length > 0) printLine(`acknowledged: ${acknowledged.join(', ')}`);
        if (unknown.length > 0)
          printLine(`not open (unknown or acknowledged already): ${unknown.join(', ')}`);
      }),
    );
};
