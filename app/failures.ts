/**
 * The refusal behind an error, whichever way it came: a DomainError thrown here, or the ApplicationFailure a
 * workflow, an update or an activity failed with (a rejected update, a non-retryable activity error).
 */
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { DomainError } from '../domain/errors';

/**
 * The typed failure behind a workflow or update failure, so that callers see "unknown server x" rather than
 * "Workflow execution failed".
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

/** The ErrorType of a refusal, from a DomainError or an ApplicationFailure alike. */
export const failureType = (error: unknown): string | undefined => {
  const root = rootFailure(error);
  if (root instanceof DomainError) return root.type;
  return root instanceof ApplicationFailure ? (root.type ?? undefined) : undefined;
};
