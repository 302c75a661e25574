/**
 * `vms agent`: the heartbeat agent run on each Slave and each standby failover server. Every interval it POSTs
 * a heartbeat, with the health of its recording disks, to the heartbeat gateway of the worker (the first of
 * its gateways that answers), with the credential of its own server. It needs no access to Temporal. It never
 * gives up on its own: a failed send (no gateway answering) is logged and tried again on the next tick; a
 * refusal (a revoked credential, say) too, so that a fixed credential is taken at once. SIGINT or SIGTERM stop
 * it between two heartbeats.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Option } from 'commander';
import type { Command } from 'commander';
import { brokenLetters } from '../../domain/liveness';
import type { DiskHealth } from '../../domain/site';
import { GatewayClient, GatewayRefusal } from '../../liveness/gateway-client';
import {
  diskStateArgument,
  driveMountArgument,
  durationArgument,
  gatewayArgument,
  positiveIntegerArgument,
  serverIdArgument,
} from '../arguments';
import { CliError, ExitCode } from '../cli-errors';
import { checkDrives, statedDisks } from '../disk-health';
import { withSession } from '../session';
import type { Session } from '../session';

interface AgentOptions {
  server: string;
  interval: number;
  gateway?: string[];
  tokenFile?: string;
  disk?: Map<string, boolean>;
  drive?: Map<string, string>;
  count?: number;
}

/** A send may take at most the interval, and never less than this, so that a hung gateway never stops the agent. */
const MIN_SEND_TIMEOUT_MS = 1_000;

const agentToken = (session: Session, options: AgentOptions): string => {
  if (options.tokenFile !== undefined) {
    try {
      return readFileSync(options.tokenFile, 'utf8').trim();
    } catch {
      throw new CliError(`--token-file ${options.tokenFile} cannot be read`, ExitCode.BadInput);
    }
  }
  const { token } = session.config.agent;
  if (token === undefined) {
    throw new CliError(
      `no agent token: give --token-file, or set VMS_AGENT_TOKEN (issue one with: vms agent-token issue ${options.server})`,
      ExitCode.BadInput,
    );
  }
  return token;
};

const runAgent = async (session: Session, options: AgentOptions): Promise<void> => {
  const { logger } = session;
  const log = logger.child({ serverId: options.server });
  const gateways = options.gateway ?? session.config.agent.gateways;
  const client = new GatewayClient({
    gateways,
    token: agentToken(session, options),
    timeoutMs: Math.max(options.interval, MIN_SEND_TIMEOUT_MS),
    ...(session.config.agent.tls !== undefined && { tls: session.config.agent.tls }),
  });
  const readDisks = async (): Promise<DiskHealth[]> => {
    if (options.drive !== undefined) return checkDrives(options.drive);
    if (options.disk !== undefined) return statedDisks(options.disk);
    return [];
  };
  const stopping = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'Heartbeat agent stopping');
    stopping.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let sent = 0;
  let failed = 0;
  let ticks = 0;
  let lastError: unknown;
  let failing = false;
  let lastBroken: string | undefined;
  log.info(
    {
      intervalMs: options.interval,
      gateways,
      disks:
        options.drive !== undefined ? 'file system' : options.disk !== undefined ? 'stated' : 'not reported',
      count: options.count ?? null,
    },
    'Heartbeat agent started',
  );
  try {
    while (!stopping.signal.aborted && (options.count === undefined || ticks < options.count)) {
      const tickStartedAt = Date.now();
      ticks += 1;
      try {
        const disks = await readDisks();
        const broken = brokenLetters(disks).join(',');
        if (broken !== lastBroken) {
          if (lastBroken !== undefined || broken !== '')
            log.warn({ brokenDisks: broken }, 'Disk health changed');
          lastBroken = broken;
        }
        const delivery = await client.send({ serverId: options.server, sentAtMs: Date.now(), disks });
        sent += 1;
        if (sent === 1 || failing) {
          log.info({ gateway: delivery.gateway, afterFailures: failed }, 'Heartbeats reaching the gateway');
        } else log.debug({ disks }, 'Heartbeat sent');
        failing = false;
      } catch (error) {
        failed += 1;
        failing = true;
        lastError = error;
        log.warn({ err: (error as Error).message }, 'Heartbeat not sent: trying again next tick');
      }
      if (options.count !== undefined && ticks >= options.count) break;
      const waitMs = tickStartedAt + options.interval - Date.now();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client.close();
    log.info({ sent, failed }, 'Heartbeat agent stopped');
  }
  if (options.count !== undefined && failed > 0) {
    const refused = lastError instanceof GatewayRefusal;
    throw new CliError(
      `${failed} of ${ticks} heartbeats were not sent (last: ${(lastError as Error).message})`,
      refused ? ExitCode.BadInput : ExitCode.Unavailable,
    );
  }
};

export const registerAgentCommand = (program: Command): void => {
  program
    .command('agent')
    .description(
      'the heartbeat agent of a Slave or standby: tells the heartbeat gateway every interval that it is alive',
    )
    .requiredOption('--server <id>', 'the server this agent runs on', serverIdArgument)
    .option(
      '--gateway <url>',
      'a heartbeat gateway, e.g. http://master:7380 (repeatable, tried in order; default VMS_GATEWAY_URL)',
      (value: string, previous: string[] = []) => [...previous, gatewayArgument(value)],
    )
    .option('--token-file <path>', "a file holding this server's agent token (default: VMS_AGENT_TOKEN)")
    .addOption(
      new Option('--interval <duration>', 'time between heartbeats')
        .argParser(durationArgument())
        .default(5_000, '5s'),
    )
    .option(
      '--disk <letter=state>',
      'disk health stated by hand: D=ok or E=broken (repeatable)',
      diskStateArgument,
    )
    .option(
      '--drive <letter=path>',
      'disk health checked on the file system: D=/mnt/recordings is healthy when writable (repeatable)',
      driveMountArgument,
    )
    .option(
      '--count <n>',
      'send n heartbeats, then exit (non-zero when one was not sent)',
      positiveIntegerArgument,
    )
    .addHelpText(
      'after',
      "\nWithout --disk or --drive the heartbeats carry no disk health: only a missed heartbeat fails the Slave over.\nKeep the interval well below the Slave's failover timeout. The agent needs no Temporal access: only its token\n(vms agent-token issue SERVER) and the gateways' addresses.",
    )
    .action((options: AgentOptions) =>
      withSession(
        async (session) => {
          if (options.disk !== undefined && options.drive !== undefined) {
            throw new CliError('give --disk (stated) or --drive (checked), not both', ExitCode.BadInput);
          }
          await runAgent(session, options);
        },
        { logTo: 'stdout' },
      ),
    );
};
