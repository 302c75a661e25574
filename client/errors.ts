import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';

/**
 * The typed failure behind a workflow or update failure (a rejected update, a non-retryable activity
 * error), so that callers see "UnknownServer: unknown server x" rather than "Workflow execution failed".
 */
export const rootFailure = (error: unknown): unknown => {
  let current: unknown = error;
  if (current instanceof WorkflowFailedError || current instanceof WorkflowUpdateFailedError)
    current = current.cause;
  while (current instanceof TemporalFailure && !(current instanceof ApplicationFailure) && current.cause) {
    current = current.cause;
  }
  return current ?? error;
};

export const failureType = (error: unknown): string | undefined => {
  const root = rootFailure(error);
  return root instanceof ApplicationFailure ? (root.type ?? undefined) : undefined;
};
