/**
 * The activity boundary: store/ and app/ refuse requests with DomainErrors, which Temporal would retry as any
 * other error. Each activity turns them into non-retryable ApplicationFailures of the same type, which
 * workflows see as such and clients report as bad input.
 */
import { ApplicationFailure } from '@temporalio/common';
import { DomainError } from '../domain/errors';

type Activity = (...args: never) => Promise<unknown>;

const toApplicationFailure = (error: DomainError): ApplicationFailure =>
  ApplicationFailure.create({
    type: error.type,
    message: error.message,
    nonRetryable: true,
    ...(error.details !== undefined && { details: [error.details] }),
  });

const failingWithApplicationFailures =
  (activity: Activity): Activity =>
  async (...args) => {
    try {
      return await activity(...args);
    } catch (error) {
      throw error instanceof DomainError ? toApplicationFailure(error) : error;
    }
  };

/** The same activities, under the same names and types, each converting the DomainErrors it throws. */
export const withDomainFailures = <T extends Record<string, Activity>>(activities: T): T => {
  const wrapped: Record<string, Activity> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = failingWithApplicationFailures(activity);
  }
  return wrapped as T;
};
