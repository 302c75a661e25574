/** Ends the workflows a test left running on the shared dev server, so that it stays tidy. */
import type { Client } from '@temporalio/client';

export const terminateRunningWorkflows = async (client: Client, taskQueue: string): Promise<void> => {
  const running = client.workflow.list({
    query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`,
  });
  for await (const execution of running) {
    await client.workflow
      .getHandle(execution.workflowId, execution.runId)
      .terminate('test finished')
      .catch(() => undefined);
  }
};
