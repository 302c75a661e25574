/**
 * The failover of one broken Slave: move it to Broken recorders, claim a matched standby, promote it,
 * rebind the IP cameras, protect the promoted server, then reinstall the plugins that did not follow.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  CameraMove,
  FailoverResult,
  FailoverTuning,
  HandedOverPlugin,
  PluginOutcome,
  PluginReinstallEnd,
} from '../domain/contracts';
import { ErrorType } from '../domain/errors';
import { VmsFailoverTarget } from '../domain/search-attributes';
import { localStep, pluginStep, serverUpCheck } from './activity-options';
import type { FailoverInput, FailoverState, FailoverStep } from './definitions';
import { failoverStateQuery, standbyAvailableSignal } from './definitions';

/**
 * The broken Slave is fenced in the VMS before its cameras are rebound, and the fence is tried again before
 * the failover completes if the VMS could not reach it. Failovers started before it go on without.
 */
const FENCE_BROKEN_SLAVE_PATCH = 'fence-broken-slave';

/**
 * A standby that fails its promotion or the rebind (StandbyFailed) is released and the next one claimed;
 * failovers started before go on failing as they did.
 */
const STANDBY_FALLBACK_PATCH = 'standby-fallback';

/**
 * Every patch is asked in the first workflow task, and the wait for a standby continues as new after a count
 * of its checks, not when the server suggests it: the result of a local activity can come back in a later
 * workflow task than the one a replay resolves it in (docs/guarantees.md), so code after one must not read
 * the task's patches or history. Under it, the fence and the standby fallback are always on. Failovers
 * started before ask as they did.
 */
const PATCHES_FIRST_PATCH = 'failover-asks-patches-first';

/** Checks for a standby a run makes before it continues as new, unless its tuning says: its history stays short. */
const DEFAULT_STANDBY_CHECKS_PER_RUN = 500;

/** The type of an activity's ApplicationFailure (a local activity's failure comes without its wrapper). */
const failureType = (error: unknown): string | undefined => {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
};

const failureMessage = (error: unknown): string => {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
};

export async function failoverWorkflow(input: FailoverInput): Promise<FailoverResult> {
  const failoverId = workflowInfo().workflowId;
  const { slaveId, tuning } = input;
  const patchesFirst = patched(PATCHES_FIRST_PATCH);
  const fences = (): boolean => patchesFirst || patched(FENCE_BROKEN_SLAVE_PATCH);
  const fallsBackToTheNextStandby = (): boolean => patchesFirst || patched(STANDBY_FALLBACK_PATCH);
  let standbyChecksThisRun = 0;
  const shouldContinueAsNew = (): boolean =>
    patchesFirst
      ? standbyChecksThisRun >= (tuning.standbyChecksPerRun ?? DEFAULT_STANDBY_CHECKS_PER_RUN)
      : workflowInfo().continueAsNewSuggested;
  const state: FailoverState = {
    failoverId,
    slaveId,
    step: 'moving to Broken recorders',
    failoverServerId: null,
    standbyChecks: 0,
  };
  let standbyMayBeAvailable = false;
  setHandler(failoverStateQuery, () => state);
  setHandler(standbyAvailableSignal, () => {
    standbyMayBeAvailable = true;
  });
  const enter = (step: FailoverStep, details: string): void => {
    state.step = step;
    setCurrentDetails(`**${slaveId}: ${step}**\n${details}`);
  };

  enter(
    'moving to Broken recorders',
    `Reason: ${input.reason}; deadline ${new Date(input.deadlineMs).toISOString()}.`,
  );
  const { takeOver } = input;
  const plan =
    takeOver?.plan ??
    (await localStep(`Move ${slaveId} to Broken recorders`).beginFailover({
      failoverId,
      slaveId,
      reason: input.reason,
      deadlineMs: input.deadlineMs,
      ...(input.claim !== undefined && { claim: input.claim }),
    }));

  enter('claiming a matched standby', `Drive letters: ${plan.driveLetters.join(', ')}.`);
  const claimStandby = localStep(`Claim a standby with drives ${plan.driveLetters.join(', ')}`);
  let claim = takeOver?.claim ?? (await claimStandby.claimMatchedStandby(failoverId));
  let cameras = takeOver?.cameras ?? null;
  for (;;) {
    while (!claim.claimed) {
      if (claim.firstWait) {
        log.warn('No matched standby available: Slave waits in Broken recorders', {
          slaveId,
          driveLetters: plan.driveLetters,
        });
      }
      enter(
        'waiting for a matched standby',
        `No available failover server has drive letters ${plan.driveLetters.join(', ')}. ` +
          'The failover goes on as soon as one is restored or added.',
      );
      if (shouldContinueAsNew()) {
        // The next run waits on; the warning above was given once.
        const waiting = { ...claim, firstWait: false };
        return continueAsNew<typeof failoverWorkflow>(
          takeOver ? { ...input, takeOver: { ...takeOver, claim: waiting } } : input,
        );
      }
      standbyMayBeAvailable = false;
      await condition(() => standbyMayBeAvailable, tuning.standbyRecheckMs);
      state.standbyChecks += 1;
      standbyChecksThisRun += 1;
      claim = await claimStandby.claimMatchedStandby(failoverId);
    }
    state.failoverServerId = claim.serverId;
    upsertSearchAttributes([{ key: VmsFailoverTarget, value: claim.serverId }]);
    if (cameras !== null) break;
    try {
      cameras = await promoteAndRebind(failoverId, slaveId, claim.serverId, enter, fences);
      break;
    } catch (error) {
      if (failureType(error) !== ErrorType.StandbyFailed || !fallsBackToTheNextStandby()) throw error;
      const reason = failureMessage(error);
      log.warn('Standby failed: released, out of service; claiming the next', {
        slaveId,
        failedServerId: claim.serverId,
        reason,
      });
      await localStep(`Release ${claim.serverId}: out of service`).releaseFailedStandby({
        failoverId,
        serverId: claim.serverId,
        reason,
      });
      enter('claiming a matched standby', `${claim.serverId} failed (${reason}): claiming the next one.`);
      claim = await claimStandby.claimMatchedStandby(failoverId);
    }
  }
  const failoverServerId = claim.serverId;

  log.info('IP cameras rebound: recording restored', {
    slaveId,
    failoverServerId,
    ipCameras: cameras.ipCameraIds.length,
  });
  if (cameras.analogCameraIds.length > 0) {
    log.warn('Analog cameras stay on the broken Slave', {
      slaveId,
      analogCameraIds: cameras.analogCameraIds,
    });
  }
  await localStep(`Protect ${failoverServerId} with its own monitor`).ensureMonitoring(failoverServerId);

  enter(
    'reinstalling plugins',
    `Plugins of ${slaveId} to reinstall on ${failoverServerId}: ${plan.plugins.join(', ') || 'none'}.`,
  );
  const reinstalled = await reinstallPlugins(failoverId, failoverServerId, plan.plugins, tuning);

  if (fences()) {
    // A no-op once fenced; a Slave the VMS could not reach then may be reachable now.
    await localStep(`Fence ${slaveId} if it was not reached before`).fenceBrokenSlave(failoverId);
  }

  const handedOver = await localStep('Record the failover as completed').completeFailover(failoverId);
  const outcomes = withHandOvers(reinstalled, handedOver);
  const manual = outcomes
    .filter((outcome) => outcome.status === 'needs-manual-action')
    .map((outcome) => outcome.plugin);
  const takenOver = outcomes.filter((outcome) => outcome.status === 'handed-over');
  enter(
    'completed',
    `${failoverServerId} records ${cameras.ipCameraIds.length} IP cameras of ${slaveId}.` +
      (manual.length > 0
        ? ` NEEDS MANUAL ACTION: reinstall ${manual.join(', ')} on ${failoverServerId}.`
        : '') +
      takenOver
        .map(
          (outcome) =>
            ` ${outcome.plugin}: handed over to ${outcome.toFailoverId} (${failoverServerId} broke in turn).`,
        )
        .join(''),
  );
  return {
    failoverId,
    slaveId,
    failoverServerId,
    ipCameraIds: cameras.ipCameraIds,
    analogCameraIds: cameras.analogCameraIds,
    plugins: outcomes,
  };
}

