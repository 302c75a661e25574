/** `vms standby in-service SERVER`: a standby taken out of service by a failover it failed is claimable again. */
import type { Command } from 'commander';
import { serverIdArgument } from '../arguments';
import { printLine } from '../output';
import { withSession } from '../session';
import { operatorName } from './hold';

export const registerStandbyCommands = (program: Command): void => {
  const command = program.command('standby').description('failover servers: their service state');

  command
    .command('in-service')
    .description('put a standby that failed a failover back in service, once it is repaired')
    .argument('<server>', 'failover server id shown out of service by vms status', serverIdArgument)
    .action((serverId: string) =>
      withSession(async (session) => {
        const fleet = await session.fleet();
        const result = await fleet.putStandbyInService(serverId, operatorName());
        if (!result.wasOutOfService) {
          printLine(`${serverId}: already in service`);
          return;
        }
        printLine(`${serverId}: back in service: failovers may claim it`);
        if (result.notifiedFailoverIds.length > 0) {
          printLine(`  failovers waiting for a standby, told: ${result.notifiedFailoverIds.join(', ')}`);
        }
      }),
    );
};
