/**
 * The VMS bridge protocol, version 1 (docs/vms-bridge.openapi.yaml): paths, error codes and their HTTP
 * statuses, and the shapes of requests and answers, checked the same way by the simulator (requests), the
 * HTTP client and the conformance check (answers).
 */
import type { DiskHealth } from '../domain/site';
import { InvalidInput, checkServerId } from '../domain/validation';
import type { VmsOutcome, VmsServerRole, VmsServerStatus } from './control-plane';

const server = (serverId: string): string => `/v1/servers/${encodeURIComponent(serverId)}`;

export const BridgePaths = {
  health: '/v1/health',
  status: '/v1/servers/status',
  /** The status of the servers named; their ids never hold a comma (domain/validation.ts). */
  statusOfServers: (serverIds: readonly string[]) =>
    `/v1/servers/status?ids=${serverIds.map(encodeURIComponent).join(',')}`,
  serverStatus: (serverId: string) => `${server(serverId)}/status`,
  promote: (serverId: string) => `${server(serverId)}/promote`,
  fence: (serverId: string) => `${server(serverId)}/fence`,
  demote: (serverId: string) => `${server(serverId)}/demote`,
  rebindCameras: (serverId: string) => `${server(serverId)}/rebind-cameras`,
  pluginInstalls: (serverId: string) => `${server(serverId)}/plugin-installs`,
  operation: (operationId: string) => `/v1/operations/${encodeURIComponent(operationId)}`,
  /** Several mutating calls in one request. */
  calls: '/v1/calls',
} as const;

/** Every error code of the protocol and its HTTP status: 4xx never succeeds as it stands, 5xx is retried. */
export const ERROR_STATUS = {
  'malformed-request': 400,
  unauthorized: 401,
  'not-found': 404,
  'unknown-server': 404,
  'unknown-camera': 404,
  'unknown-operation': 404,
  'method-not-allowed': 405,
  'not-a-standby': 409,
  'not-a-recorder': 409,
  'server-fenced': 409,
  'camera-not-ip': 409,
  'request-id-conflict': 409,
  internal: 500,
  'server-unreachable': 503,
  unavailable: 503,
} as const;

export type BridgeErrorCode = keyof typeof ERROR_STATUS;

/** The HTTP status of an error code; a code the protocol does not define is an internal error. */
export const statusOf = (code: string): number =>
  (ERROR_STATUS as Record<string, number | undefined>)[code] ?? ERROR_STATUS.internal;

export interface ErrorBody {
  error: { code: string; message: string };
}

export type OperationStatus = 'running' | 'succeeded' | 'failed';

/** A plugin install as the bridge reports it (start and poll answer the same shape). */
export interface PluginInstallOperation {
  operationId: string;
  requestId: string;
  serverId: string;
  plugin: string;
  status: OperationStatus;
  /** 0 to 100. */
  progress: number;
  /** Set once succeeded. */
  outcome: VmsOutcome | null;
  /** Why it failed, once failed. */
  message: string | null;
}

export interface ServerStatusJson {
  serverId: string;
  role: VmsServerRole;
  reachable: boolean;
  recording: boolean | null;
  disks: DiskHealth[];
  observedAt: string;
}

/** A request or answer that does not have the protocol's shape; `problem` names the field. */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
}

/** The most servers one status call names: a longer list is split (it stays well within a URL's length). */
export const MAX_STATUS_IDS = 100;
/** The most calls one `POST /v1/calls` carries: a longer list is split. */
export const MAX_CALLS = 100;
/**
 * The calls `POST /v1/calls` may carry: the idempotent mutating ones, which may be run in any order or side by
 * side (each has its own request id). Plugin installs (operations) and reads are sent alone.
 */
const BATCHABLE_PATH = /^\/v1\/servers\/[^/]+\/(?:promote|fence|demote|rebind-cameras)$/;
const MAX_ID_LENGTH = 200;
const MAX_CAMERAS_PER_CALL = 10_000;
const ROLES: readonly VmsServerRole[] = ['master', 'recorder', 'standby'];
const OUTCOMES: readonly VmsOutcome[] = ['applied', 'already-applied'];
const OPERATION_STATUSES: readonly OperationStatus[] = ['running', 'succeeded', 'failed'];

const record = (value: unknown, what: string): Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ShapeError(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
};

