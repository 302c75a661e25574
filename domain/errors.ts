/** Failure types (ApplicationFailure.type) the orchestrator raises, and the error that carries them. Workflow-safe. */
export const ErrorType = {
  UnknownServer: 'UnknownServer',
  MasterCannotBeProtected: 'MasterCannotBeProtected',
  NotASlave: 'NotASlave',
  ServerNotProtected: 'ServerNotProtected',
  ServerNotActive: 'ServerNotActive',
  ServerNotBroken: 'ServerNotBroken',
  FailoverInProgress: 'FailoverInProgress',
  DriveLettersMismatch: 'DriveLettersMismatch',
  InvalidInput: 'InvalidInput',
  MonitorAlreadyRunning: 'MonitorAlreadyRunning',
  MonitorNotRunning: 'MonitorNotRunning',
  InvalidSiteFile: 'InvalidSiteFile',
  /** The detector's decision did not stand when the failover began: the Slave stays in service. */
  FailoverNotConfirmed: 'FailoverNotConfirmed',
  /** The claimed standby failed its promotion or the rebind to it: the failover claims the next one. */
  StandbyFailed: 'StandbyFailed',
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** Bad input never gets better by retrying. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = Object.values(ErrorType);

/**
 * A request the site's rules refuse (an unknown server, a Master to protect, a restore of a server that is not
 * broken). Thrown by store/ and app/; an activity turns it into a non-retryable ApplicationFailure of the same
 * type, and the CLI reports it as bad input.
 */
export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly type: ErrorTypeName,
    message: string,
    /** Data for the caller, e.g. the path of the refused field of a site file. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}
