/**
 * The failover's steps from a broken Slave to its IP cameras recorded by a promoted standby: open the failover
 * (the Slave in Broken recorders), claim a matched standby, promote it, fence the Slave, rebind the cameras.
 * Each step is idempotent: run again after another run of it, it finds its guard false and answers what the
 * first run did.
 *
 * Two callers run them: the monitor's take-over activity and the failover workflow (as activities), and the
 * liveness detector, which runs the take-over at once at the deadline of a failover it opened itself. Two runs
 * of one take-over never overlap: the detector runs it under a PostgreSQL advisory lock named by the failover,
 * on its own session (freed when that ends), and an activity that opens or finds the failover waits until no
 * one holds that lock before any later step. The detector takes the lock before the monitor is told, so the
 * monitor's take-over cannot begin in between.
 */
import type { Pool } from 'pg';
import type {
  CameraMove,
  ClaimResult,
  FailoverPlan,
  FailoverStart,
  FailoverTuning,
  TakeOver,
} from '../domain/contracts';
import { DomainError, ErrorType } from '../domain/errors';
import { Batches } from '../infra/batches';
import * as failovers from '../store/failovers';
import type { FailoverOpener } from '../store/failovers';
import * as fencing from '../store/fencing';
import type { SlaveFence } from '../store/fencing';
import * as standbys from '../store/standbys';
import { waitUntilNotTakenOver } from '../store/take-over-lock';
import type { VmsControlPlane } from '../vms/control-plane';
import { VmsRejected, VmsUnavailable } from '../vms/control-plane';
import { SharedStatusRead } from './shared-status-read';

/** Where the steps log: the activity's logger or the worker's, with a constant message and data in fields. */
export interface StepLog {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
}

export interface TakeOverDeps {
  db: Pool;
  vms: VmsControlPlane;
  tuning: Pick<FailoverTuning, 'serverUpTimeoutMs' | 'standbyBudgetMs'>;
  log: StepLog;
}

/** What the VMS answers about a standby that cannot take a Slave's place (docs/vms-bridge.md). */
const STANDBY_REFUSALS = new Set(['not-a-standby', 'not-a-recorder', 'server-fenced']);

/** What a claim tells the workflows: whether its standby is still to be promoted is the take-over's own. */
const claimResult = (claim: failovers.StandbyClaim): ClaimResult =>
  claim.claimed
    ? { claimed: true, serverId: claim.serverId }
    : { claimed: false, firstWait: claim.firstWait };

/**
 * The take-overs a detector runs in this process, by failover id. The monitor's take-over activity, run by a
 * worker of the same process (the worker service runs both), awaits the detector's run and answers its result
 * instead of asking PostgreSQL until the lock is free and reading the steps again: on a burst of deadlines,
 * the queries it saves are the machine's to spend on the take-overs themselves.
 */
export class TakeOversHere {
  private readonly running = new Map<string, Promise<TakeOver | undefined>>();

  /** Runs a take-over known to this process until it ends; it answers undefined when it did not finish. */
  async track(failoverId: string, run: () => Promise<TakeOver | undefined>): Promise<TakeOver | undefined> {
    const ended = run();
    this.running.set(failoverId, ended);
    try {
      return await ended;
    } finally {
      this.running.delete(failoverId);
    }
  }

  /** The run of this failover's take-over in this process, if one is under way. */
  runningFor(failoverId: string): Promise<TakeOver | undefined> | undefined {
    return this.running.get(failoverId);
  }
}

/** A take-over found committed: recording restored by the standby it claimed. */
const asTakeOver = (
  plan: FailoverPlan,
  committed: { failoverServerId: string; cameras: TakeOver['cameras'] },
): TakeOver => ({
  plan,
  claim: { claimed: true, serverId: committed.failoverServerId },
  cameras: committed.cameras,
});

/** A run of the take-over that stopped before a step because it may no longer run it (another run goes on). */
export class TakeOverLeft extends Error {
  constructor(failoverId: string, step: string) {
    super(`take-over of ${failoverId} left to its other run before ${step}`);
    this.name = 'TakeOverLeft';
  }
}

