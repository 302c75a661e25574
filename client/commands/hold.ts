/**
 * `vms hold [list] | release ID | dismiss ID`: failovers held because many Slaves went silent at once (more
 * likely the network to the Master than the Slaves). One decision covers every Slave in the hold.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { decideMassFailureHold, recentMassFailureHolds } from '../../app/holds';
import type { Hold } from '../../store/holds';
import { formatTime, printJson, printLine } from '../output';
import { withSession } from '../session';

export const operatorName = (): string => `${userInfo().username}@${hostname()}`;

const describeHold = (hold: Hold): string[] => [
  `${hold.id}: ${hold.status}, ${hold.slaves.length} of ${hold.protectedSlaves} protected Slaves held since ${formatTime(hold.openedAt)}` +
    (hold.decidedBy === null
      ? ''
      : ` (${hold.status} by ${hold.decidedBy} at ${formatTime(hold.decidedAt)})`),
  ...hold.slaves.map((slave) => `  ${slave.serverId}: deadline ${formatTime(slave.deadlineMs)}`),
];

export const registerHoldCommands = (program: Command): void => {
  const hold = program
    .command('hold')
    .description('failovers held during a mass failure: list them, release them, or dismiss them');

  hold
    .command('list', { isDefault: true })
    .description('the open hold and the latest decided ones')
    .option('--json', 'machine-readable output')
    .action((options: { json?: boolean }) =>
      withSession(async (session) => {
        const holds = await recentMassFailureHolds(await session.db());
        if (options.json === true) {
          printJson(holds);
          return;
        }
        if (holds.length === 0) printLine('No mass-failure hold.');
        for (const entry of holds) describeHold(entry).forEach((line) => printLine(line));
      }),
    );

  for (const [name, decision, summary] of [
    ['release', 'released', 'the held Slaves fail over now (each still silent is confirmed first)'],
    ['dismiss', 'dismissed', 'the held Slaves are not failed over; each is watched again once it is heard'],
  ] as const) {
    hold
      .command(name)
      .description(summary)
      .argument('<hold>', 'the hold id (vms hold list)')
      .action((holdId: string) =>
        withSession(async (session) => {
          const decided = await decideMassFailureHold(await session.db(), holdId, decision, operatorName());
          printLine(
            `${decided.id}: ${decision}; ${decided.slaves.map((slave) => slave.serverId).join(', ')}`,
          );
        }),
      );
  }
};
