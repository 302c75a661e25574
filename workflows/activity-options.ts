/** How workflows call activities: retry policies and timeouts in one place. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { FailoverTuning } from '../domain/contracts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors';

/**
 * Short PostgreSQL transactions and VMS calls on the failover path run as local activities: they execute in
 * the worker inside the workflow task, which saves a server round trip per step while recording is down.
 * Transient faults (PostgreSQL restarting, the VMS not answering) are retried without limit.
 */
const LOCAL_STEP_OPTIONS = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '200ms',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** The same local steps, with the one-line summary an operator reads in the Web UI's event history. */
export const localStep = (summary: string) =>
  proxyLocalActivities<Activities>({ ...LOCAL_STEP_OPTIONS, summary });

/**
 * The monitor's take-over (activities/takeOverRecording) is a regular activity, not a local one: the
 * workflow task that deems the Slave broken completes before anything moves, so the decision is in the
 * history before its effects. A retry after a lost worker starts within the heartbeat timeout.
 */
export const takeOverStep = (summary: string) =>
  proxyActivities<Activities>({
    summary,
    startToCloseTimeout: '2m',
    heartbeatTimeout: '6s',
    retry: LOCAL_STEP_OPTIONS.retry,
  });

export const pluginStep = (tuning: FailoverTuning, summary: string) =>
  proxyActivities<Activities>({
    summary,
    startToCloseTimeout: '5m',
    // Installers run for minutes; the install's progress is heartbeated as the VMS tells it, so a worker lost or
    // a VMS gone silent is seen in seconds, not at the timeout, and the retry follows the same install.
    heartbeatTimeout: '30s',
    retry: {
      initialInterval: tuning.pluginRetryInitialMs,
      backoffCoefficient: 2,
      maximumInterval: tuning.pluginRetryMaxIntervalMs,
      maximumAttempts: tuning.pluginRetryMaxAttempts,
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  });

export const serverUpCheck = (tuning: FailoverTuning, summary: string) =>
  proxyActivities<Activities>({
    summary,
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: tuning.serverUpTimeoutMs,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  });

/** An alert's delivery to a webhook: retried for up to a week, at most every five minutes once it keeps failing. */
export const alertDelivery = (summary: string) =>
  proxyActivities<Activities>({
    summary,
    startToCloseTimeout: '1m',
    scheduleToCloseTimeout: '7d',
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '5m',
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  });