/** A non-empty identifier of at most 200 characters, without control characters. */
export const identifier = (value: unknown, field: string): string => {
  if (
    typeof value !== 'string' ||
    value.trim() === '' ||
    value.length > MAX_ID_LENGTH ||
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw new ShapeError(`${field} must be a non-empty text of at most ${MAX_ID_LENGTH} characters`);
  }
  return value;
};

const boolean = (value: unknown, field: string): boolean => {
  if (typeof value !== 'boolean') throw new ShapeError(`${field} must be true or false`);
  return value;
};

const oneOf = <T extends string>(value: unknown, allowed: readonly T[], field: string): T => {
  if (!allowed.includes(value as T)) throw new ShapeError(`${field} must be one of ${allowed.join(', ')}`);
  return value as T;
};

// Requests, as the bridge reads them.

export const parsePromoteRequest = (body: unknown): { requestId: string; replacesServerId: string } => {
  const fields = record(body, 'the request body');
  return {
    requestId: identifier(fields.requestId, 'requestId'),
    replacesServerId: identifier(fields.replacesServerId, 'replacesServerId'),
  };
};

/** Fence and demote carry only their request id. */
export const parseRequestId = (body: unknown): { requestId: string } => ({
  requestId: identifier(record(body, 'the request body').requestId, 'requestId'),
});

export const parseRebindRequest = (body: unknown): { requestId: string; cameraIds: string[] } => {
  const fields = record(body, 'the request body');
  const { cameraIds } = fields;
  if (!Array.isArray(cameraIds) || cameraIds.length === 0 || cameraIds.length > MAX_CAMERAS_PER_CALL) {
    throw new ShapeError(`cameraIds must be a list of 1 to ${MAX_CAMERAS_PER_CALL} camera ids`);
  }
  return {
    requestId: identifier(fields.requestId, 'requestId'),
    cameraIds: cameraIds.map((cameraId, index) => identifier(cameraId, `cameraIds[${index}]`)),
  };
};

/** One call carried by `POST /v1/calls`, as it would be sent alone. */
export interface BatchedCall {
  method: 'POST';
  path: string;
  body: unknown;
}

/** The answer to one call carried by `POST /v1/calls`: what that call alone would have answered. */
export interface CallAnswer {
  status: number;
  body: unknown;
}

const parseBatchedCall = (value: unknown, field: string): BatchedCall => {
  const call = record(value, field);
  if (call.method !== 'POST') throw new ShapeError(`${field}.method must be POST`);
  if (typeof call.path !== 'string' || !BATCHABLE_PATH.test(call.path)) {
    throw new ShapeError(`${field}.path must be the path of a promote, fence, demote or rebind-cameras call`);
  }
  return { method: 'POST', path: call.path, body: call.body };
};

/**
 * The calls of `POST /v1/calls`, in order. A body of another shape throws (the whole request is malformed); a
 * call of another shape is its own ShapeError, answered as that call's own `400 malformed-request`.
 */
export const parseCallsRequest = (body: unknown): (BatchedCall | ShapeError)[] => {
  const { calls } = record(body, 'the request body');
  if (!Array.isArray(calls) || calls.length === 0 || calls.length > MAX_CALLS) {
    throw new ShapeError(`calls must be a list of 1 to ${MAX_CALLS} calls`);
  }
  return calls.map((call, index) => {
    try {
      return parseBatchedCall(call, `calls[${index}]`);
    } catch (error) {
      if (error instanceof ShapeError) return error;
      throw error;
    }
  });
};

export const parseInstallRequest = (body: unknown): { requestId: string; plugin: string } => {
  const fields = record(body, 'the request body');
  return {
    requestId: identifier(fields.requestId, 'requestId'),
    plugin: identifier(fields.plugin, 'plugin'),
  };
};

/**
 * The servers `GET /v1/servers/status?ids=S1,S2` names; undefined without `ids`, which asks for every
 * server.
 */
export const parseStatusIds = (query: URLSearchParams): string[] | undefined => {
  const given = query.getAll('ids');
  if (given.length === 0) return undefined;
  if (given.length > 1) throw new ShapeError('ids must be given once, the server ids separated by commas');
  const serverIds = (given[0] as string).split(',');
  if (serverIds.length > MAX_STATUS_IDS) {
    throw new ShapeError(`ids must name at most ${MAX_STATUS_IDS} servers`);
  }
  return serverIds.map((serverId) => {
    try {
      return checkServerId(serverId);
    } catch (error) {
      if (error instanceof InvalidInput) throw new ShapeError(`ids: ${error.message}`);
      throw error;
    }
  });
};

