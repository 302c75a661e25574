import { ApplicationFailure } from '@temporalio/common';
import type { ErrorTypeName } from '../domain/errors';

/** A clear, typed, non-retryable failure for input that cannot be acted on. */
export const rejected = (type: ErrorTypeName, message: string, details?: unknown): ApplicationFailure =>
  ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    ...(details !== undefined && { details: [details] }),
  });
