/**
 * `vms simulator ...`: the simulated VMS site as a service (`serve`), and its fault injection over HTTP
 * (`seed`, `down`, `up`, `partition`, `slow`, `hang`, `fail-plugin`, `disks`, `reset-faults`) for
 * demonstrations, tests and the benchmark.
 */
import { Argument, InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { createWarmPool, ensureDatabase } from '../../infra/database';
import { VmsRejected, VmsUnavailable } from '../../vms/control-plane';
import { VmsSimulator } from '../../vms/simulator';
import { FAULTABLE_CALLS } from '../../vms/simulator-site';
import type { CallFault, FaultableCall } from '../../vms/simulator-site';
import type { ServerState } from '../../vms/simulator-sql';
import { SimulatorClient } from '../../vms/simulator-client';
import { createSimulatorServer, listen, stopServer } from '../../vms/simulator-server';
import { diskStateArgument, durationArgument, positiveIntegerArgument } from '../arguments';
import { CliError, ExitCode } from '../cli-errors';
import { printLine } from '../output';
import { withSession } from '../session';
import type { Session } from '../session';
import { readSiteFile } from '../site-source';

/** Where `vms simulator serve` listens by default, and where the other commands look when no URL is set. */
const DEFAULT_SIMULATOR_PORT = 7280;
const DEFAULT_SIMULATOR_URL = `http://127.0.0.1:${DEFAULT_SIMULATOR_PORT}`;
/**
 * PostgreSQL connections the service keeps open, idle or not, as a VMS server does: a burst of calls after a
 * quiet spell (a failover after hours of heartbeats) should not wait for new backends.
 */
const SERVE_CONNECTIONS = 10;

interface ClientOptions {
  url?: string;
  token?: string;
}

const portArgument = (value: string): number => {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError(`"${value}" must be a whole number from 0 to 65535`);
  }
  return port;
};

const serve = async (session: Session, options: { port: number; host: string; token?: string }) => {
  const { config, logger } = session;
  const token = options.token ?? config.vmsBridge.token;
  await ensureDatabase(config.databaseUrl, logger);
  await session.db();
  const db = await createWarmPool(config.databaseUrl, logger, SERVE_CONNECTIONS);
  const simulator = new VmsSimulator(db);
  await simulator.install(logger);
  const server = createSimulatorServer({ simulator, logger, ...(token !== undefined && { token }) });
  let port: number;
  try {
    port = await listen(server, options.port, options.host);
  } catch (error) {
    throw new CliError(
      `cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`,
      ExitCode.BadInput,
    );
  }
  const stopping = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info(
    { url: `http://${options.host}:${port}`, auth: token === undefined ? 'none' : 'bearer token' },
    'VMS simulator listening',
  );
  if (token === undefined) logger.warn('VMS simulator serves every caller: no token set');
  const signal = await stopping;
  logger.info({ signal }, 'VMS simulator stopping');
  await stopServer(server);
  await db.end();
  logger.info('VMS simulator stopped');
};

/** Runs `work` against the simulator at --url; its refusals are bad input, no answer is unavailable. */
const withSimulator = (options: ClientOptions, work: (simulator: SimulatorClient) => Promise<void>) =>
  withSession(async ({ config }) => {
    const url = options.url ?? config.vmsBridge.url ?? DEFAULT_SIMULATOR_URL;
    const token = options.token ?? config.vmsBridge.token;
    const simulator = new SimulatorClient({
      url,
      timeoutMs: config.vmsBridge.timeoutMs,
      ...(token !== undefined && { token }),
      ...(config.vmsBridge.tls !== undefined && { tls: config.vmsBridge.tls }),
    });
    try {
      await work(simulator);
    } catch (error) {
      if (error instanceof VmsRejected) throw new CliError(error.message, ExitCode.BadInput);
      if (error instanceof VmsUnavailable) {
        throw new CliError(
          `the VMS simulator at ${url} did not answer: ${error.message}`,
          ExitCode.Unavailable,
        );
      }
      throw error;
    } finally {
      simulator.close();
    }
  });

/** A subcommand talking to a running simulator: --url and --token. */
const clientCommand = (parent: Command, name: string, description: string): Command =>
  parent
    .command(name)
    .description(description)
    .option('--url <url>', `the simulator (default: VMS_BRIDGE_URL, else ${DEFAULT_SIMULATOR_URL})`)
    .option('--token <token>', 'its bearer token (default: VMS_BRIDGE_TOKEN)');

const operationArgument = (description: string): Argument =>
  new Argument('<operation>', description).choices(FAULTABLE_CALLS);

const FAULT_HELP = `
Operations: the calls of the bridge protocol (health, status, promote, fence, demote, rebind, install-start,
install-status) answer late or never; install-plugin is the plugin install itself, which then runs that long
or never ends. A call whose caller goes away while it waits is dropped.`;

