/**
 * The refusal behind an error, whichever way it came: a DomainError thrown here, or the ApplicationFailure a
 * workflow, an update or an activity failed with (a rejected update, a non-retryable activity error).
 */
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import {
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
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

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_FAILED_PRECONDITION = 9;

/** The error itself and the causes it wraps, outermost first. */
export const causeChain = (error: unknown): unknown[] => {
  const chain: unknown[] = [];
  for (let current = error; current instanceof Error && chain.length < 10; current = current.cause) {
    chain.push(current);
  }
  return chain;
};

export const hasCode = (error: unknown, matches: (code: unknown) => boolean): boolean =>
  causeChain(error).some((link) => matches((link as { code?: unknown }).code));

/** A call given a deadline (a query, an update) that got no answer within it. */
export const isDeadlineExceeded = (error: unknown): boolean =>
  error instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
  hasCode(error, (code) => code === GRPC_DEADLINE_EXCEEDED);

/**
 * An update the server aborted, before the workflow accepted it, because the workflow task it was delivered in
 * failed (FAILED_PRECONDITION, WorkflowNotReady: "unexpected workflow task failure"). The task that ends a
 * monitor (protection turned off) or continues it as new fails so whenever a signal arrives while it runs
 * (UnhandledCommand), and the liveness detector signals monitors at moments of its own. Nothing of the update
 * is in the history, but its local steps may have run: the same request, asked again, is what completes it.
 * The server answers the same while a workflow task keeps failing: asked again, that answer stands.
 */
export const isUpdateAbortedWithItsTask = (error: unknown): boolean =>
  hasCode(error, (code) => code === GRPC_FAILED_PRECONDITION);
