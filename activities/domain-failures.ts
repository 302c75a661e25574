/**
 * The activity boundary: store/ and app/ refuse requests with DomainErrors, and the VMS refuses calls with
 * VmsRejected (a 4xx of the bridge), which Temporal would retry as any other error. Each activity turns them
 * into non-retryable ApplicationFailures (of the DomainError's type, or `VmsRejected` with the VMS's code), which
 * workflows see as such and clients report as bad input: neither can succeed by being asked again.
 */
import { ApplicationFailure } from '@temporalio/common';
import { DomainError } from '../domain/errors';
import { VmsRejected } from '../vms/control-plane';

type Activity = (...args: never) => Promise<unknown>;

const toApplicationFailure = (error: DomainError | VmsRejected): ApplicationFailure =>
  error instanceof VmsRejected
    ? ApplicationFailure.create({
        type: error.name,
        message: error.message,
        nonRetryable: true,
        details: [{ code: error.code }],
      })
    : ApplicationFailure.create({
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
      throw error instanceof DomainError || error instanceof VmsRejected
        ? toApplicationFailure(error)
        : error;
    }
  };

/** The same activities, under the same names and types, each converting the refusals it throws. */
export const withDomainFailures = <T extends Record<string, Activity>>(activities: T): T => {
  const wrapped: Record<string, Activity> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = failingWithApplicationFailures(activity);
  }
  return wrapped as T;
};
