/**
 * `vms bridge check URL`: the conformance check of a VMS bridge (vms/bridge-check.ts), one line per check,
 * exit 0 only when every check passed.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { checkBridge } from '../../vms/bridge-check';
import type { CheckResult } from '../../vms/bridge-check';
import { durationArgument } from '../arguments';
import { CliError, ExitCode } from '../cli-errors';
import { printLine } from '../output';
import { withSession } from '../session';

interface CheckOptions {
  token?: string;
  standby: string;
  slave: string;
  camera: string[];
  plugin: string;
  timeout?: number;
  installTimeout?: number;
}

const VERDICT_LABEL = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

const reportLine = (result: CheckResult): string =>
  result.verdict === 'pass'
    ? `PASS  ${result.check}: ${result.seen}`
    : `${VERDICT_LABEL[result.verdict]}  ${result.check}: expected ${result.expected}; seen ${result.seen}`;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export const registerBridgeCommands = (program: Command): void => {
  const bridge = program
    .command('bridge')
    .description('the VMS bridge: the service that carries calls to the VMS');
  bridge
    .command('check')
    .description('run the bridge protocol contract against a bridge and report each check (DESTRUCTIVE)')
    .argument('<url>', 'base URL of the bridge, e.g. http://127.0.0.1:7280')
    .option('--token <token>', 'its bearer token (default: VMS_BRIDGE_TOKEN)')
    .requiredOption('--standby <id>', 'a standby failover server: it is promoted')
    .requiredOption('--slave <id>', 'a reachable Slave: it is replaced, fenced and demoted')
    .requiredOption('--camera <id>', 'an IP camera of the Slave, moved to the standby (repeatable)', collect)
    .option('--plugin <name>', 'plugin installed on the promoted standby', 'vms-bridge-check')
    .addOption(
      new Option(
        '--timeout <duration>',
        'every answer must come within this (default: VMS_BRIDGE_TIMEOUT)',
      ).argParser(durationArgument()),
    )
    .addOption(
      new Option(
        '--install-timeout <duration>',
        'the plugin install must end within this (default: 2m)',
      ).argParser(durationArgument()),
    )
    .addHelpText(
      'after',
      `
DESTRUCTIVE: it promotes the standby in place of the Slave, moves the cameras, fences and demotes the
Slave, and installs a plugin. Run it against a test site in its initial state, never a production site
(with the simulator: vms simulator seed FILE first).
Exit codes: 0 every check passed, 1 a check failed, 3 the bridge did not answer at all.`,
    )
    .action((url: string, options: CheckOptions) =>
      withSession(async ({ config }) => {
        const token = options.token ?? config.vmsBridge.token;
        const results = await checkBridge({
          connection: {
            url,
            ...(token !== undefined && { token }),
            ...(config.vmsBridge.tls !== undefined && { tls: config.vmsBridge.tls }),
          },
          timeoutMs: options.timeout ?? config.vmsBridge.timeoutMs,
          installTimeoutMs: options.installTimeout ?? 120_000,
          standbyId: options.standby,
          slaveId: options.slave,
          cameraIds: options.camera,
          plugin: options.plugin,
        });
        results.forEach((result) => printLine(reportLine(result)));
        const count = (verdict: CheckResult['verdict']) =>
          results.filter((r) => r.verdict === verdict).length;
        printLine(
          `${results.length} checks: ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`,
        );
        if (results.length === 1 && count('fail') === 1) {
          throw new CliError(`the VMS bridge at ${url} did not answer`, ExitCode.Unavailable);
        }
        if (count('fail') > 0) {
          throw new CliError(`${count('fail')} of ${results.length} checks failed`, ExitCode.Failure);
        }
      }),
    );
};
