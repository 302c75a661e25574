/**
 * The heartbeat gateway: agents POST their heartbeat (with disk health) over HTTP or HTTPS, each with a
 * credential of its own server. A heartbeat only updates the in-memory lease table; nothing reaches
 * Temporal or PostgreSQL per heartbeat. Whatever a peer sends, the answer is a refusal that changes nothing:
 * no or unknown credential 401, another server's 403, a body too large 413, bad JSON or fields 400, too many
 * 429; each refusal is counted.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Heartbeat } from '../domain/validation';
import { InvalidInput, checkHeartbeat } from '../domain/validation';
import type { Logger } from '../infra/logger';
import type { CredentialCache } from './credential-cache';
import type { LeaseTable } from './lease-table';
import { FailurePenalties, TokenBuckets } from './rate-limits';

export const HEARTBEAT_PATH = '/v1/heartbeat';
export const HEALTH_PATH = '/v1/health';
/** A heartbeat with 26 disks is well under 2 KiB. */
export const MAX_HEARTBEAT_BYTES = 4_096;

export type RefusalReason =
  | 'unauthenticated'
  | 'forbidden'
  | 'too-large'
  | 'malformed'
  | 'rate-limited'
  | 'unavailable'
  | 'not-found'
  | 'penalized';

export interface GatewayStats {
  accepted: number;
  refused: Record<RefusalReason, number>;
}

export interface GatewayTls {
  cert: Buffer;
  key: Buffer;
  /** With a CA, clients must present a certificate it signed (mutual TLS). */
  clientCa?: Buffer;
}

export interface GatewayOptions {
  host: string;
  /** 0 takes a free port (tests); `address()` tells which. */
  port: number;
  tls?: GatewayTls;
  /** Heartbeats a second one credential may send, on average, and in a burst. */
  perCredentialRate?: { perSecond: number; burst: number };
  /** Failed requests a second from one address before its connections are closed for `penaltyMs`. */
  failuresPerAddress?: { perSecond: number; penaltyMs: number };
}

interface Refusal {
  status: number;
  reason: RefusalReason;
  message: string;
}

const refusal = (status: number, reason: RefusalReason, message: string): Refusal => ({
  status,
  reason,
  message,
});

/** Agents at a 5 s interval keep their connection: well above their interval, as load balancers expect. */
const KEEP_ALIVE_MS = 65_000;
const REQUEST_TIMEOUT_MS = 10_000;

export class HeartbeatGateway {
  private server: Server | undefined;
  private readonly connections = new Set<Socket>();
  private readonly perCredential: TokenBuckets;
  private readonly penalties: FailurePenalties;
  private sweeper: NodeJS.Timeout | undefined;
  readonly stats: GatewayStats = {
    accepted: 0,
    refused: {
      unauthenticated: 0,
      forbidden: 0,
      'too-large': 0,
      malformed: 0,
      'rate-limited': 0,
      unavailable: 0,
      'not-found': 0,
      penalized: 0,
    },
  };

  constructor(
    private readonly options: GatewayOptions,
    private readonly credentials: CredentialCache,
    private readonly leases: LeaseTable,
    private readonly logger: Logger,
  ) {
    const rate = options.perCredentialRate ?? { perSecond: 5, burst: 10 };
    this.perCredential = new TokenBuckets(rate.perSecond, rate.burst);
    const failures = options.failuresPerAddress ?? { perSecond: 50, penaltyMs: 10_000 };
    this.penalties = new FailurePenalties(failures.perSecond, failures.penaltyMs);
  }

