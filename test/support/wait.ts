/** Waiting on conditions of the system itself (a query, a row), never on the wall clock alone. */
import { ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { monitorWorkflowId } from '../../domain/names';
import type { FailoverSettings } from '../../domain/site';
import type { FailoverResult } from '../../domain/contracts';
import type { MonitorState } from '../../workflows/definitions';
import type { slaveMonitorWorkflow } from '../../workflows/monitor';
import type { TestContext } from './world';

/**
 * The probe's first answer that is not `undefined`, `null` or `false`: a probe written as
 * `async () => rows.length === 2` waits for the rows instead of returning at once with `false`.
 */
export const eventually = async <T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  { timeoutMs = 30_000, intervalMs = 50 } = {},
): Promise<T> => {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
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
export const failoverResult = async (
  client: Client,
  failoverId: string,
  { timeoutMs = 60_000 } = {},
): Promise<FailoverResult> => {
  const giveUpAt = Date.now() + timeoutMs;
  const failover = client.workflow.getHandle(failoverId);
  await eventually(
    `failover ${failoverId} to start`,
    async () => {
      try {
        return await failover.describe();
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      }
    },
    { timeoutMs },
  );
  // A failover waiting for a standby nobody provides would otherwise hold the test until jest kills it.
  return (await within(
    failover.result(),
    giveUpAt - Date.now(),
    `failover ${failoverId} did not finish within ${timeoutMs} ms`,
  )) as FailoverResult;
};

/** The promise's value, or an error saying `failure` once `ms` have passed (never a silent wait for jest). */
const within = async <T>(promise: Promise<T>, ms: number, failure: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeLimit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(failure)), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeLimit]);
  } finally {
    clearTimeout(timer);
  }
};

/**
 * The result of one run of a workflow, not of the runs it continued as: a run expected to end tells, within
 * `timeoutMs`, how it ended, or the test fails with the status it was left in.
 */
export const runResult = async (
  client: Client,
  run: { workflowId: string; runId: string },
  { timeoutMs = 30_000 } = {},
): Promise<unknown> => {
  const handle = client.workflow.getHandle(run.workflowId, run.runId, { followRuns: false });
  try {
    return await within(handle.result(), timeoutMs, `timed out after ${timeoutMs} ms`);
  } catch (error) {
    const { status } = await handle.describe();
    throw new Error(`run ${run.runId} of ${run.workflowId} (${status.name}): ${String(error)}`);
  }
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
  const result = await failoverResult(world.client, state.broken?.failoverId as string, options);
  if (options.stopPromotedMonitor) await world.fleet.stopMonitor(result.failoverServerId);
  return result;
};

/**
 * Workflow tasks the monitor completed before it accepted its first update: 1 when the update arrived with
 * its start, in the same task as its first read of the Slave.
 */
const tasksBeforeFirstUpdate = async (world: TestContext, serverId: string): Promise<number | undefined> => {
  const history = await monitorHandle(world, serverId).fetchHistory();
  let completedTasks = 0;
  for (const event of history.events ?? []) {
    if (event.workflowTaskCompletedEventAttributes) completedTasks += 1;
    if (event.workflowExecutionUpdateAcceptedEventAttributes) return completedTasks;
  }
  return undefined;
};

/**
 * Sends a settings change to a monitor no worker has run yet, then runs one until `then` settles: the change
 * and the start are handled in the same first workflow task, which is when the monitor's first read of the
 * Slave could race it. Fails when the history shows the change came later (the race did not happen).
 */
export const changeSettingsAsMonitorStarts = async <T>(
  world: TestContext,
  serverId: string,
  settings: FailoverSettings,
  then: () => Promise<T>,
): Promise<T> => {
  await world.fleet.startMonitor(serverId);
  const change = world.fleet.updateSettings(serverId, settings);
  // Creating the worker takes long enough for the update to reach the server before the first poll.
  const worker = await world.createWorker();
  return worker.runUntil(async () => {
    await change;
    const tasks = await tasksBeforeFirstUpdate(world, serverId);
    if (tasks !== 1) {
      throw new Error(
        `the settings change was accepted after ${String(tasks)} workflow tasks, not with the monitor's start: the race was not exercised`,
      );
    }
    return then();
  });
};

/** The rejection of `call`, for assertions on its type and code; throws when it does not fail. */
export const rejectionOf = async (call: Promise<unknown>): Promise<unknown> => {
  try {
    await call;
  } catch (error) {
    return error;
  }
  throw new Error('the call did not fail');
};
