/**
 * The VMS control plane over HTTP: a client of a site's VMS bridge (docs/vms-bridge.md). Every exchange has
 * a deadline; 4xx answers become VmsRejected (never retried), 5xx, timeouts and network failures
 * VmsUnavailable (retried by the caller, with the same request id). The mutating calls asked at once go in one
 * request (`POST /v1/calls`). A plugin install is an operation on the bridge: started, then polled here until
 * it ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Batches } from '../infra/batches';
import type { InstallProgress, VmsControlPlane, VmsOutcome, VmsServerStatus } from './control-plane';
import { PluginInstallFailed, VmsRejected, VmsUnavailable } from './control-plane';
import {
  BridgePaths,
  MAX_CALLS,
  MAX_STATUS_IDS,
  ShapeError,
  parseCallsAnswer,
  parseOneStatusBody,
  parseOperation,
  parseOutcome,
  parseStatusBody,
} from './bridge-protocol';
import type { BatchedCall, CallAnswer, PluginInstallOperation } from './bridge-protocol';
import { BridgeTransport, bodyOf, describeExchange } from './bridge-transport';
import type { BridgeAnswer, BridgeConnection, BridgeExchange } from './bridge-transport';

export interface HttpBridgeOptions extends BridgeConnection {
  /** Deadline of each HTTP exchange with the bridge. */
  timeoutMs: number;
  /**
   * How long installPlugin follows one install. Past it, it rejects with VmsUnavailable 'install-timeout';
   * the install goes on at the bridge, and a retry with the same request id follows the same install.
   */
  installTimeoutMs: number;
  /** Time between two polls of a running install. */
  pollIntervalMs?: number;
}

const DEFAULT_POLL_INTERVAL_MS = 1_000;

/** What a bridge without `GET /v1/servers/{id}/status` answers it (an unknown server is `unknown-server`). */
const OLDER_BRIDGE_CODES = new Set(['not-found', 'method-not-allowed']);

/** A mutating call (promote, fence, demote, rebind), sent alone or with others in `POST /v1/calls`. */
interface Mutation {
  path: string;
  body: { requestId: string; [field: string]: unknown };
}

/** A call's outcome, or the error that rejects its caller: a batch's answers settle, never reject. */
type Settled = VmsOutcome | Error;

const nameOf = (call: Mutation): string => describeExchange({ method: 'POST', path: call.path });

/**
 * How long a `POST /v1/calls` may take before each of its calls is sent alone (with the bridge's own
 * deadline): a call slow at the VMS (a standby it spends its own connection timeout on) holds the calls sent
 * with it this long at most.
 */
const TOGETHER_ANSWER_WITHIN_MS = 1_000;

export class HttpVmsBridge implements VmsControlPlane {
  private readonly transport: BridgeTransport;
  private asksOneServer = true;
  /**
   * The mutating calls asked in one turn of the event loop (a hundred take-overs promoting at once) go in one
   * `POST /v1/calls`; a call asked alone goes as itself. A batch ends once it is sent, not once it is answered:
   * a slow call (a fence the VMS spends its own connection timeout on) holds the calls sent with it, never
   * those asked later.
   */
  private readonly mutations = new Batches<Mutation, { answer: Promise<Settled> }>((calls) =>
    Promise.resolve(this.send(calls).map((answer) => ({ answer }))),
  );
  /** False once the bridge answered `POST /v1/calls` with 404 or 405: a bridge written before that call. */
  private servesCalls = true;

  constructor(private readonly options: HttpBridgeOptions) {
    this.transport = new BridgeTransport(options);
  }

  promoteToRecorder(request: {
    requestId: string;
    serverId: string;
    replacesServerId: string;
  }): Promise<VmsOutcome> {
    return this.mutate(BridgePaths.promote(request.serverId), {
      requestId: request.requestId,
      replacesServerId: request.replacesServerId,
    });
  }

  fenceRecorder(request: { requestId: string; serverId: string }): Promise<VmsOutcome> {
    return this.mutate(BridgePaths.fence(request.serverId), { requestId: request.requestId });
  }

  demoteToStandby(request: { requestId: string; serverId: string }): Promise<VmsOutcome> {
    return this.mutate(BridgePaths.demote(request.serverId), { requestId: request.requestId });
  }

