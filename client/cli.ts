#!/usr/bin/env node
/**
 * `vms`: the operator CLI of the failover orchestrator, and the heartbeat agent run on each Slave.
 * Exit codes: 0 done, 1 unexpected failure, 2 bad input (nothing changed), 3 a service is unreachable.
 */
import { Command, CommanderError } from 'commander';
import { ExitCode, describeError } from './cli-errors';
import { registerAgentCommand } from './commands/agent';
import { registerAgentTokenCommands } from './commands/agent-token';
import { registerAlertCommands } from './commands/alerts';
import { registerHoldCommands } from './commands/hold';
import { registerBridgeCommands } from './commands/bridge';
import { registerHistoryCommand } from './commands/history';
import { registerMaintenanceCommand } from './commands/maintenance';
import { registerMonitorCommands } from './commands/monitor';
import { registerRestoreCommand } from './commands/restore';
import { registerSettingsCommand } from './commands/settings';
import { registerSimulatorCommands } from './commands/simulator';
import { registerSiteCommands } from './commands/site';
import { registerStandbyCommands } from './commands/standby';
import { registerStatusCommand } from './commands/status';

const buildProgram = (): Command => {
  const program = new Command('vms')
    .description(
      'Failover protection of VMS Slave servers: site, monitors, status, settings, restore, agent, VMS simulator and bridge check',
    )
    .addHelpText(
      'after',
      '\nConfiguration comes from the environment: DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,\nTEMPORAL_TASK_QUEUE, VMS_SITE (see docs/cli.md).\nExit codes: 0 done, 1 unexpected failure, 2 bad input, 3 service unreachable.',
    )
    // Usage errors are reported like every other error, and exit with the bad-input code.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`vms: ${text}`) })
    .showSuggestionAfterError();
  registerSiteCommands(program);
  registerMonitorCommands(program);
  registerStatusCommand(program);
  registerSettingsCommand(program);
  registerMaintenanceCommand(program);
  registerRestoreCommand(program);
  registerStandbyCommands(program);
  registerHistoryCommand(program);
  registerHoldCommands(program);
  registerAlertCommands(program);
  registerAgentTokenCommands(program);
  registerAgentCommand(program);
  registerSimulatorCommands(program);
  registerBridgeCommands(program);
  return program;
};

const main = async (argv: string[]): Promise<number> => {
  try {
    await buildProgram().parseAsync(argv);
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.Ok : ExitCode.BadInput;
    const { message, exitCode } = describeError(error);
    process.stderr.write(`vms: error: ${message}\n`);
    return exitCode;
  }
};

void main(process.argv).then((exitCode) => {
  process.exitCode = exitCode;
});