/** How long take-overs decided together share what the VMS said of a server (a claim is about as quick). */
const SHARED_STATUS_MAX_AGE_MS = 1_000;

export const createTakeOver = ({ db, vms, tuning, log }: TakeOverDeps) => {
  /** A step of a take-over; the caller learns which step failed, and why. */
  const logged = async <T>(failoverId: string, name: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      log.warn('Take-over step failed', { failoverId, step: name, error });
      throw error;
    }
  };

  const sharedStatus = new SharedStatusRead(vms, SHARED_STATUS_MAX_AGE_MS);
  /**
   * The database side of the steps, in batches (infra/batches.ts): take-overs under way at once, a hundred on
   * a burst of deadlines, read and record each step in one statement for all of them.
   */
  const steps = {
    claimMatchedStandby: new Batches<string, failovers.StandbyClaim>((failoverIds) =>
      failovers.claimMatchedStandbys(db, failoverIds),
    ),
    staleAgentLastSeen: new Batches<string, Date | undefined>(async (serverIds) => {
      const stale = await standbys.staleAgentsLastSeen(db, serverIds);
      return serverIds.map((serverId) => stale.get(serverId));
    }),
    recordPromotion: new Batches<string, void>((failoverIds) =>
      failovers.recordPromotions(db, failoverIds, tuning.serverUpTimeoutMs),
    ),
    fenceTarget: new Batches<string, fencing.FenceTarget>((failoverIds) =>
      fencing.fenceTargets(db, failoverIds),
    ),
    recordFence: new Batches<fencing.FenceOutcome, SlaveFence>((outcomes) =>
      fencing.recordFences(db, outcomes),
    ),
    ipCamerasToMove: new Batches<string, failovers.CamerasToMove>((failoverIds) =>
      failovers.ipCamerasToMoveOf(db, failoverIds),
    ),
    commitCameraMove: new Batches<failovers.CameraMoveToCommit, CameraMove>((moves) =>
      failovers.commitCameraMoves(db, moves),
    ),
  };
  /** Whether the VMS reports a server up: for a take-over decided with others, from reads they share. */
  const upCheck = (together: boolean): ((serverId: string) => Promise<boolean>) =>
    together ? (serverId) => sharedStatus.isServerUp(serverId) : (serverId) => vms.isServerUp(serverId);

  /** Why a standby cannot take over now: the VMS reports it down, or its agent went silent. */
  const unfitness = async (
    serverId: string,
    isServerUp: (serverId: string) => Promise<boolean>,
  ): Promise<string | undefined> => {
    // Both are asked at once: the take-over waits for the slower only.
    const [vmsUnfitness, lastSeen] = await Promise.all([
      isServerUp(serverId).then(
        (up) => (up ? undefined : 'the VMS reports it down'),
        (error: unknown) => {
          if (error instanceof VmsRejected) return `the VMS refused to tell its state: ${error.message}`;
          throw error;
        },
      ),
      steps.staleAgentLastSeen.run(serverId),
    ]);
    return vmsUnfitness ?? (lastSeen && `its agent was last heard at ${lastSeen.toISOString()}`);
  };

  /**
   * Claims the oldest matched standby in service that the VMS reports up (and whose agent, if it has one, is
   * heard): one found unfit is released and out of service, and the next one is tried. `toPromote` is false
   * once the claimed standby's promotion is recorded.
   */
  const claimStandby = async (failoverId: string, together = false): Promise<failovers.StandbyClaim> => {
    const isServerUp = upCheck(together);
    for (;;) {
      const claim = await steps.claimMatchedStandby.run(failoverId);
      if (!claim.claimed || !claim.toPromote) return claim;
      const unfit = await unfitness(claim.serverId, isServerUp);
      if (unfit === undefined) return claim;
      log.warn('Matched standby unfit: taken out of service', {
        failoverId,
        serverId: claim.serverId,
        unfit,
      });
      await standbys.releaseFailedStandby(db, { failoverId, serverId: claim.serverId, reason: unfit });
    }
  };

  const claimMatchedStandby = async (failoverId: string): Promise<ClaimResult> =>
    claimResult(await claimStandby(failoverId));

  /**
   * A VMS call about the claimed standby. The VMS refusing it (not a standby, fenced) fails the standby at
   * once; the VMS not reaching it fails it once that lasts longer than the standby budget. Either way the
   * failover workflow releases it and claims the next. The VMS or its bridge not answering is not the
   * standby's fault: retried without limit.
   */
  const onStandby = async <T>(failoverId: string, serverId: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      const unreachable = error instanceof VmsUnavailable && error.code === 'server-unreachable';
      const refused = error instanceof VmsRejected && STANDBY_REFUSALS.has(error.code);
      if (!unreachable && !refused) throw error;
      const failingForMs = unreachable ? await standbys.standbyUnreachableForMs(db, failoverId) : 0;
      if (unreachable && failingForMs < tuning.standbyBudgetMs) throw error;
      throw new DomainError(
        ErrorType.StandbyFailed,
        unreachable
          ? `the VMS has not reached standby ${serverId} for ${Math.round(failingForMs / 1000)} s`
          : `the VMS refused standby ${serverId}: ${(error as VmsRejected).message}`,
      );
    }
  };

  /** `serverId` is the claimed standby, promoted in place of the Slave. */
  const promoteStandby = async (input: { failoverId: string; slaveId: string; serverId: string }) => {
    await onStandby(input.failoverId, input.serverId, () =>
      vms.promoteToRecorder({
        requestId: input.failoverId,
        serverId: input.serverId,
        replacesServerId: input.slaveId,
      }),
    );
    await steps.recordPromotion.run(input.failoverId);
  };

  /**
   * Asks the VMS to stop the Slave recording: what came of it, or a throw when the VMS itself did not answer.
   * `together`: decided with other take-overs; the Slave's status, asked as the take-over started, may say that
   * the VMS cannot reach it (a crashed server, the usual case when several fail at once). Such a fence would fail
   * the same way, after a call the VMS may spend its own connection timeout on: it is recorded unreachable
   * without the call, and repeated, like any such fence, when the Slave is heard again.
   */
  const fenceInVms = async (
    target: fencing.FenceTarget,
    together: boolean,
  ): Promise<{ fence: SlaveFence; error?: string }> => {
    if (together && (await sharedStatus.reportedUnreachable(target.slaveId))) {
      return { fence: 'unreachable', error: `the VMS reports that it cannot reach ${target.slaveId}` };
    }
    try {
      await vms.fenceRecorder({ requestId: target.failoverId, serverId: target.slaveId });
      return { fence: 'fenced' };
    } catch (error) {
      if (error instanceof VmsRejected) {
        const fence = error.code === 'not-a-recorder' ? 'not-recording' : 'refused';
        return { fence, error: error.message };
      }
      if (error instanceof VmsUnavailable && error.code === 'server-unreachable') {
        return { fence: 'unreachable', error: error.message };
      }
      throw error;
    }
  };

  /**
   * Stops the broken Slave recording and streaming in the VMS before its cameras move, so that no camera is
   * recorded by two servers. Best effort: a Slave the VMS cannot reach is recorded as such (with an alert),
   * the failover goes on, and the fence is repeated when the Slave is heard again. Done once per failover.
   */
  const fenceBrokenSlave = async (failoverId: string, together = false): Promise<SlaveFence> => {
    const target = await steps.fenceTarget.run(failoverId);
    if (fencing.isFenceSettled(target.fence)) return target.fence;
    const fence = await steps.recordFence.run({ ...target, ...(await fenceInVms(target, together)) });
    if (fence === 'fenced') log.info('Broken Slave fenced', { failoverId, slaveId: target.slaveId });
    else log.warn('Broken Slave not fenced', { failoverId, slaveId: target.slaveId, fence });
    return fence;
  };

  /** A broken Slave heard again: a fence the VMS could not deliver before may reach it now. */
  const fenceIfPending = async (serverId: string): Promise<void> => {
    const pending = await fencing.pendingFenceOf(db, serverId);
    if (pending !== undefined) await fenceBrokenSlave(pending.failoverId);
  };

  const rebindIpCameras = async (failoverId: string) => {
    const { failoverServerId, cameraIds } = await steps.ipCamerasToMove.run(failoverId);
    if (cameraIds.length > 0) {
      await onStandby(failoverId, failoverServerId, () =>
        vms.rebindCameras({ requestId: failoverId, cameraIds, toServerId: failoverServerId }),
      );
    }
    return steps.commitCameraMove.run({ failoverId, cameraIds });
  };

  /**
   * The steps after the failover is open, back to back. `stillOwned` is asked before each: a run that lost the
   * right to go on (the detector's session ended) stops there with TakeOverLeft, and the other run goes on
   * alone. `together`: decided with other take-overs, whose claims and fences share what the VMS says of each
   * server (`SharedStatusRead`); the Slave's status is asked as this one starts.
   */
  const takeOverFrom = async (
    plan: FailoverPlan,
    { stillOwned = () => true, together = false }: { stillOwned?: () => boolean; together?: boolean } = {},
  ): Promise<TakeOver> => {
    const { failoverId, slaveId } = plan;
    if (together) sharedStatus.refresh(slaveId);
    const step = <T>(name: string, run: () => Promise<T>): Promise<T> => {
      if (!stillOwned()) throw new TakeOverLeft(failoverId, name);
      return logged(failoverId, name, run);
    };
    const standbyClaim = await step('claimMatchedStandby', () => claimStandby(failoverId, together));
    const claim = claimResult(standbyClaim);
    // The failover workflow says that no standby matched, and waits for one.
    if (!claim.claimed) return { plan, claim, cameras: null };
    const failoverServerId = claim.serverId;
    if (standbyClaim.toPromote) {
      await step('promoteStandby', () => promoteStandby({ failoverId, slaveId, serverId: failoverServerId }));
    }
    await step('fenceBrokenSlave', () => fenceBrokenSlave(failoverId, together));
    const cameras = await step('rebindIpCameras', () => rebindIpCameras(failoverId));
    return { plan, claim, cameras };
  };

  /** Opens the failover, waiting for a take-over of it the detector runs to end before any later step. */
  const beginFailover = async (input: FailoverStart): Promise<FailoverPlan> => {
    const { plan } = await failovers.openFailover(db, input, 'monitor');
    await waitUntilNotTakenOver(db, input.failoverId);
    log.info('Slave moved to Broken recorders', { slaveId: input.slaveId, reason: input.reason });
    return plan;
  };

  /**
   * The monitor's take-over: opens the failover (after the detector's run of it, if one is under way), then
   * answers what an earlier run committed, or runs the steps left.
   */
  const takeOver = async (input: FailoverStart): Promise<TakeOver> => {
    const plan = await logged(input.failoverId, 'beginFailover', () => beginFailover(input));
    const committed = await failovers.committedTakeOver(db, input.failoverId);
    return committed === undefined ? takeOverFrom(plan) : asTakeOver(plan, committed);
  };

  /**
   * What the take-over of an open failover committed, for its failover workflow started on its monitor's behalf
   * (no monitor to tell): that workflow goes on from there. Undefined while recording is not restored: it then
   * takes the steps left itself.
   */
  const committedTakeOver = async (input: FailoverStart): Promise<TakeOver | undefined> => {
    const committed = await failovers.committedTakeOver(db, input.failoverId);
    if (committed === undefined) return undefined;
    // The failover exists: it is joined, for its plan.
    const { plan } = await failovers.openFailover(db, input, 'detector');
    return asTakeOver(plan, committed);
  };

  return {
    takeOver,
    beginFailover,
    claimMatchedStandby,
    promoteStandby,
    fenceBrokenSlave,
    fenceIfPending,
    rebindIpCameras,
    takeOverFrom,
    committedTakeOver,
    /** Opens failovers on the caller's behalf, in one transaction: each says whether this call opened it. */
    openFailovers: (inputs: FailoverStart[], openedBy: FailoverOpener) =>
      failovers.openFailovers(db, inputs, openedBy),
  };
};

export type TakeOverSteps = ReturnType<typeof createTakeOver>;
