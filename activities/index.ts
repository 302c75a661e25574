/**
 * Activities: every step that touches PostgreSQL or the VMS. Each one is idempotent (it may run twice after
 * a crash) and each state change is one PostgreSQL transaction, in store/.
 */
import { Context, log } from '@temporalio/activity';
import type { Pool } from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import type {
  CameraMove,
  ClaimResult,
  FailoverPlan,
  FailoverStart,
  FailoverTuning,
  HandedOverPlugin,
  MonitoredSlave,
  PluginReinstallEnd,
  StandbyRestore,
  TakeOver,
} from '../domain/contracts';
import type { SilenceVerdict } from '../domain/liveness';
import { judgeSilence } from '../domain/liveness';
import { checkMonitorable, monitoredSlave } from '../domain/rules';
import type { DiskHealth, FailoverSettings } from '../domain/site';
import { appendEvent } from '../store/events';
import * as failovers from '../store/failovers';
import * as monitoring from '../store/monitoring';
import { getServer } from '../store/servers';
import { saveDiskHealth, saveMaintenance, saveSettings } from '../store/settings';
import * as fencing from '../store/fencing';
import * as standbys from '../store/standbys';
import type { SlaveFence } from '../store/fencing';
import type { VmsControlPlane } from '../vms/control-plane';
import { VmsRejected, VmsUnavailable } from '../vms/control-plane';
import { withDomainFailures } from './domain-failures';
import {
  ALERT_ID_HEADER,
  ALERT_SIGNATURE_HEADER,
  ALERT_TIMESTAMP_HEADER,
  alertSignature,
  postToWebhook,
  webhookName,
} from '../infra/signed-webhook';
import { DomainError, ErrorType } from '../domain/errors';
import type { AlertsConfig } from '../infra/config';
import { deliveryOf, findAlert, recordDeliveryAttempt } from '../store/alert-deliveries';

/** Starts the monitor workflow of a Slave (the promoted server, after a failover). */
export interface MonitorStarter {
  ensureMonitoring(serverId: string): Promise<{ started: boolean }>;
}

export interface ActivityDeps {
  db: Pool;
  vms: VmsControlPlane;
  monitors: MonitorStarter;
  tuning: Pick<FailoverTuning, 'serverUpTimeoutMs' | 'standbyBudgetMs'>;
  /** The site, named in every alert, and where alerts go. */
  site: string;
  alerts: AlertsConfig;
}

/** What the VMS answers about a standby that cannot take a Slave's place (docs/vms-bridge.md). */
const STANDBY_REFUSALS = new Set(['not-a-standby', 'not-a-recorder', 'server-fenced']);
/** A fast take-over never heartbeats; a slow one (PostgreSQL or the VMS slow to answer) shows it is alive. */
const TAKE_OVER_HEARTBEAT_MS = 2_000;

/**
 * The request an activity carries out, named by its workflow run and its place in it: the same on every
 * retry of the activity and when its workflow replays it (a local activity whose task was lost), so what it
 * records is recorded once.
 */
const activityRequestId = (): string => {
  const { workflowExecution, activityId } = Context.current().info;
  // Every activity here is a workflow's; one started on its own would be a request of its own.
  if (workflowExecution === undefined) return activityId;
  return `${workflowExecution.workflowId}/${workflowExecution.runId}/${activityId}`;
};

/** A reinstall a later failover took over (its promoted server broke in turn): this failover is done with it. */
const handedOver = (
  input: { failoverId: string; serverId: string; plugin: string },
  end: { status: 'handed-over'; toFailoverId: string },
): PluginReinstallEnd => {
  log.info('Plugin reinstall handed over: not installed by this failover', { ...input, ...end });
  return end;
};