  async listen(): Promise<AddressInfo> {
    const handler = (request: IncomingMessage, response: ServerResponse) => this.handle(request, response);
    const { tls } = this.options;
    const server =
      tls === undefined
        ? createHttpServer(handler)
        : createHttpsServer(
            {
              cert: tls.cert,
              key: tls.key,
              ...(tls.clientCa !== undefined && {
                ca: tls.clientCa,
                requestCert: true,
                rejectUnauthorized: true,
              }),
            },
            handler,
          );
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.headersTimeout = REQUEST_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    // A penalized address costs an accept and a close, nothing more.
    server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
      if (this.penalties.isPenalized(socket.remoteAddress ?? '', Date.now())) {
        this.stats.refused.penalized += 1;
        socket.destroy();
        return;
      }
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
    });
    server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.sweeper = setInterval(() => this.penalties.sweep(Date.now()), 10_000);
    this.sweeper.unref();
    const address = server.address() as AddressInfo;
    this.logger.info(
      { host: address.address, port: address.port, tls: tls !== undefined },
      'Heartbeat gateway listening',
    );
    return address;
  }

  address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.connections) socket.destroy();
    await closed;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    if (request.url === HEALTH_PATH && request.method === 'GET') {
      const ready = this.credentials.ready;
      this.reply(response, ready ? 200 : 503, { status: ready ? 'ok' : 'starting' });
      return;
    }
    if (request.url !== HEARTBEAT_PATH) {
      this.refuse(request, response, refusal(404, 'not-found', `no such path: POST ${HEARTBEAT_PATH}`));
      return;
    }
    if (request.method !== 'POST') {
      this.refuse(request, response, refusal(404, 'not-found', `${HEARTBEAT_PATH} takes POST`));
      return;
    }
    void this.authenticate(request).then((serverId) => {
      if (typeof serverId !== 'string') this.refuse(request, response, serverId);
      else this.accept(request, response, serverId);
    });
  }

  private accept(request: IncomingMessage, response: ServerResponse, serverId: string): void {
    const declaredLength = Number(request.headers['content-length'] ?? 0);
    if (declaredLength > MAX_HEARTBEAT_BYTES) {
      this.refuse(
        request,
        response,
        refusal(413, 'too-large', `a heartbeat is at most ${MAX_HEARTBEAT_BYTES} bytes`),
      );
      return;
    }
    this.readBody(request, (body) => {
      if (body === undefined) {
        this.refuse(
          request,
          response,
          refusal(413, 'too-large', `a heartbeat is at most ${MAX_HEARTBEAT_BYTES} bytes`),
        );
        return;
      }
      const heartbeat = this.parse(body, serverId);
      if (!('serverId' in heartbeat)) {
        this.refuse(request, response, heartbeat);
        return;
      }
      const nowMs = Date.now();
      if (!this.perCredential.take(serverId, nowMs)) {
        this.refuse(request, response, refusal(429, 'rate-limited', 'heartbeats are sent too often'));
        return;
      }
      this.leases.record(serverId, { atMs: nowMs, sentAtMs: heartbeat.sentAtMs, disks: heartbeat.disks });
      this.stats.accepted += 1;
      this.reply(response, 200, { serverId, receivedAtMs: nowMs });
    });
  }

  private async authenticate(request: IncomingMessage): Promise<string | Refusal> {
    if (!this.credentials.ready) return refusal(503, 'unavailable', 'the gateway is starting: try again');
    const header = request.headers.authorization;
    if (header === undefined || !header.startsWith('Bearer ')) {
      return refusal(401, 'unauthenticated', 'a heartbeat needs "Authorization: Bearer <agent token>"');
    }
    const serverId = await this.credentials.serverOf(header.slice('Bearer '.length).trim());
    return serverId ?? refusal(401, 'unauthenticated', 'unknown or revoked agent token');
  }

  private parse(body: Buffer, serverId: string): Heartbeat | Refusal {
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      return refusal(400, 'malformed', 'the body is not JSON');
    }
    let heartbeat: Heartbeat;
    try {
      heartbeat = checkHeartbeat(payload);
    } catch (error) {
      if (error instanceof InvalidInput) return refusal(400, 'malformed', error.message);
      throw error;
    }
    if (heartbeat.serverId !== serverId) {
      return refusal(403, 'forbidden', `this token is for "${serverId}", not for "${heartbeat.serverId}"`);
    }
    return heartbeat;
  }

  /** The body, or undefined once it exceeds the limit (the rest is not read). */
  private readBody(request: IncomingMessage, done: (body: Buffer | undefined) => void): void {
    const chunks: Buffer[] = [];
    let length = 0;
    let finished = false;
    const finish = (body: Buffer | undefined) => {
      if (finished) return;
      finished = true;
      done(body);
    };
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_HEARTBEAT_BYTES) {
        request.pause();
        finish(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => finish(Buffer.concat(chunks)));
    request.on('error', () => finish(undefined));
  }

  private refuse(
    request: IncomingMessage,
    response: ServerResponse,
    { status, reason, message }: Refusal,
  ): void {
    this.stats.refused[reason] += 1;
    const address = request.socket.remoteAddress ?? '';
    const failing = status === 401 || status === 403 || status === 400 || status === 413 || status === 404;
    const penalized = failing && this.penalties.fail(address, Date.now());
    if (penalized) this.logger.warn({ address, reason }, 'Gateway address penalized for failed requests');
    // A request whose body was not read, or a peer being penalized, does not keep its connection.
    const close = penalized || status === 413 || !request.complete;
    this.reply(response, status, { error: { code: reason, message } }, close);
  }

  private reply(response: ServerResponse, status: number, body: unknown, close = false): void {
    const text = JSON.stringify(body);
    response.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...(status === 401 && { 'www-authenticate': 'Bearer' }),
      ...(close && { connection: 'close' }),
    });
    response.end(text);
    if (close) response.once('finish', () => response.socket?.destroy());
  }
}
