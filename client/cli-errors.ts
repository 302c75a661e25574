/**
 * How the CLI reports a failure: one line, `vms: error: ...`, and an exit code a script can act on.
 * Bad input (2) is the operator's to fix; an unreachable service (3) may pass by itself.
 */
import { ApplicationFailure } from '@temporalio/common';
import { causeChain, hasCode, rootFailure } from '../app/failures';
import { DomainError, ErrorType } from '../domain/errors';
import { InvalidInput } from '../domain/validation';
import { ConfigError } from '../infra/config';

export const ExitCode = { Ok: 0, Failure: 1, BadInput: 2, Unavailable: 3 } as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
  ) {
    super(message);
  }
}

const GRPC_UNAVAILABLE = 14;
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH']);
const KNOWN_FAILURE_TYPES = new Set<string>(Object.values(ErrorType));

/** "Failed to query Workflow: 9 FAILED_PRECONDITION: ...": a wrapper's message says little without its cause's. */
const causeMessages = (error: unknown): string => {
  const chain = causeChain(error);
  if (chain.length === 0) return String(error);
  return [...new Set(chain.map((link) => (link as Error).message).filter((message) => message !== ''))].join(
    ': ',
  );
};

/** Bounds a call that needs a worker to answer (a query, an update, a workflow result). */
export const workerNotAnswering = (what: string, waitedMs: number): CliError =>
  new CliError(
    `the vms worker did not answer within ${waitedMs / 1000}s (${what}): check that a worker runs for this site and task queue; the request may still take effect once one does`,
    ExitCode.Unavailable,
  );

/** The one line and exit code for any error a command throws. */
export const describeError = (error: unknown): { message: string; exitCode: ExitCodeValue } => {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof ConfigError) {
    return { message: `configuration: ${error.message}`, exitCode: ExitCode.BadInput };
  }
  if (error instanceof InvalidInput) return { message: error.message, exitCode: ExitCode.BadInput };
  // A refusal: thrown here (DomainError) or answered by a workflow or an activity (ApplicationFailure).
  const root = rootFailure(error);
  if (
    root instanceof DomainError ||
    (root instanceof ApplicationFailure && KNOWN_FAILURE_TYPES.has(root.type ?? ''))
  ) {
    return { message: root.message, exitCode: ExitCode.BadInput };
  }
  if (hasCode(error, (code) => code === GRPC_UNAVAILABLE)) {
    return {
      message: `Temporal is unreachable: ${(error as Error).message}`,
      exitCode: ExitCode.Unavailable,
    };
  }
  if (hasCode(error, (code) => typeof code === 'string' && NETWORK_ERROR_CODES.has(code))) {
    return {
      message: `a service is unreachable: ${(error as Error).message}`,
      exitCode: ExitCode.Unavailable,
    };
  }
  return { message: causeMessages(root), exitCode: ExitCode.Failure };
};