/**
 * The outcomes, with the plugins a later failover had taken over when this one completed: one given up on
 * here may have been taken over since. In histories from before hand-overs the completion answered nothing.
 */
const withHandOvers = (
  outcomes: PluginOutcome[],
  handedOver: HandedOverPlugin[] | undefined,
): PluginOutcome[] =>
  outcomes.map((outcome) => {
    const taken = handedOver?.find((candidate) => candidate.plugin === outcome.plugin);
    return taken === undefined
      ? outcome
      : { plugin: outcome.plugin, status: 'handed-over', toFailoverId: taken.toFailoverId };
  });

async function promoteAndRebind(
  failoverId: string,
  slaveId: string,
  failoverServerId: string,
  enter: (step: FailoverStep, details: string) => void,
  fences: () => boolean,
): Promise<CameraMove> {
  enter('promoting the standby', `${failoverServerId} takes the place of ${slaveId}.`);
  await localStep(`Promote ${failoverServerId} to recorder in place of ${slaveId}`).promoteStandby({
    failoverId,
    slaveId,
    serverId: failoverServerId,
  });
  if (fences()) {
    await localStep(`Fence ${slaveId}: stop it recording before its cameras move`).fenceBrokenSlave(
      failoverId,
    );
  }
  enter('rebinding IP cameras', `IP cameras of ${slaveId} move to ${failoverServerId}.`);
  return localStep(`Rebind the IP cameras of ${slaveId} to ${failoverServerId}`).rebindIpCameras(failoverId);
}

async function reinstallPlugins(
  failoverId: string,
  failoverServerId: string,
  plugins: string[],
  tuning: FailoverTuning,
): Promise<PluginOutcome[]> {
  if (plugins.length === 0) return [];
  const giveUp = async (plugin: string, error: string): Promise<PluginOutcome> => {
    await localStep(`${plugin}: needs manual reinstall`).markPluginNeedsManualAction({
      failoverId,
      plugin,
      error,
    });
    return { plugin, status: 'needs-manual-action', error };
  };
  try {
    await serverUpCheck(tuning, `Wait until ${failoverServerId} is up`).waitUntilServerUp(failoverServerId);
  } catch (error) {
    const reason = `${failoverServerId} did not come up: ${failureMessage(error)}`;
    return Promise.all(plugins.map((plugin) => giveUp(plugin, reason)));
  }
  return Promise.all(
    plugins.map(async (plugin): Promise<PluginOutcome> => {
      try {
        // In histories from before hand-overs the install answered nothing.
        const end: PluginReinstallEnd | undefined = await pluginStep(
          tuning,
          `Reinstall ${plugin} on ${failoverServerId}`,
        ).reinstallPlugin({ failoverId, serverId: failoverServerId, plugin });
        return end?.status === 'handed-over'
          ? { plugin, status: 'handed-over', toFailoverId: end.toFailoverId }
          : { plugin, status: 'installed' };
      } catch (error) {
        return giveUp(plugin, failureMessage(error));
      }
    }),
  );
}
