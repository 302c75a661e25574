/**
 * The VMS control plane over HTTP: a client of a site's VMS bridge (docs/vms-bridge.md). Every exchange has
 * a deadline; 4xx answers become VmsRejected (never retried), 5xx, timeouts and network failures
 * VmsUnavailable (retried by the caller, with the same request id). A plugin install is an operation on the
 * bridge: started, then polled here until it ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { InstallProgress, VmsControlPlane, VmsOutcome, VmsServerStatus } from './control-plane';
import { PluginInstallFailed, VmsRejected, VmsUnavailable } from './control-plane';
import {
  BridgePaths,
  MAX_STATUS_IDS,
  ShapeError,
  parseOneStatusBody,
  parseOperation,
  parseOutcome,
  parseStatusBody,
} from './bridge-protocol';
import type { PluginInstallOperation } from './bridge-protocol';
import { BridgeTransport } from './bridge-transport';
import type { BridgeConnection, BridgeExchange } from './bridge-transport';

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

export class HttpVmsBridge implements VmsControlPlane {
  private readonly transport: BridgeTransport;
  private asksOneServer = true;

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

  private mutate(path: string, body: object): Promise<VmsOutcome> {
    return this.answer({ method: 'POST', path, body }, parseOutcome);
  }

  private async answer<T>(
    exchange: Omit<BridgeExchange, 'timeoutMs'>,
    parse: (body: unknown) => T,
  ): Promise<T> {
    const body = await this.transport.call({ ...exchange, timeoutMs: this.options.timeoutMs });
    try {
      return parse(body);
    } catch (error) {
      if (!(error instanceof ShapeError)) throw error;
      // A bridge answering out of contract is a bridge to fix; a proxy's glitch may pass: retried.
      throw new VmsUnavailable(
        'invalid-answer',
        `the VMS bridge answered ${exchange.method} ${exchange.path} out of contract: ${error.message}`,
      );
    }
  }
}

const installTimedOut = (operation: PluginInstallOperation, installTimeoutMs: number): VmsUnavailable =>
  new VmsUnavailable(
    'install-timeout',
    `installing ${operation.plugin} on ${operation.serverId} still runs after ${installTimeoutMs} ms (operation ${operation.operationId}); a retry with the same request id follows it`,
  );