export const registerSimulatorCommands = (program: Command): void => {
  const simulator = program
    .command('simulator')
    .description('the simulated VMS site as a service (a VMS bridge), and its fault injection');

  simulator
    .command('serve')
    .description(
      'serve the simulated site over the VMS bridge protocol (state in PostgreSQL, schema vms_sim)',
    )
    .addOption(
      new Option('--port <port>', 'TCP port; 0 picks a free one (logged)')
        .argParser(portArgument)
        .default(DEFAULT_SIMULATOR_PORT),
    )
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--token <token>',
      'bearer token every call must carry (default: VMS_BRIDGE_TOKEN; none: no token)',
    )
    .addHelpText('after', '\nLogs go to stdout. SIGTERM or SIGINT stop it.')
    .action((options: { port: number; host: string; token?: string }) =>
      withSession((session) => serve(session, options), { logTo: 'stdout' }),
    );

  clientCommand(
    simulator,
    'seed',
    'replace the simulated site with a site file: every camera bound and recorded',
  )
    .argument('<file>', 'site description (.yaml, .yml or .json), as for vms site import')
    .action((file: string, options: ClientOptions) =>
      withSimulator(options, async (client) => {
        // Read and checked here first, so that a bad file is reported at its line and column.
        const { content } = await readSiteFile(file);
        const loaded = await client.putSite(content);
        printLine(
          `Simulated site loaded from ${file}: ${loaded.servers} servers, ${loaded.cameras} cameras.`,
        );
      }),
    );

  const states: [string, ServerState, string][] = [
    ['down', 'down', 'crash a server: not reachable, recording nothing'],
    ['up', 'up', 'bring a server back (from down it records what is bound to it)'],
    ['partition', 'partitioned', 'cut a server off: not reachable, still recording what it recorded'],
  ];
  for (const [name, state, description] of states) {
    clientCommand(simulator, name, description)
      .argument('<server>', 'server id')
      .action((serverId: string, options: ClientOptions) =>
        withSimulator(options, async (client) => {
          await client.setServerState(serverId, state);
          printLine(`${serverId} is ${state}.`);
        }),
      );
  }

  clientCommand(simulator, 'slow', 'make an operation take DURATION (0: normal again)')
    .addArgument(operationArgument('the call or install-plugin'))
    .argument('<duration>', 'e.g. 500ms, 30s', durationArgument({ allowZero: true }))
    .addHelpText('after', FAULT_HELP)
    .action((call: FaultableCall, delayMs: number, options: ClientOptions) =>
      withSimulator(options, async (client) => {
        const fault: CallFault | null = delayMs === 0 ? null : { delayMs };
        await client.setCallFault(call, fault);
        printLine(fault === null ? `${call} is normal again.` : `${call} now takes ${delayMs} ms.`);
      }),
    );

  clientCommand(simulator, 'hang', 'make an operation never answer (until reset-faults)')
    .addArgument(operationArgument('the call or install-plugin'))
    .addHelpText('after', FAULT_HELP)
    .action((call: FaultableCall, options: ClientOptions) =>
      withSimulator(options, async (client) => {
        await client.setCallFault(call, { hang: true });
        printLine(`${call} hangs.`);
      }),
    );

  clientCommand(simulator, 'fail-plugin', 'make the next installs of a plugin on a server fail')
    .argument('<server>', 'server id')
    .argument('<plugin>', 'plugin name, e.g. "ANPR+"')
    .requiredOption('--times <n>', 'how many installs fail before one succeeds', positiveIntegerArgument)
    .action((serverId: string, plugin: string, options: ClientOptions & { times: number }) =>
      withSimulator(options, async (client) => {
        await client.failPluginInstalls(serverId, plugin, options.times);
        printLine(`The next ${options.times} installs of ${plugin} on ${serverId} fail.`);
      }),
    );

  clientCommand(simulator, 'disks', 'set the disk health a server reports')
    .argument('<server>', 'server id')
    .argument('<disks...>', 'D=broken E=ok ...', diskStateArgument)
    .action((serverId: string, disks: Map<string, boolean>, options: ClientOptions) =>
      withSimulator(options, async (client) => {
        await client.setDisks(
          serverId,
          [...disks].map(([letter, healthy]) => ({ letter, healthy })),
        );
        const shown = [...disks].map(([letter, healthy]) => `${letter}=${healthy ? 'ok' : 'broken'}`);
        printLine(`${serverId} reports ${shown.join(' ')}.`);
      }),
    );

  clientCommand(
    simulator,
    'reset-faults',
    'lift every fault: servers up, disks healthy, calls and installs normal',
  ).action((options: ClientOptions) =>
    withSimulator(options, async (client) => {
      await client.resetFaults();
      printLine('Every fault is lifted.');
    }),
  );
};
