/** Waiting on conditions of the system itself (a query, a row), never on the wall clock alone. */
import type { FailoverResult, MonitorState } from '../../workflows/definitions';
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
      const state = await world.fleet.monitorState(serverId);
      return state !== undefined && predicate(state) ? state : undefined;
    },
    options,
  );

/** Waits until the Slave is deemed broken, then for its failover workflow to finish. */
export const failoverOf = async (
  world: TestContext,
  serverId: string,
  options?: { timeoutMs?: number },
): Promise<FailoverResult> => {
  const state = await monitorReaches(world, serverId, (candidate) => candidate.broken !== null, options);
  const failoverId = state.broken?.failoverWorkflowId as string;
  return world.client.workflow.getHandle(failoverId).result() as Promise<FailoverResult>;
};
