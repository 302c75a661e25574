/**
 * The simulated site as a VMS bridge: the protocol of docs/vms-bridge.md over the state of a VmsSimulator,
 * plus its own API under /v1/simulator/ to load a site, inject faults (servers down, up or partitioned, slow
 * or hung calls, failing plugin installs, broken disks) and read the truth back (state, call log).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { SiteFileError, parseSite } from '../domain/site-file';
import { InvalidInput, checkDriveLetters } from '../domain/validation';
import type { Logger } from '../infra/logger';
import { VmsRejected, VmsUnavailable } from './control-plane';
import type { VmsOutcome } from './control-plane';
import {
  ShapeError,
  identifier,
  parseCallsRequest,
  parseInstallRequest,
  parsePromoteRequest,
  parseRebindRequest,
  parseRequestId,
  parseStatusIds,
  serverStatusJson,
  statusOf,
} from './bridge-protocol';
import type { SufferFault, VmsSimulator } from './simulator';
import { FAULTABLE_CALLS } from './simulator-site';
import type { CallFault, FaultableCall } from './simulator-site';
import type { ServerState } from './simulator-sql';

export interface SimulatorServerOptions {
  simulator: VmsSimulator;
  logger: Logger;
  /** The bearer token every call must carry; none: calls need no token (a development machine). */
  token?: string;
  /** Serve HTTPS; with `clientCa`, only clients with a certificate it signed are served (mTLS). */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
}

const MAX_BODY_BYTES = 1_048_576;
/** How often a hung call looks whether its hang was lifted. */
const HANG_POLL_MS = 100;
const MAX_DELAY_MS = 3_600_000;
const SERVER_STATES: readonly ServerState[] = ['up', 'down', 'partitioned'];

interface Answer {
  status: number;
  body: unknown;
}

interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  pattern: RegExp;
  /**
   * The call as faults name it, its fault waited out before it is handled; simulator routes have none and
   * are never slowed, and mutating calls wait out theirs as they begin (see `mutation`).
   */
  call?: FaultableCall;
  /** `gone`: aborted when the caller goes away. */
  handle(params: string[], body: unknown, query: URLSearchParams, gone: AbortSignal): Promise<Answer>;
}

/** A request the simulator refuses as malformed. */
const malformed = (message: string): VmsRejected => new VmsRejected('malformed-request', message);

const ok = (body: unknown): Answer => ({ status: 200, body });

const record = (value: unknown): Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed('the request body must be a JSON object');
  return value as Record<string, unknown>;
};

const wholeNumber = (value: unknown, field: string, max: number): number => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw malformed(`${field} must be a whole number from 0 to ${max}`);
  return value;
};

const parseCallFault = (body: unknown): CallFault => {
  const fields = record(body);
  if (fields.hang === true && fields.delayMs === undefined) return { hang: true };
  if (fields.hang !== undefined && fields.hang !== false)
    throw malformed('give delayMs or hang: true, not both');
  return { delayMs: wholeNumber(fields.delayMs, 'delayMs', MAX_DELAY_MS) };
};

const parseDisks = (body: unknown) => {
  const { disks } = record(body);
  if (!Array.isArray(disks) || disks.length === 0) throw malformed('disks must be a non-empty list');
  return disks.map((disk, index) => {
    const fields = record(disk);
    if (typeof fields.healthy !== 'boolean') throw malformed(`disks[${index}].healthy must be true or false`);
    try {
      return { letter: checkDriveLetters([fields.letter])[0] as string, healthy: fields.healthy };
    } catch (error) {
      if (error instanceof InvalidInput) throw malformed(`disks[${index}].letter: ${error.message}`);
      throw error;
    }
  });
};

const faultableCall = (name: string): FaultableCall => {
  if (!(FAULTABLE_CALLS as readonly string[]).includes(name)) {
    throw new VmsRejected('not-found', `no call "${name}": one of ${FAULTABLE_CALLS.join(', ')}`);
  }
  return name as FaultableCall;
};

const serverParam = (params: string[]): string => identifier(params[0], 'the server id');

/** The caller went away while its call waited out a fault: the call is dropped, unapplied and unanswered. */
class CallDropped extends Error {}

