/**
 * HTTP exchanges with a VMS bridge: one keep-alive agent per bridge, a deadline on every exchange (headers
 * and body), the bearer token, optional TLS with a private CA and a client certificate (mTLS). Network
 * failures and missed deadlines become VmsUnavailable; answers are handed back as they came, for the caller
 * to judge (the HTTP client classifies them, the conformance check compares them with the contract).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { VmsRejected, VmsUnavailable } from './control-plane';
import { ShapeError, parseErrorBody } from './bridge-protocol';

export interface BridgeTls {
  /** PEM of the CA that signed the bridge's certificate (a site's private CA). */
  ca?: Buffer;
  /** PEM client certificate and key, for bridges that authenticate callers by mTLS. */
  clientCertPair?: { crt: Buffer; key: Buffer };
}

export interface BridgeConnection {
  /** Base URL of the bridge, e.g. https://vms-bridge.site.local:7280 (the /v1/... paths are appended). */
  url: string;
  /** Bearer token sent with every call. */
  token?: string;
  tls?: BridgeTls;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface BridgeAnswer {
  status: number;
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  json: boolean;
  elapsedMs: number;
}

export interface BridgeExchange {
  method: HttpMethod;
  path: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is, instead of `body` (the conformance check sends malformed JSON). */
  rawBody?: string;
  timeoutMs: number;
  /** null sends no Authorization header; a string replaces the configured token. */
  token?: string | null;
}

/** A network error code as the protocol's errors name it. */
const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection-refused',
  ECONNRESET: 'connection-reset',
  EPIPE: 'connection-reset',
  ENOTFOUND: 'host-not-found',
  EAI_AGAIN: 'host-not-found',
  EHOSTUNREACH: 'host-unreachable',
  ENETUNREACH: 'host-unreachable',
  ETIMEDOUT: 'timeout',
};

export const describeExchange = (exchange: Pick<BridgeExchange, 'method' | 'path'>): string =>
  `${exchange.method} ${exchange.path}`;

export class BridgeTransport {
  private readonly base: URL;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(private readonly connection: BridgeConnection) {
    this.base = new URL(connection.url.endsWith('/') ? connection.url.slice(0, -1) : connection.url);
    this.agent =
      this.base.protocol === 'https:'
        ? new HttpsAgent({
            keepAlive: true,
            ...(connection.tls?.ca !== undefined && { ca: connection.tls.ca }),
            ...(connection.tls?.clientCertPair !== undefined && {
              cert: connection.tls.clientCertPair.crt,
              key: connection.tls.clientCertPair.key,
            }),
          })
        : new HttpAgent({ keepAlive: true });
  }

  get url(): string {
    return this.base.toString().replace(/\/$/, '');
  }

  /** One exchange. Rejects with VmsUnavailable when no whole answer came within the deadline. */
  async exchange(exchange: BridgeExchange): Promise<BridgeAnswer> {
    try {
      return await this.once(exchange);
    } catch (error) {
      // A kept-alive socket the bridge closed meanwhile: every call is idempotent, so sending again is safe.
      if ((error as { reusedSocketReset?: boolean }).reusedSocketReset) return this.once(exchange);
      throw error;
    }
  }

  /** The answer's JSON body when the status is 2xx; VmsRejected (4xx) or VmsUnavailable (other) if not. */
  async call(exchange: BridgeExchange): Promise<unknown> {
    return bodyOf(await this.exchange(exchange), describeExchange(exchange));
  }

  close(): void {
    this.agent.destroy();
  }

  private once(exchange: BridgeExchange): Promise<BridgeAnswer> {
    const url = new URL(`${this.base.pathname.replace(/\/$/, '')}${exchange.path}`, this.base);
    const payload =
      exchange.rawBody ?? (exchange.body === undefined ? undefined : JSON.stringify(exchange.body));
    const token = exchange.token === undefined ? this.connection.token : exchange.token;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'vms-failover' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    if (token !== undefined && token !== null) headers.authorization = `Bearer ${token}`;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const startedAt = Date.now();
    return new Promise<BridgeAnswer>((resolve, reject) => {
      let timedOut = false;
      const request: ClientRequest = send(url, { method: exchange.method, headers, agent: this.agent });
      const deadline = setTimeout(() => {
        timedOut = true;
        request.destroy();
      }, exchange.timeoutMs);
      const fail = (error: Error & { code?: string }): void => {
        clearTimeout(deadline);
        if (timedOut) {
          reject(
            new VmsUnavailable(
              'timeout',
              `the VMS bridge did not answer ${describeExchange(exchange)} within ${exchange.timeoutMs} ms`,
            ),
          );
          return;
        }
        const code = NETWORK_CODES[error.code ?? ''] ?? 'connection-failed';
        reject(
          Object.assign(
            new VmsUnavailable(code, `the VMS bridge at ${this.url} is unreachable: ${error.message}`),
            { reusedSocketReset: request.reusedSocket && error.code === 'ECONNRESET' },
          ),
        );
      };
      request.on('error', fail);
      request.on('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', fail);
        response.on('end', () => {
          clearTimeout(deadline);
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text === '' ? undefined : text;
          let json = false;
          try {
            if (text !== '') {
              body = JSON.parse(text);
              json = true;
            }
          } catch {
            // Not JSON: the raw text is the body, for the caller to report.
          }
          resolve({ status: response.statusCode ?? 0, body, json, elapsedMs: Date.now() - startedAt });
        });
      });
      request.end(payload);
    });
  }
}

/** The JSON body of a 2xx answer to `call`; throws the typed error (errorOf) of any other answer. */
export const bodyOf = (answer: Pick<BridgeAnswer, 'status' | 'body' | 'json'>, call: string): unknown => {
  if (answer.status >= 200 && answer.status < 300 && answer.json) return answer.body;
  throw errorOf(answer, call);
};

/** The typed error of an answer that is not a success: 4xx VmsRejected, anything else VmsUnavailable. */
export const errorOf = (
  answer: Pick<BridgeAnswer, 'status' | 'body'>,
  call: string,
): VmsRejected | VmsUnavailable => {
  let code = `http-${answer.status}`;
  let message = `the VMS bridge answered ${call} with HTTP ${answer.status}`;
  try {
    const error = parseErrorBody(answer.body);
    code = error.code;
    message = `${error.message} (${call})`;
  } catch (problem) {
    if (!(problem instanceof ShapeError)) throw problem;
    if (answer.status >= 200 && answer.status < 300) {
      return new VmsUnavailable('invalid-answer', `the VMS bridge answered ${call} with no JSON body`);
    }
  }
  return answer.status >= 400 && answer.status < 500
    ? new VmsRejected(code, message)
    : new VmsUnavailable(code, message);
};
