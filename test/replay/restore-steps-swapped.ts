/**
 * A deliberately nondeterministic change of workflows/restore.ts, for the replay test that must fail: the
 * monitor is told to stop before the server is restored, the two steps in the other order.
 */
import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { monitorWorkflowId } from '../../domain/names';
import { localStep } from '../../workflows/activity-options';
import type { RestoreInput, RestoreWorkflowResult } from '../../workflows/definitions';
import { stopMonitorSignal } from '../../workflows/definitions';

export async function restoreServerWorkflow(input: RestoreInput): Promise<RestoreWorkflowResult> {
  await getExternalWorkflowHandle(monitorWorkflowId(input.site, input.serverId)).signal(stopMonitorSignal, {
    reason: 'restored',
  });
  const restored = await localStep(`Restore ${input.serverId} as a standby failover server`).restoreAsStandby(
    { serverId: input.serverId },
  );
  return { ...restored, notifiedFailoverIds: [] };
}
