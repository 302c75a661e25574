/** `vms restore SERVER`: a repaired server in Broken recorders comes back as a new standby failover server. */
import type { Command } from 'commander';
import { driveListArgument, serverIdArgument } from '../arguments';
import { printLine } from '../output';
import { withSession } from '../session';

export const registerRestoreCommand = (program: Command): void => {
  program
    .command('restore')
    .description('restore a repaired server from Broken recorders as a new standby failover server')
    .argument('<server>', 'server id in Broken recorders', serverIdArgument)
    .option(
      '--drives <letters>',
      'the drive letters it has after repair, checked against the record (e.g. C,D,E)',
      driveListArgument,
    )
    .action((serverId: string, options: { drives?: string[] }) =>
      withSession(async (session) => {
        const fleet = await session.fleet();
        const result = await session.answeredByWorker('restore', () =>
          fleet.restore(serverId, options.drives),
        );
        printLine(
          `${serverId}: restored as a standby failover server (drives ${result.driveLetters.join(',')})`,
        );
        if (result.analogCameraIds.length > 0) {
          printLine(`  analog cameras still wired to it: ${result.analogCameraIds.join(', ')}`);
        }
        if (result.notifiedFailoverIds.length > 0) {
          printLine(`  failovers waiting for a standby, told: ${result.notifiedFailoverIds.join(', ')}`);
        }
      }),
    );
};
