/** How the detector tells a monitor what it heard: a signal, bounded in time so a Temporal outage never hangs it. */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { LivenessReport } from '../domain/liveness';
import { monitorWorkflowId } from '../domain/names';
import { livenessSignal } from '../workflows/definitions';

export type ReportOutcome = 'delivered' | 'monitor-not-running' | 'unavailable';

export interface Reporter {
  report(serverId: string, report: LivenessReport): Promise<ReportOutcome>;
}

const SIGNAL_DEADLINE_MS = 5_000;

export const signalReporter = (client: Client, site: string): Reporter => ({
  async report(serverId, report) {
    try {
      await client.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () =>
        client.workflow.getHandle(monitorWorkflowId(site, serverId)).signal(livenessSignal, report),
      );
      return 'delivered';
    } catch (error) {
      return error instanceof WorkflowNotFoundError ? 'monitor-not-running' : 'unavailable';
    }
  },
});