export const createActivities = ({ db, vms, monitors, tuning, site, alerts }: ActivityDeps) => {
  const beginFailover = async (input: FailoverStart): Promise<FailoverPlan> => {
    const plan = await failovers.beginFailover(db, input);
    log.info('Slave moved to Broken recorders', { slaveId: input.slaveId, reason: input.reason });
    return plan;
  };

  /** Why a standby cannot take over now: the VMS reports it down, or its agent went silent. */
  const unfitness = async (serverId: string): Promise<string | undefined> => {
    // Both are asked at once: the take-over waits for the slower only.
    const [vmsUnfitness, lastSeen] = await Promise.all([
      vms.isServerUp(serverId).then(
        (up) => (up ? undefined : 'the VMS reports it down'),
        (error: unknown) => {
          if (error instanceof VmsRejected) return `the VMS refused to tell its state: ${error.message}`;
          throw error;
        },
      ),
      standbys.staleAgentLastSeen(db, serverId),
    ]);
    return vmsUnfitness ?? (lastSeen && `its agent was last heard at ${lastSeen.toISOString()}`);
  };

  /**
   * Claims the oldest matched standby in service that the VMS reports up (and whose agent, if it has one, is
   * heard): one found unfit is released and out of service, and the next one is tried.
   */
  const claimMatchedStandby = async (failoverId: string): Promise<ClaimResult> => {
    for (;;) {
      const { toPromote, ...claim } = await failovers.claimMatchedStandby(db, failoverId);
      if (!claim.claimed || !toPromote) return claim;
      const unfit = await unfitness(claim.serverId);
      if (unfit === undefined) return claim;
      log.warn('Matched standby unfit: taken out of service', {
        failoverId,
        serverId: claim.serverId,
        unfit,
      });
      await standbys.releaseFailedStandby(db, { failoverId, serverId: claim.serverId, reason: unfit });
    }
  };

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
  const promoteStandby = async (input: {
    failoverId: string;
    slaveId: string;
    serverId: string;
  }): Promise<void> => {
    await onStandby(input.failoverId, input.serverId, () =>
      vms.promoteToRecorder({
        requestId: input.failoverId,
        serverId: input.serverId,
        replacesServerId: input.slaveId,
      }),
    );
    await failovers.recordPromotion(db, input.failoverId, tuning.serverUpTimeoutMs);
  };

  /** Asks the VMS to stop the Slave recording: what came of it, or a throw when the VMS itself did not answer. */
  const fenceInVms = async (target: fencing.FenceTarget): Promise<{ fence: SlaveFence; error?: string }> => {
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
  const fenceBrokenSlave = async (failoverId: string): Promise<SlaveFence> => {
    const target = await fencing.fenceTarget(db, failoverId);
    if (fencing.isFenceSettled(target.fence)) return target.fence;
    const fence = await fencing.recordFence(db, { ...target, ...(await fenceInVms(target)) });
    if (fence === 'fenced') log.info('Broken Slave fenced', { failoverId, slaveId: target.slaveId });
    else log.warn('Broken Slave not fenced', { failoverId, slaveId: target.slaveId, fence });
    return fence;
  };

  /** A broken Slave heard again: a fence the VMS could not deliver before may reach it now. */
  const fenceIfPending = async (serverId: string): Promise<void> => {
    const pending = await fencing.pendingFenceOf(db, serverId);
    if (pending !== undefined) await fenceBrokenSlave(pending.failoverId);
  };

  const rebindIpCameras = async (failoverId: string): Promise<CameraMove> => {
    const { failoverServerId, cameraIds } = await failovers.ipCamerasToMove(db, failoverId);
    if (cameraIds.length > 0) {
      await onStandby(failoverId, failoverServerId, () =>
        vms.rebindCameras({ requestId: failoverId, cameraIds, toServerId: failoverServerId }),
      );
    }
    return failovers.commitCameraMove(db, failoverId, cameraIds);
  };

  return withDomainFailures({
    /** Monitors started before the liveness layer read their Slave with this. */
    async loadMonitoredSlave(serverId: string): Promise<MonitoredSlave> {
      return monitoredSlave(checkMonitorable(await getServer(db, serverId)));
    },

    /**
     * Enters a Slave in the liveness detector's roster as its monitor starts: checked to be monitorable first
     * (a monitor of a Slave already failed over, continued from an earlier one, is entered as it is).
     */
    async startMonitoring(input: { serverId: string; failedOver: boolean }): Promise<MonitoredSlave | null> {
      const slave = input.failedOver
        ? null
        : monitoredSlave(checkMonitorable(await getServer(db, input.serverId)));
      await monitoring.startMonitoring(db, input.serverId);
      return slave;
    },

    async endMonitoring(serverId: string): Promise<void> {
      await monitoring.stopMonitoring(db, serverId);
    },

    /** The monitor's backstop: is the Slave silent, by what PostgreSQL holds now? */
    async checkSilence(serverId: string): Promise<SilenceVerdict> {
      const record = await monitoring.livenessRecord(db, serverId);
      if (record === undefined || record.monitoredSinceMs === null || record.silenceFromMs === null) {
        return { verdict: 'unobserved' };
      }
      return judgeSilence(
        {
          term: record.term,
          vmsOnly: record.livenessSource === 'vms',
          lease: record.lease,
          monitoredSinceMs: record.monitoredSinceMs,
          silenceFromMs: record.silenceFromMs,
          timeoutMs: record.timeoutMs,
          maintenanceUntilMs: record.maintenanceUntilMs,
        },
        record.nowMs,
      );
    },

    async recordDiskHealth(input: { serverId: string; disks: DiskHealth[] }): Promise<void> {
      await saveDiskHealth(db, input.serverId, input.disks, activityRequestId());
    },

    async recordLateHeartbeat(input: {
      serverId: string;
      failoverWorkflowId: string;
      sentAtMs: number;
    }): Promise<void> {
      log.warn('Late heartbeat from a failed-over Slave ignored', { ...input });
      await appendEvent(db, {
        serverId: input.serverId,
        failoverId: input.failoverWorkflowId,
        event: 'late-heartbeat',
        details: {
          sentAt: new Date(input.sentAtMs).toISOString(),
          action: 'ignored: the promoted server keeps recording',
        },
      });
      await fenceIfPending(input.serverId);
    },

    fenceIfPending,

    async saveSettings(input: { serverId: string; settings: FailoverSettings }): Promise<void> {
      await saveSettings(db, input.serverId, input.settings, activityRequestId(), { whileActive: true });
    },

    async saveMaintenance(input: { serverId: string; untilMs: number | null }): Promise<void> {
      await saveMaintenance(db, input.serverId, input.untilMs, activityRequestId(), { whileActive: true });
    },

    beginFailover,
    claimMatchedStandby,
    promoteStandby,
    fenceBrokenSlave,
    rebindIpCameras,

    /** A standby that failed the failover: released, out of service, with an alert; the failover claims again. */
    async releaseFailedStandby(input: {
      failoverId: string;
      serverId: string;
      reason: string;
    }): Promise<void> {
      log.warn('Standby failed the failover: released and out of service', { ...input });
      await standbys.releaseFailedStandby(db, input);
    },

    /**
     * The monitor's one step from deadline to recording restored: the failover steps back to back in one
     * activity, scheduled in the workflow task that deems the Slave broken (and handed to this worker with it,
     * when the server dispatches activities eagerly). Each step is idempotent, so a retry goes on from where
     * the last attempt stopped. The failover workflow continues from its result.
     */
    async takeOverRecording(input: FailoverStart): Promise<TakeOver> {
      const { failoverId, slaveId } = input;
      // The activity fails as a whole; the operator needs to know which step failed, and why.
      const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
        try {
          return await run();
        } catch (error) {
          log.warn('Take-over step failed', { failoverId, step: name, error });
          throw error;
        }
      };
      const beat = setInterval(() => Context.current().heartbeat(), TAKE_OVER_HEARTBEAT_MS);
      try {
        const plan = await step('beginFailover', () => beginFailover(input));
        const claim = await step('claimMatchedStandby', () => claimMatchedStandby(failoverId));
        // The failover workflow says that no standby matched, and waits for one.
        if (!claim.claimed) return { plan, claim, cameras: null };
        const failoverServerId = claim.serverId;
        await step('promoteStandby', () =>
          promoteStandby({ failoverId, slaveId, serverId: failoverServerId }),
        );
        await step('fenceBrokenSlave', () => fenceBrokenSlave(failoverId));
        const cameras = await step('rebindIpCameras', () => rebindIpCameras(failoverId));
        return { plan, claim, cameras };
      } finally {
        clearInterval(beat);
      }
    },

    async ensureMonitoring(serverId: string): Promise<{ started: boolean }> {
      return monitors.ensureMonitoring(serverId);
    },

    /** Up: a promoted server never heard yet is deemed silent from now on, not from the up timeout. */
    async waitUntilServerUp(serverId: string): Promise<void> {
      if (!(await vms.isServerUp(serverId))) {
        throw ApplicationFailure.retryable(`server ${serverId} is not up yet`, 'ServerNotUp');
      }
      await monitoring.recordServerUp(db, serverId);
    },

    /**
     * Installs the plugin on the promoted server, retried by its activity options, and heartbeats the
     * install's progress each time the VMS tells it: a heartbeat says the install is followed, not merely that
     * this worker lives. A retry (the worker lost, the VMS silent for the heartbeat timeout) starts with the
     * same request id, and the VMS answers the install still running, which the retry follows instead of
     * starting a second (docs/vms-bridge.md). A reinstall handed over to a later failover (the promoted server
     * broke in turn) ends, typed, whatever the install did: its server is broken and the later failover
     * installs the plugin on its own promoted server.
     */
    async reinstallPlugin(input: {
      failoverId: string;
      serverId: string;
      plugin: string;
    }): Promise<PluginReinstallEnd> {
      const context = Context.current();
      const { attempt } = context.info;
      const reinstall = await failovers.findPluginReinstall(db, input.failoverId, input.plugin);
      if (reinstall?.status === 'installed') return { status: 'installed' };
      if (reinstall?.status === 'handed-over') return handedOver(input, reinstall);
      const { serverId, plugin } = input;
      const onProgress = (progress: number): void => {
        // An attempt the server gave up on stops following: its retry follows the same install.
        context.cancellationSignal.throwIfAborted();
        context.heartbeat({ serverId, plugin, progress });
      };
      try {
        await vms.installPlugin({ requestId: input.failoverId, serverId, plugin }, onProgress);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await failovers.recordPluginAttemptFailed(db, { ...input, attempt, error: message });
        // Taken over while this attempt ran: no retry onto the broken server.
        const now = await failovers.findPluginReinstall(db, input.failoverId, input.plugin);
        if (now?.status === 'handed-over') return handedOver(input, now);
        throw error;
      }
      const end = await failovers.recordPluginInstalled(db, { ...input, attempt });
      return end.status === 'handed-over' ? handedOver(input, end) : end;
    },

    async markPluginNeedsManualAction(input: {
      failoverId: string;
      plugin: string;
      error: string;
    }): Promise<void> {
      log.error('Plugin reinstall failed for good: needs manual action', { ...input });
      await failovers.recordPluginNeedsManualAction(db, input);
    },

    async completeFailover(failoverId: string): Promise<HandedOverPlugin[]> {
      return failovers.completeFailover(db, failoverId);
    },

    /**
     * Delivers an alert to one webhook, signed; once taken, never again (a retry after a lost answer may still
     * reach it twice: receivers drop a second by the alert id).
     */
    async deliverAlert(input: { alertId: string; webhook: string }): Promise<void> {
      const name = input.webhook;
      const url = alerts.webhooks.find((webhook) => webhookName(webhook) === name);
      if (url === undefined) {
        throw new DomainError(ErrorType.InvalidInput, `no webhook ${name} in ALERT_WEBHOOK_URLS any more`);
      }
      if ((await deliveryOf(db, input.alertId, name))?.deliveredAt) return;
      const alert = await findAlert(db, input.alertId);
      if (alert === undefined)
        throw new DomainError(ErrorType.InvalidInput, `unknown alert "${input.alertId}"`);
      if (alerts.secret === undefined)
        throw new DomainError(ErrorType.InvalidInput, 'no ALERT_WEBHOOK_SECRET to sign alerts with');
      const body = JSON.stringify({
        site,
        id: alert.id,
        kind: alert.kind,
        serverId: alert.serverId,
        message: alert.message,
        details: alert.details,
        raisedAt: alert.raisedAt.toISOString(),
      });
      const timestamp = String(Math.floor(Date.now() / 1_000));
      try {
        await postToWebhook(
          url,
          body,
          {
            [ALERT_ID_HEADER]: alert.id,
            [ALERT_TIMESTAMP_HEADER]: timestamp,
            [ALERT_SIGNATURE_HEADER]: alertSignature(alerts.secret, timestamp, body),
          },
          alerts.timeoutMs,
        );
      } catch (error) {
        const message = (error as Error).message;
        await recordDeliveryAttempt(db, { alertId: alert.id, webhook: name, error: message });
        throw ApplicationFailure.retryable(
          `alert ${alert.id} not delivered to ${name}: ${message}`,
          'AlertNotDelivered',
        );
      }
      await recordDeliveryAttempt(db, { alertId: alert.id, webhook: name, error: null });
      log.info('Alert delivered', { alertId: alert.id, webhook: name });
    },

    async restoreAsStandby(input: { serverId: string; driveLetters?: string[] }): Promise<StandbyRestore> {
      return failovers.restoreAsStandby(db, input);
    },

    /**
     * Makes a repaired server a standby in the VMS before it is restored in PostgreSQL (and may be claimed):
     * a fenced or still-recording broken Slave records nothing from then on. Keyed by its failover. A server
     * the VMS cannot reach is not restored (it may still record); one the VMS does not hold as a recorder has
     * nothing to demote.
     */
    async demoteToStandby(serverId: string, driveLetters?: string[]): Promise<void> {
      const failoverId = await failovers.failoverToDemote(db, serverId, driveLetters);
      let outcome: string;
      try {
        outcome = await vms.demoteToStandby({ requestId: failoverId, serverId });
      } catch (error) {
        if (error instanceof VmsUnavailable && error.code === 'server-unreachable') {
          throw new DomainError(
            ErrorType.InvalidInput,
            `the VMS cannot reach ${serverId}: restore it once it answers (${error.message})`,
          );
        }
        if (!(error instanceof VmsRejected)) throw error;
        log.warn('Restored server not demoted: the VMS refused', { serverId, code: error.code });
        outcome = `refused: ${error.code}`;
      }
      await appendEvent(db, {
        serverId,
        failoverId,
        event: 'demoted-to-standby',
        details: { outcome },
      });
    },
  });
};

export type Activities = ReturnType<typeof createActivities>;