/**
 * Waits out a call's injected delay or hang: the fault given (read with the call's first statement), else
 * the one set now. Rejects with CallDropped when the caller goes away meanwhile.
 */
const sufferFault = async (
  simulator: VmsSimulator,
  call: FaultableCall,
  gone: AbortSignal,
  read?: CallFault,
): Promise<void> => {
  try {
    let fault = read ?? (await simulator.callFault(call));
    if (fault !== null && 'delayMs' in fault) await sleep(fault.delayMs, undefined, { signal: gone });
    while (fault !== null && 'hang' in fault) {
      await sleep(HANG_POLL_MS, undefined, { signal: gone });
      fault = await simulator.callFault(call);
    }
  } catch (error) {
    if (gone.aborted) throw new CallDropped(`the caller of a ${call} call went away`);
    throw error;
  }
};

/**
 * The route of a mutating call. The simulator reads the call's fault with the call's first statement, one
 * statement fewer than reading it before, and the call waits it out there (`suffer`), before any effect. A
 * request refused for its shape never reaches the simulator: it waits out its fault here, as any call does.
 */
const mutation = (
  simulator: VmsSimulator,
  pattern: RegExp,
  call: FaultableCall,
  mutate: (params: string[], body: unknown, suffer: SufferFault) => Promise<VmsOutcome>,
): Route => ({
  method: 'POST',
  pattern,
  handle: async (params, body, _query, gone) => {
    try {
      return ok({
        outcome: await mutate(params, body, (fault) => sufferFault(simulator, call, gone, fault)),
      });
    } catch (error) {
      if (error instanceof ShapeError) await sufferFault(simulator, call, gone);
      throw error;
    }
  },
});

