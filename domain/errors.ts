/** Failure types (ApplicationFailure.type) the orchestrator raises. Workflow-safe constants. */
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
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** Bad input never gets better by retrying. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = Object.values(ErrorType);

/** A request that cannot be acted on, typed so that every runtime reports it alike. Workflow-safe. */
export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly type: ErrorTypeName,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}
