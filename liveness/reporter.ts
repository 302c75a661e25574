/** How the detector tells a monitor what it heard: a signal, bounded in time so a Temporal outage never hangs it. */
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { failoverWorkflowShown } from '../domain/failover-shown';
import type { LivenessReport } from '../domain/liveness';
import { monitorWorkflowId } from '../domain/names';
import type { AppConfig } from '../infra/config';
import type { FailoverInput } from '../workflows/definitions';
import type { failoverWorkflow } from '../workflows/failover';
import { livenessSignal } from '../workflows/definitions';

export type ReportOutcome = 'delivered' | 'monitor-not-running' | 'unavailable';

/** A failover workflow asked for: started now, started before (by its monitor), or Temporal not answering. */
export type FailoverStartOutcome = 'started' | 'started-before' | 'unavailable';

export interface Reporter {
  report(serverId: string, report: LivenessReport): Promise<ReportOutcome>;
  /**
   * Starts the failover workflow of a failover the detector opened whose Slave has no monitor to tell (it was
   * stopped meanwhile): the failover goes on from the steps done, as its monitor would have had it.
   */
  startFailover(
    failoverId: string,
    input: Omit<FailoverInput, 'site' | 'tuning'>,
  ): Promise<FailoverStartOutcome>;
  /** Whether a workflow of this failover was ever started (running or closed); undefined: Temporal did not say. */
  failoverWorkflowStarted(failoverId: string): Promise<boolean | undefined>;
  /** Whether the server's monitor runs; undefined: Temporal did not say. */
  monitorRunning(serverId: string): Promise<boolean | undefined>;
}

const SIGNAL_DEADLINE_MS = 5_000;

/** Whether the workflow runs (`running`) or exists at all; undefined when Temporal did not answer in time. */
const workflowExists = async (
  client: Client,
  workflowId: string,
  which: 'running' | 'started',
): Promise<boolean | undefined> => {
  try {
    const { status } = await client.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () =>
      client.workflow.getHandle(workflowId).describe(),
    );
    return which === 'started' || status.name === 'RUNNING';
  } catch (error) {
    return error instanceof WorkflowNotFoundError ? false : undefined;
  }
};

export const signalReporter = (
  client: Client,
  { site, temporal: { taskQueue }, failover: tuning }: Pick<AppConfig, 'site' | 'temporal' | 'failover'>,
): Reporter => ({
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

  async startFailover(failoverId, input) {
    try {
      await client.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () =>
        client.workflow.start<typeof failoverWorkflow>('failoverWorkflow', {
          workflowId: failoverId,
          taskQueue,
          // Once per failover: one its monitor started, running or closed, is never started again.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          args: [{ ...input, site, tuning }],
          ...failoverWorkflowShown(input.slaveId, input.reason, input.deadlineMs),
        }),
      );
      return 'started';
    } catch (error) {
      return error instanceof WorkflowExecutionAlreadyStartedError ? 'started-before' : 'unavailable';
    }
  },

  failoverWorkflowStarted: (failoverId) => workflowExists(client, failoverId, 'started'),

  monitorRunning: (serverId) => workflowExists(client, monitorWorkflowId(site, serverId), 'running'),
});
