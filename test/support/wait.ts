/** Waiting on conditions of the system itself (a query, a row), never on the wall clock alone. */
import { ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { monitorWorkflowId } from '../../domain/names';
import type { FailoverSettings } from '../../domain/site';
import type { FailoverResult } from '../../domain/contracts';
import type { MonitorState } from '../../workflows/definitions';
import type { slaveMonitorWorkflow } from '../../workflows/monitor';
import type { TestContext } from './world';

export const eventually = async <T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 50 } = {},
): Promise<T> => {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
};

export const monitorHandle = (
  world: TestContext,
  serverId: string,
): WorkflowHandle<typeof slaveMonitorWorkflow> =>
  world.client.workflow.getHandle<typeof slaveMonitorWorkflow>(monitorWorkflowId(world.site, serverId));

/**
 * A query the server refuses because no worker has polled the task queue lately: a worker that was just
 * (re)started is ready before the server has seen its first poll.
 */
const noPollerYet = (error: unknown): boolean =>
  error instanceof ServiceError && /no poller seen for task queue recently/.test(String(error.cause));

/** The monitor's state once `predicate` holds. */
export const monitorReaches = (
  world: TestContext,
  serverId: string,
  predicate: (state: MonitorState) => boolean,
  options?: { timeoutMs?: number },
): Promise<MonitorState> =>
  eventually(
    `the monitor of ${serverId} to reach the expected state`,
    async () => {
      const state = await world.fleet.monitorState(serverId).catch((error: unknown) => {
        if (noPollerYet(error)) return undefined;
        throw error;
      });
      return state !== undefined && predicate(state) ? state : undefined;
    },
    options,
  );

/**
 * The result of a failover the monitor has decided on. The monitor records the decision, then takes over
 * recording, then starts the failover workflow: it names the failover before the workflow exists.
 */
export const failoverResult = async (client: Client, failoverId: string): Promise<FailoverResult> => {
  const failover = client.workflow.getHandle(failoverId);
  await eventually(`failover ${failoverId} to start`, async () => {
    try {
      return await failover.describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  });
  return (await failover.result()) as FailoverResult;
};

/**
 * Waits until the Slave is deemed broken, then for its failover workflow to finish. The promoted server
 * inherits the protection and nobody sends its heartbeats in a test: `stopPromotedMonitor` stops its
 * monitor so that assertions about it are not raced by its own failover.
 */
export const failoverOf = async (
  world: TestContext,
  serverId: string,
  options: { timeoutMs?: number; stopPromotedMonitor?: boolean } = {},
): Promise<FailoverResult> => {
  // Failed over once the failover workflow is started (a take-over PostgreSQL refuted leaves it monitoring).
  const state = await monitorReaches(
    world,
    serverId,
    (candidate) => candidate.phase === 'failed-over',
    options,
  );
  const result = await failoverResult(world.client, state.broken?.failoverId as string);
  if (options.stopPromotedMonitor) await world.fleet.stopMonitor(result.failoverServerId);
  return result;
};

/**
 * Sends a settings change to a monitor no worker has run yet, then runs one until `then` settles: the change
 * and the start are handled together, which is when the monitor's first read of the Slave could race it.
 */
export const changeSettingsAsMonitorStarts = async <T>(
  world: TestContext,
  serverId: string,
  settings: FailoverSettings,
  then: () => Promise<T>,
): Promise<T> => {
  await world.fleet.startMonitor(serverId);
  const change = world.fleet.updateSettings(serverId, settings);
  const worker = await world.createWorker();
  return worker.runUntil(async () => {
    await change;
    return then();
  });
};