  rebindCameras(request: {
    requestId: string;
    cameraIds: string[];
    toServerId: string;
  }): Promise<VmsOutcome> {
    return this.mutate(BridgePaths.rebindCameras(request.toServerId), {
      requestId: request.requestId,
      cameraIds: request.cameraIds,
    });
  }

  async installPlugin(
    request: { requestId: string; serverId: string; plugin: string },
    onProgress?: InstallProgress,
  ): Promise<VmsOutcome> {
    const giveUpAt = Date.now() + this.options.installTimeoutMs;
    let operation = await this.answer(
      {
        method: 'POST',
        path: BridgePaths.pluginInstalls(request.serverId),
        body: { requestId: request.requestId, plugin: request.plugin },
      },
      parseOperation,
    );
    // Ended before this call: this request, or another, installed it earlier.
    if (operation.status === 'succeeded') return 'already-applied';
    const pollIntervalMs = this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    while (operation.status === 'running') {
      onProgress?.(operation.progress);
      const leftMs = giveUpAt - Date.now();
      if (leftMs <= 0) throw installTimedOut(operation, this.options.installTimeoutMs);
      await sleep(Math.min(pollIntervalMs, leftMs));
      operation = await this.answer(
        { method: 'GET', path: BridgePaths.operation(operation.operationId) },
        parseOperation,
      );
    }
    if (operation.status === 'failed') {
      throw new PluginInstallFailed(
        `installing ${request.plugin} on ${request.serverId} failed: ${operation.message ?? 'no reason given'}`,
      );
    }
    onProgress?.(100);
    return operation.outcome ?? 'applied';
  }

  serverStatus(): Promise<VmsServerStatus[]> {
    return this.answer({ method: 'GET', path: BridgePaths.status }, parseStatusBody);
  }

  /**
   * Asks about the one server (`GET /v1/servers/{id}/status`): a failover asks before it claims a standby,
   * and a hundred failovers at once reading the whole site each took seconds on a site of 1,000 servers. A
   * bridge written before that call (404 `not-found`, 405) is asked for every server instead, from then on.
   */
  async serverStatusOf(serverId: string): Promise<VmsServerStatus> {
    if (this.asksOneServer) {
      try {
        return await this.answer(
          { method: 'GET', path: BridgePaths.serverStatus(serverId) },
          parseOneStatusBody,
        );
      } catch (error) {
        if (!(error instanceof VmsRejected && OLDER_BRIDGE_CODES.has(error.code))) throw error;
        this.asksOneServer = false;
      }
    }
    const server = (await this.serverStatus()).find((candidate) => candidate.serverId === serverId);
    if (server === undefined) {
      throw new VmsRejected('unknown-server', `the VMS does not know server ${serverId}`);
    }
    return server;
  }

  /**
   * Asks about the servers named (`GET /v1/servers/status?ids=...`), at most MAX_STATUS_IDS a call: a hundred
   * failovers decided together ask about their servers at once, in one call instead of one each. A bridge
   * written before the query answers every server: only the servers asked about are kept.
   */
  async serverStatusesOf(serverIds: readonly string[]): Promise<VmsServerStatus[]> {
    const asked = [...new Set(serverIds)];
    const calls: Promise<VmsServerStatus[]>[] = [];
    for (let start = 0; start < asked.length; start += MAX_STATUS_IDS) {
      const named = asked.slice(start, start + MAX_STATUS_IDS);
      const wanted = new Set(named);
      calls.push(
        this.answer({ method: 'GET', path: BridgePaths.statusOfServers(named) }, parseStatusBody).then(
          (statuses) => statuses.filter((status) => wanted.has(status.serverId)),
        ),
      );
    }
    return (await Promise.all(calls)).flat();
  }

  async isServerUp(serverId: string): Promise<boolean> {
    return (await this.serverStatusOf(serverId)).reachable;
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.transport.close();
  }