const routes = (simulator: VmsSimulator, log: Logger): Route[] => [
  {
    method: 'GET',
    pattern: /^\/v1\/health$/,
    call: 'health',
    handle: async () => {
      await simulator.ping();
      return ok({ status: 'ok' });
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/servers\/status$/,
    call: 'status',
    handle: async (_params, _body, query) => {
      const serverIds = parseStatusIds(query);
      const statuses =
        serverIds === undefined
          ? await simulator.serverStatus()
          : await simulator.serverStatusesOf(serverIds);
      return ok({ servers: statuses.map(serverStatusJson) });
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/servers\/([^/]+)\/status$/,
    call: 'status',
    handle: async (params) => ok(serverStatusJson(await simulator.serverStatusOf(serverParam(params)))),
  },
  mutation(simulator, /^\/v1\/servers\/([^/]+)\/promote$/, 'promote', (params, body, suffer) =>
    simulator.promoteToRecorder({ ...parsePromoteRequest(body), serverId: serverParam(params) }, suffer),
  ),
  mutation(simulator, /^\/v1\/servers\/([^/]+)\/fence$/, 'fence', (params, body, suffer) =>
    simulator.fenceRecorder({ ...parseRequestId(body), serverId: serverParam(params) }, suffer),
  ),
  mutation(simulator, /^\/v1\/servers\/([^/]+)\/demote$/, 'demote', (params, body, suffer) =>
    simulator.demoteToStandby({ ...parseRequestId(body), serverId: serverParam(params) }, suffer),
  ),
  mutation(simulator, /^\/v1\/servers\/([^/]+)\/rebind-cameras$/, 'rebind', (params, body, suffer) =>
    simulator.rebindCameras({ ...parseRebindRequest(body), toServerId: serverParam(params) }, suffer),
  ),
  {
    method: 'POST',
    pattern: /^\/v1\/servers\/([^/]+)\/plugin-installs$/,
    call: 'install-start',
    handle: async (params, body) => {
      const request = parseInstallRequest(body);
      const operation = await simulator.startPluginInstall({ ...request, serverId: serverParam(params) });
      // 202: an install runs (started now, or joined); 200: it had ended before this call.
      return { status: operation.status === 'running' ? 202 : 200, body: operation };
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/operations\/([^/]+)$/,
    call: 'install-status',
    handle: async (params) => ok(await simulator.pluginInstallStatus(identifier(params[0], 'operation id'))),
  },
  {
    method: 'PUT',
    pattern: /^\/v1\/simulator\/site$/,
    handle: async (_params, body) => {
      let site;
      try {
        site = parseSite(body);
      } catch (error) {
        if (error instanceof SiteFileError) throw malformed(`the site: ${error.message}`);
        throw error;
      }
      await simulator.putSite(site);
      const cameras = site.servers.reduce((count, server) => count + server.cameras.length, 0);
      log.info({ servers: site.servers.length, cameras }, 'Simulated site put');
      return ok({ servers: site.servers.length, cameras });
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/simulator\/state$/,
    handle: async () => ok(await simulator.state()),
  },
  {
    method: 'GET',
    pattern: /^\/v1\/simulator\/calls$/,
    handle: async () => ok({ calls: await simulator.calls() }),
  },
  {
    method: 'PUT',
    pattern: /^\/v1\/simulator\/servers\/([^/]+)\/state$/,
    handle: async (params, body) => {
      const { state } = record(body);
      if (!SERVER_STATES.includes(state as ServerState))
        throw malformed(`state must be one of ${SERVER_STATES.join(', ')}`);
      const serverId = serverParam(params);
      await simulator.setServerState(serverId, state as ServerState);
      log.info({ serverId, state }, 'Simulated server state set');
      return ok({ serverId, state });
    },
  },
  {
    method: 'PUT',
    pattern: /^\/v1\/simulator\/servers\/([^/]+)\/disks$/,
    handle: async (params, body) => {
      const disks = parseDisks(body);
      const serverId = serverParam(params);
      await simulator.setDisks(serverId, disks);
      log.info({ serverId, disks }, 'Simulated disks set');
      return ok({ serverId, disks });
    },
  },
  {
    method: 'PUT',
    pattern: /^\/v1\/simulator\/faults\/calls\/([^/]+)$/,
    handle: async (params, body) => {
      const call = faultableCall(params[0] ?? '');
      const fault = parseCallFault(body);
      await simulator.setCallFault(call, fault);
      log.info({ call, fault }, 'Simulated call fault set');
      return ok({ call, fault });
    },
  },
  {
    method: 'DELETE',
    pattern: /^\/v1\/simulator\/faults\/calls\/([^/]+)$/,
    handle: async (params) => {
      const call = faultableCall(params[0] ?? '');
      await simulator.setCallFault(call, null);
      log.info({ call }, 'Simulated call fault lifted');
      return ok({ call, fault: null });
    },
  },
  {
    method: 'PUT',
    pattern: /^\/v1\/simulator\/faults\/plugin-installs$/,
    handle: async (_params, body) => {
      const fields = record(body);
      const serverId = identifier(fields.serverId, 'serverId');
      const plugin = identifier(fields.plugin, 'plugin');
      const times = wholeNumber(fields.times, 'times', 1_000_000);
      await simulator.failPluginInstalls(serverId, plugin, times);
      log.info({ serverId, plugin, times }, 'Simulated plugin install failures set');
      return ok({ serverId, plugin, times });
    },
  },
  {
    method: 'DELETE',
    pattern: /^\/v1\/simulator\/faults$/,
    handle: async () => {
      await simulator.resetFaults();
      log.info('Simulated faults lifted');
      return ok({ faults: 'none' });
    },
  },
];

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

const authorized = (request: IncomingMessage, token: string | undefined): boolean =>
  token === undefined ||
  timingSafeEqual(digest(request.headers.authorization ?? ''), digest(`Bearer ${token}`));

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(malformed(`the request body exceeds ${MAX_BODY_BYTES} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });

const parseJson = (text: string): unknown => {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw malformed('the request body is not JSON');
  }
};

const errorAnswer = (code: string, message: string): Answer => ({
  status: statusOf(code),
  body: { error: { code, message } },
});

/** A call to answer: a request, or one of the calls a `POST /v1/calls` carries. */
interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Whether its caller showed the token (a call carried by `POST /v1/calls` did, with that request). */
  authorized: boolean;
  /** Its JSON body, read once the call is routed and authorized. */
  body: () => Promise<unknown>;
}

type AnswerCall = (call: Call, gone: AbortSignal) => Promise<Answer | undefined>;

/**
 * `POST /v1/calls`: each call answered by `answerCall` as it would be alone (validated, its fault waited out,
 * held, logged), side by side, the answers in order. A call hung by a fault holds the whole answer; the caller
 * going away drops the calls still waiting out their faults, as it drops a call sent alone.
 */
const callsRoute = (answerCall: AnswerCall): Route => ({
  method: 'POST',
  pattern: /^\/v1\/calls$/,
  handle: async (_params, body, _query, gone) => {
    const answers = await Promise.all(
      parseCallsRequest(body).map((call) =>
        call instanceof ShapeError
          ? Promise.resolve(errorAnswer('malformed-request', call.message))
          : answerCall(
              {
                method: call.method,
                path: call.path,
                query: new URLSearchParams(),
                authorized: true,
                body: () => Promise.resolve(call.body),
              },
              gone,
            ),
      ),
    );
    if (answers.includes(undefined)) throw new CallDropped('the caller of POST /v1/calls went away');
    return ok({ answers });
  },
});

/** The simulator's HTTP service; the caller listens (port 0 in tests) and closes it with stopServer. */
export const createSimulatorServer = (options: SimulatorServerOptions): Server => {
  const { simulator, logger, token, tls } = options;

  /** A call routed, authorized, its fault waited out and handled; undefined when its caller went away. */
  const answer: AnswerCall = async (call, gone) => {
    const { method, path } = call;
    const matching = table
      .map((route) => ({ route, match: route.pattern.exec(path) }))
      .filter((candidate) => candidate.match !== null);
    if (matching.length === 0) return errorAnswer('not-found', `no such path: ${path}`);
    const found = matching.find(({ route }) => route.method === method);
    if (found === undefined) return errorAnswer('method-not-allowed', `${method} is not allowed on ${path}`);
    if (!call.authorized) {
      return errorAnswer('unauthorized', 'a valid bearer token is required (Authorization: Bearer ...)');
    }
    try {
      const body = await call.body();
      const params = (found.match as RegExpExecArray).slice(1).map((param) => {
        try {
          return decodeURIComponent(param);
        } catch {
          throw malformed(`"${param}" is not a valid path segment`);
        }
      });
      if (found.route.call !== undefined) await sufferFault(simulator, found.route.call, gone);
      return await found.route.handle(params, body, call.query, gone);
    } catch (error) {
      if (error instanceof CallDropped) return undefined;
      if (error instanceof ShapeError) return errorAnswer('malformed-request', error.message);
      if (error instanceof VmsRejected || error instanceof VmsUnavailable) {
        return errorAnswer(error.code, error.message);
      }
      logger.error({ err: error, method, path }, 'Simulator call failed');
      return errorAnswer('internal', 'the simulator failed to answer: see its log');
    }
  };
  const table = [...routes(simulator, logger), callsRoute(answer)];

  const answerRequest = async (request: IncomingMessage, gone: AbortSignal): Promise<Answer | undefined> => {
    const { pathname, searchParams } = new URL(request.url ?? '/', 'http://simulator');
    return answer(
      {
        method: request.method ?? '?',
        path: pathname,
        query: searchParams,
        authorized: authorized(request, token),
        body: async () => (request.method === 'GET' ? undefined : parseJson(await readBody(request))),
      },
      gone,
    );
  };

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    const startedAt = Date.now();
    const gone = new AbortController();
    response.once('close', () => gone.abort());
    answerRequest(request, gone.signal)
      .then((result) => {
        if (result === undefined || response.destroyed) return;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (result.status === 401) headers['www-authenticate'] = 'Bearer';
        response.writeHead(result.status, headers).end(JSON.stringify(result.body));
        logger.debug(
          { method: request.method, path: request.url, status: result.status, ms: Date.now() - startedAt },
          'Simulator call answered',
        );
      })
      .catch((error: unknown) => {
        logger.error({ err: error, method: request.method, path: request.url }, 'Simulator call failed');
        response.destroy();
      });
  };

  if (tls === undefined) return createHttpServer(handler);
  return createHttpsServer(
    {
      cert: tls.cert,
      key: tls.key,
      ...(tls.clientCa !== undefined && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
    },
    handler,
  );
};

/** Listens on `port` (0: any free port) and resolves with the port it got. */
export const listen = (server: Server, port: number, host: string): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });

/** Stops accepting calls and ends every open connection, hung calls included. */
export const stopServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
