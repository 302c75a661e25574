/**
 * `failoverOf` of wait.ts, robust to a race: a monitor reports its Slave broken (and the failover workflow
 * id) as soon as it decides, before the server has started the child workflow, so asking for the result at
 * once may find no workflow yet. This waits until the failover workflow exists.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FailoverResult } from '../../workflows/definitions';
import { eventually, monitorReaches } from './wait';
import type { TestContext } from './world';

export const failoverOf = async (
  world: TestContext,
  serverId: string,
  options: { timeoutMs?: number; stopPromotedMonitor?: boolean } = {},
): Promise<FailoverResult> => {
  const state = await monitorReaches(world, serverId, (candidate) => candidate.broken !== null, options);
  const handle = world.client.workflow.getHandle(state.broken?.failoverWorkflowId as string);
  await eventually(
    `the failover workflow of ${serverId} to start`,
    async () => {
      try {
        await handle.describe();
        return true;
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      }
    },
    options,
  );
  const result = (await handle.result()) as FailoverResult;
  if (options.stopPromotedMonitor) await world.fleet.stopMonitor(result.failoverServerId);
  return result;
};