  private async mutate(path: string, body: Mutation['body']): Promise<VmsOutcome> {
    const answer = await (await this.mutations.run({ path, body })).answer;
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /**
   * Sends the calls asked at once, by MAX_CALLS in a `POST /v1/calls`; a call left alone, and every call to a
   * bridge without that call, go as themselves. One answer per call.
   */
  private send(calls: Mutation[]): Promise<Settled>[] {
    const together = this.servesCalls ? calls : [];
    const answers = new Map<Mutation, Promise<Settled>>();
    // Groups of two or more: a call left over alone is sent as itself.
    for (let start = 0; together.length - start >= 2; start += MAX_CALLS) {
      const group = together.slice(start, start + MAX_CALLS);
      const sent = this.sendTogether(group);
      group.forEach((call, index) =>
        answers.set(
          call,
          settle(async () => (await sent)[index] as Settled),
        ),
      );
    }
    return calls.map((call) => answers.get(call) ?? this.sendAlone(call));
  }

  private sendAlone(call: Mutation): Promise<Settled> {
    return settle(() => this.answer({ method: 'POST', ...call }, parseOutcome));
  }

  /** One `POST /v1/calls`: each call's answer judged as it would be if sent alone. */
  private async sendTogether(calls: Mutation[]): Promise<Settled[]> {
    const envelope = {
      method: 'POST' as const,
      path: BridgePaths.calls,
      body: { calls: calls.map((call): BatchedCall => ({ method: 'POST', ...call })) },
    };
    let answers: CallAnswer[];
    try {
      const answer = await this.transport.exchange({
        ...envelope,
        timeoutMs: Math.min(this.options.timeoutMs, TOGETHER_ANSWER_WITHIN_MS),
      });
      if (answer.status >= 400 && answer.status < 500) {
        // Refused as a whole (a bridge written before it, a request too large for it): each call alone.
        if (answer.status === 404 || answer.status === 405) this.servesCalls = false;
        return await Promise.all(calls.map((call) => this.sendAlone(call)));
      }
      answers = judge(answer, describeExchange(envelope), (body) => parseCallsAnswer(body, calls.length));
    } catch (error) {
      if (!(error instanceof VmsUnavailable)) throw error;
      // Not answered in time (one call may be slow at the VMS): each call alone now, with the bridge's own
      // deadline. The bridge may be applying them still: the same request ids make the repeats harmless.
      if (error.code === 'timeout') return Promise.all(calls.map((call) => this.sendAlone(call)));
      // No answer, or none to read: any call may have been applied; its caller repeats it with its request id.
      return calls.map(
        (call) => new VmsUnavailable(error.code, `${error.message} (${nameOf(call)} was one of its calls)`),
      );
    }
    return answers.map((answer, index) => {
      try {
        return judge(
          { ...answer, json: answer.body !== undefined },
          nameOf(calls[index] as Mutation),
          parseOutcome,
        );
      } catch (error) {
        if (error instanceof VmsRejected || error instanceof VmsUnavailable) return error;
        throw error;
      }
    });
  }

  private async answer<T>(
    exchange: Omit<BridgeExchange, 'timeoutMs'>,
    parse: (body: unknown) => T,
  ): Promise<T> {
    const answer = await this.transport.exchange({ ...exchange, timeoutMs: this.options.timeoutMs });
    return judge(answer, describeExchange(exchange), parse);
  }
}

/** What an answer to `call` says: its 2xx body parsed, or the typed error of any other answer. */
const judge = <T>(
  answer: Pick<BridgeAnswer, 'status' | 'body' | 'json'>,
  call: string,
  parse: (body: unknown) => T,
): T => {
  const body = bodyOf(answer, call);
  try {
    return parse(body);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    // A bridge answering out of contract is a bridge to fix; a proxy's glitch may pass: retried.
    throw new VmsUnavailable(
      'invalid-answer',
      `the VMS bridge answered ${call} out of contract: ${error.message}`,
    );
  }
};

/** What `produce` resolves with, or the error it rejects with. */
const settle = async (produce: () => Promise<Settled>): Promise<Settled> => {
  try {
    return await produce();
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
};

const installTimedOut = (operation: PluginInstallOperation, installTimeoutMs: number): VmsUnavailable =>
  new VmsUnavailable(
    'install-timeout',
    `installing ${operation.plugin} on ${operation.serverId} still runs after ${installTimeoutMs} ms (operation ${operation.operationId}); a retry with the same request id follows it`,
  );
