/** A repaired server comes back as a new standby failover server. */
import { ApplicationFailure, getExternalWorkflowHandle, log, patched } from '@temporalio/workflow';
import { monitorWorkflowId } from '../domain/names';
import { localStep } from './activity-options';
import type { RestoreInput, RestoreWorkflowResult } from './definitions';
import { standbyAvailableSignal, stopMonitorSignal } from './definitions';

/** The server is made a standby in the VMS before PostgreSQL restores it; restores started before go on without. */
const DEMOTE_IN_VMS_PATCH = 'demote-restored-server-in-vms';

export async function restoreServerWorkflow(input: RestoreInput): Promise<RestoreWorkflowResult> {
  if (patched(DEMOTE_IN_VMS_PATCH)) {
    await localStep(`Make ${input.serverId} a standby in the VMS`).demoteToStandby(
      input.serverId,
      input.driveLetters,
    );
  }
  const restored = await localStep(`Restore ${input.serverId} as a standby failover server`).restoreAsStandby(
    {
      serverId: input.serverId,
      ...(input.driveLetters !== undefined && { driveLetters: input.driveLetters }),
    },
  );
  await signalIfRunning(monitorWorkflowId(input.site, input.serverId), (handle) =>
    handle.signal(stopMonitorSignal, { reason: 'restored' }),
  );
  const notified: string[] = [];
  for (const failoverId of restored.waitingFailoverIds) {
    if (await signalIfRunning(failoverId, (handle) => handle.signal(standbyAvailableSignal)))
      notified.push(failoverId);
  }
  log.info('Server restored as standby failover server', {
    serverId: input.serverId,
    notified: notified.length,
  });
  return {
    serverId: restored.serverId,
    driveLetters: restored.driveLetters,
    analogCameraIds: restored.analogCameraIds,
    notifiedFailoverIds: notified,
  };
}

/** The server answered that the workflow does not exist or has ended (its failure type names the cause). */
const isNotFound = (error: unknown): boolean =>
  error instanceof ApplicationFailure && /not_?found/i.test(error.type ?? '');

/** Signals a workflow that may have ended already; returns whether it was running. Other failures fail. */
async function signalIfRunning(
  workflowId: string,
  send: (handle: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>,
): Promise<boolean> {
  try {
    await send(getExternalWorkflowHandle(workflowId));
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
