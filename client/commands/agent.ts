/**
 * `vms agent`: the heartbeat agent run on each Slave. Every interval it signals the Slave's monitor with a
 * heartbeat and the health of its recording disks. It never gives up on its own: a failed send (Temporal
 * down, monitor not started yet) is logged and tried again on the next tick; the gRPC connection, once open,
 * reconnects by itself. SIGINT or SIGTERM stop it between two heartbeats.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Option } from 'commander';
import type { Command } from 'commander';
import type { DiskHealth } from '../../domain/site';
import {
  diskStateArgument,
  driveMountArgument,
  durationArgument,
  positiveIntegerArgument,
  serverIdArgument,
} from '../arguments';
import { CliError, ExitCode, describeError } from '../cli-errors';
import { checkDrives, statedDisks } from '../disk-health';
import { withSession } from '../session';
import type { Session } from '../session';

interface AgentOptions {
  server: string;
  interval: number;
  disk?: Map<string, boolean>;
  drive?: Map<string, string>;
  count?: number;
}

/** A send may take at most this share of the interval, so that a hung call never delays the next tick. */
const MIN_SEND_DEADLINE_MS = 1_000;

const brokenLetters = (disks: DiskHealth[]): string =>
  disks
    .filter((disk) => !disk.healthy)
    .map((disk) => disk.letter)
    .join(',');

const runAgent = async (session: Session, options: AgentOptions): Promise<void> => {
  const { logger } = session;
  const log = logger.child({ serverId: options.server });
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
        const broken = brokenLetters(disks);
        if (broken !== lastBroken) {
          if (lastBroken !== undefined || broken !== '')
            log.warn({ brokenDisks: broken }, 'Disk health changed');
          lastBroken = broken;
        }
        const fleet = await session.signalFleet();
        const client = await session.client();
        await client.withDeadline(tickStartedAt + Math.max(options.interval, MIN_SEND_DEADLINE_MS), () =>
          fleet.sendHeartbeat({ serverId: options.server, sentAtMs: Date.now(), disks }),
        );
        sent += 1;
        if (sent === 1 || failing) log.info({ afterFailures: failed }, 'Heartbeats reaching the monitor');
        else log.debug({ disks }, 'Heartbeat sent');
        failing = false;
      } catch (error) {
        failed += 1;
        failing = true;
        lastError = error;
        log.warn({ err: describeError(error).message }, 'Heartbeat not sent: trying again next tick');
      }
      if (options.count !== undefined && ticks >= options.count) break;
      const waitMs = tickStartedAt + options.interval - Date.now();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    log.info({ sent, failed }, 'Heartbeat agent stopped');
  }
  if (options.count !== undefined && failed > 0) {
    const { message, exitCode } = describeError(lastError);
    throw new CliError(`${failed} of ${ticks} heartbeats were not sent (last: ${message})`, exitCode);
  }
};

export const registerAgentCommand = (program: Command): void => {
  program
    .command('agent')
    .description("the heartbeat agent of a Slave: tells the Slave's monitor every interval that it is alive")
    .requiredOption('--server <id>', 'the Slave this agent runs on', serverIdArgument)
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
      "\nWithout --disk or --drive the heartbeats carry no disk health: only a missed heartbeat fails the Slave over.\nKeep the interval well below the Slave's failover timeout.",
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
