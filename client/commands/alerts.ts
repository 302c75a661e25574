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
        const db = await session.db();
        const raised = await alerts(db, { all: options.all === true });
        const deliveries = await alertDeliveries(
          db,
          raised.map((alert) => alert.id),
        );
        const webhooks = session.config.alerts.webhooks.length;
        const deliveryOf = (alertId: string): string => {
          const own = deliveries.filter((delivery) => delivery.alertId === alertId);
          if (webhooks === 0 && own.length === 0) return '-';
          const delivered = own.filter((delivery) => delivery.deliveredAt !== null).length;
          const failing = own.find(
            (delivery) => delivery.deliveredAt === null && delivery.lastError !== null,
          );
          return `${delivered}/${Math.max(webhooks, own.length)}${failing ? ` (${failing.lastError})` : ''}`;
        };
        if (options.json === true) {
          printJson(
            raised.map((alert) => ({
              ...alert,
              deliveries: deliveries.filter((delivery) => delivery.alertId === alert.id),
            })),
          );
          return;
        }
        printTable(
          ['ALERT', 'RAISED', 'SERVER', 'ACKNOWLEDGED', 'WEBHOOKS', 'MESSAGE'],
          raised.map((alert) => [
            alert.id,
            formatTime(alert.raisedAt),
            alert.serverId ?? '-',
            alert.acknowledgedAt === null
              ? '-'
              : `${formatTime(alert.acknowledgedAt)} ${alert.acknowledgedBy ?? ''}`,
            deliveryOf(alert.id),
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
