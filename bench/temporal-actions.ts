/**
 * What the monitors cost Temporal, read from their histories: the billable actions (signals, timers,
 * activities, child workflows, markers, search attribute updates) recorded in a window, and when the
 * detector's reports reached each monitor. Heartbeats go to the gateway, not to Temporal: a steady window
 * should show the detector's checkpoints and the monitors' backstop timers, and nothing per heartbeat.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { LivenessReport } from '../domain/liveness';
import { mapLimited } from '../infra/limit';

const EventType = temporal.api.enums.v1.EventType;

/** The history events Temporal Cloud bills as actions. */
const ACTION_EVENTS = new Map<number, string>([
  [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, 'signal'],
  [EventType.EVENT_TYPE_TIMER_STARTED, 'timer'],
  [EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 'activity'],
  [EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, 'child workflow'],
  [EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, 'signal sent'],
  [EventType.EVENT_TYPE_MARKER_RECORDED, 'local activity'],
  [EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, 'search attributes'],
  [EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED, 'memo'],
  [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, 'continue-as-new'],
  [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 'update'],
]);

export interface ReportSeen {
  report: LivenessReport;
  /** When Temporal recorded the signal (its clock; the same host as the bench and the worker). */
  recordedAtMs: number;
}

export interface MonitorHistory {
  workflowId: string;
  /** Billable events of the current run, with their time. */
  actions: { kind: string; atMs: number }[];
  reports: ReportSeen[];
  /** Signals other than the detector's reports (an old 'heartbeat' signal, say). */
  otherSignals: string[];
}

const toReport = (payloads: unknown[] | null | undefined): LivenessReport | undefined => {
  const first = payloads?.[0];
  if (first === undefined) return undefined;
  return defaultPayloadConverter.fromPayload<LivenessReport>(
    first as Parameters<typeof defaultPayloadConverter.fromPayload>[0],
  );
};

/** The current run's history of each workflow; a workflow that does not exist is left out. */
export const monitorHistories = async (
  client: Client,
  workflowIds: string[],
  concurrency: number,
): Promise<MonitorHistory[]> => {
  const histories = await mapLimited(workflowIds, concurrency, async (workflowId) => {
    let events;
    try {
      events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return [];
      throw error;
    }
    const history: MonitorHistory = { workflowId, actions: [], reports: [], otherSignals: [] };
    for (const event of events) {
      const atMs = tsToMs(event.eventTime);
      const kind = ACTION_EVENTS.get(event.eventType ?? 0);
      if (kind !== undefined) history.actions.push({ kind, atMs });
      const signal = event.workflowExecutionSignaledEventAttributes;
      if (signal === null || signal === undefined) continue;
      if (signal.signalName !== 'liveness') {
        history.otherSignals.push(signal.signalName ?? '');
        continue;
      }
      const report = toReport(signal.input?.payloads);
      if (report !== undefined) history.reports.push({ report, recordedAtMs: atMs });
    }
    return [history];
  });
  return histories.flat();
};

/** Billable events recorded from `fromMs` to `toMs`, by kind. */
export const actionsBetween = (
  histories: MonitorHistory[],
  fromMs: number,
  toMs: number,
): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const history of histories) {
    for (const action of history.actions) {
      if (action.atMs >= fromMs && action.atMs < toMs) counts[action.kind] = (counts[action.kind] ?? 0) + 1;
    }
  }
  return counts;
};
