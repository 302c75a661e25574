/**
 * Activities: every step that touches PostgreSQL or the VMS. Each one is idempotent (it may run twice after
 * a crash) and each state change is one PostgreSQL transaction, in store/.
 */
import { Context, log } from '@temporalio/activity';
import type { Pool } from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import type {
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
import * as standbys from '../store/standbys';
import type { VmsControlPlane } from '../vms/control-plane';
import { VmsRejected, VmsUnavailable } from '../vms/control-plane';
import type { StepLog, TakeOversHere } from '../failover/take-over';
import { createTakeOver } from '../failover/take-over';
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
import {
  beginDeliveryAttempt,
  deliveryOf,
  findAlert,
  recordDeliveryOutcome,
} from '../store/alert-deliveries';

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
  /** The take-overs the detector of this process runs (the worker service runs both). */
  takeOversHere?: TakeOversHere;
}

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

/** The activity's logger, in the shape the failover steps log with. */
const activityLog: StepLog = {
  info: (message, fields) => {
    log.info(message, fields);
  },
  warn: (message, fields) => {
    log.warn(message, fields);
  },
};

export const createActivities = ({
  db,
  vms,
  monitors,
  tuning,
  site,
  alerts,
  takeOversHere,
}: ActivityDeps) => {
  const {
    beginFailover,
    claimMatchedStandby,
    promoteStandby,
    fenceBrokenSlave,
    fenceIfPending,
    rebindIpCameras,
    takeOver,
  } = createTakeOver({ db, vms, tuning, log: activityLog });

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
    // Alone: a workflow's fence asks the VMS whatever it reported of the Slave before.
    fenceBrokenSlave: (failoverId: string) => fenceBrokenSlave(failoverId),
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
      const beat = setInterval(() => Context.current().heartbeat(), TAKE_OVER_HEARTBEAT_MS);
      try {
        // The detector of this process runs it: its result, once done, is this one's.
        const doneHere = await takeOversHere?.runningFor(input.failoverId);
        return doneHere ?? (await takeOver(input));
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
      await beginDeliveryAttempt(db, { alertId: alert.id, webhook: name });
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
        await recordDeliveryOutcome(db, { alertId: alert.id, webhook: name, error: message });
        throw ApplicationFailure.retryable(
          `alert ${alert.id} not delivered to ${name}: ${message}`,
          'AlertNotDelivered',
        );
      }
      await recordDeliveryOutcome(db, { alertId: alert.id, webhook: name, error: null });
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