// Answers, as the client and the conformance check read them.

export const parseErrorBody = (body: unknown): ErrorBody['error'] => {
  const error = record(record(body, 'an error answer').error, 'error');
  if (typeof error.code !== 'string' || error.code === '') throw new ShapeError('error.code must be a text');
  if (typeof error.message !== 'string') throw new ShapeError('error.message must be a text');
  return { code: error.code, message: error.message };
};

/** The answers of `POST /v1/calls` that carried `count` calls: one per call, in order. */
export const parseCallsAnswer = (body: unknown, count: number): CallAnswer[] => {
  const { answers } = record(body, 'the answer');
  if (!Array.isArray(answers) || answers.length !== count) {
    throw new ShapeError(`answers must be a list of ${count} answers, one per call`);
  }
  return answers.map((value, index) => {
    const answer = record(value, `answers[${index}]`);
    const { status } = answer;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
      throw new ShapeError(`answers[${index}].status must be an HTTP status`);
    }
    return { status, body: answer.body };
  });
};

export const parseOutcome = (body: unknown): VmsOutcome =>
  oneOf(record(body, 'the answer').outcome, OUTCOMES, 'outcome');

const parseDisk = (value: unknown, field: string): DiskHealth => {
  const disk = record(value, field);
  if (typeof disk.letter !== 'string' || !/^[A-Z]$/.test(disk.letter))
    throw new ShapeError(`${field}.letter must be one upper-case letter`);
  return { letter: disk.letter, healthy: boolean(disk.healthy, `${field}.healthy`) };
};

const parseServerStatus = (value: unknown, field: string): VmsServerStatus => {
  const entry = record(value, field);
  const observedAt = new Date(typeof entry.observedAt === 'string' ? entry.observedAt : Number.NaN);
  if (Number.isNaN(observedAt.getTime()))
    throw new ShapeError(`${field}.observedAt must be an ISO 8601 time`);
  if (entry.recording !== null) boolean(entry.recording, `${field}.recording`);
  if (!Array.isArray(entry.disks)) throw new ShapeError(`${field}.disks must be a list`);
  return {
    serverId: identifier(entry.serverId, `${field}.serverId`),
    role: oneOf(entry.role, ROLES, `${field}.role`),
    reachable: boolean(entry.reachable, `${field}.reachable`),
    recording: entry.recording as boolean | null,
    disks: entry.disks.map((disk, index) => parseDisk(disk, `${field}.disks[${index}]`)),
    observedAt,
  };
};

/** One server's status (`GET /v1/servers/{id}/status`). */
export const parseOneStatusBody = (body: unknown): VmsServerStatus => parseServerStatus(body, 'the answer');

export const parseStatusBody = (body: unknown): VmsServerStatus[] => {
  const { servers } = record(body, 'the answer');
  if (!Array.isArray(servers)) throw new ShapeError('servers must be a list');
  return servers.map((entry, index) => parseServerStatus(entry, `servers[${index}]`));
};

export const serverStatusJson = (status: VmsServerStatus): ServerStatusJson => ({
  ...status,
  observedAt: status.observedAt.toISOString(),
});

export const parseOperation = (body: unknown): PluginInstallOperation => {
  const fields = record(body, 'the answer');
  const status = oneOf(fields.status, OPERATION_STATUSES, 'status');
  const { progress } = fields;
  if (typeof progress !== 'number' || !(progress >= 0 && progress <= 100))
    throw new ShapeError('progress must be a number from 0 to 100');
  if (status === 'failed' && typeof fields.message !== 'string')
    throw new ShapeError('message must say why a failed operation failed');
  return {
    operationId: identifier(fields.operationId, 'operationId'),
    requestId: identifier(fields.requestId, 'requestId'),
    serverId: identifier(fields.serverId, 'serverId'),
    plugin: identifier(fields.plugin, 'plugin'),
    status,
    progress,
    outcome: status === 'succeeded' ? oneOf(fields.outcome, OUTCOMES, 'outcome') : null,
    message: typeof fields.message === 'string' ? fields.message : null,
  };
};
