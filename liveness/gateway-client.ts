/**
 * What an agent (or the benchmark) uses to send heartbeats: HTTP or HTTPS with a kept-alive connection, to
 * the first of its gateways that answers. A gateway that cannot be reached, times out or answers 5xx is
 * left for the next; a refusal (4xx) is the same everywhere and is reported at once.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { Agent, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Heartbeat } from '../domain/validation';
import { HEARTBEAT_PATH } from './gateway';

export interface GatewayClientOptions {
  /** Gateway base URLs, tried in order: http://master:7380, https://second-host:7380. */
  gateways: string[];
  token: string;
  /** Per attempt. */
  timeoutMs: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Connections shared with other clients (the benchmark's agents); one of its own otherwise. */
  agents?: { http: HttpAgent; https: HttpsAgent };
  /** The local address to send from (tests that play several hosts on one machine). */
  localAddress?: string;
}

/** A gateway refused the heartbeat: retrying elsewhere would not help. */
export class GatewayRefusal extends Error {
  override readonly name = 'GatewayRefusal';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** No gateway took the heartbeat: each failure, in the order tried. */
export class GatewaysUnreachable extends Error {
  override readonly name = 'GatewaysUnreachable';
}

interface Delivery {
  gateway: string;
  receivedAtMs: number;
}

export class GatewayClient {
  private readonly urls: URL[];
  private preferred = 0;
  private readonly agents: { http: HttpAgent; https: HttpsAgent };
  private readonly ownsAgents: boolean;

  constructor(private readonly options: GatewayClientOptions) {
    if (options.gateways.length === 0) throw new Error('at least one gateway URL is needed');
    this.urls = options.gateways.map((gateway) => new URL(HEARTBEAT_PATH, gateway));
    this.ownsAgents = options.agents === undefined;
    this.agents = options.agents ?? {
      http: new HttpAgent({ keepAlive: true, maxSockets: 1 }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: 1, ...options.tls }),
    };
  }

  /** Sends one heartbeat; the gateway that took it is tried first next time. */
  async send(heartbeat: Heartbeat): Promise<Delivery> {
    const failures: string[] = [];
    for (let offset = 0; offset < this.urls.length; offset += 1) {
      const index = (this.preferred + offset) % this.urls.length;
      const url = this.urls[index] as URL;
      try {
        const delivery = await this.post(url, heartbeat);
        this.preferred = index;
        return delivery;
      } catch (error) {
        if (error instanceof GatewayRefusal) throw error;
        failures.push(`${url.origin}: ${(error as Error).message}`);
      }
    }
    throw new GatewaysUnreachable(`no gateway took the heartbeat (${failures.join('; ')})`);
  }

  close(): void {
    if (!this.ownsAgents) return;
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private post(url: URL, heartbeat: Heartbeat): Promise<Delivery> {
    const body = JSON.stringify(heartbeat);
    const secure = url.protocol === 'https:';
    const agent: Agent = secure ? this.agents.https : this.agents.http;
    const send = secure ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const sent = send(
        url,
        {
          method: 'POST',
          agent,
          timeout: this.options.timeoutMs,
          ...(this.options.localAddress !== undefined && { localAddress: this.options.localAddress }),
          ...(secure && this.options.tls),
          headers: {
            authorization: `Bearer ${this.options.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (response) => readAnswer(response, url, resolve, reject),
      );
      sent.on('timeout', () => sent.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      sent.on('error', reject);
      sent.end(body);
    });
  }
}

const readAnswer = (
  response: IncomingMessage,
  url: URL,
  resolve: (delivery: Delivery) => void,
  reject: (error: Error) => void,
): void => {
  let text = '';
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => (text += chunk));
  response.on('error', reject);
  response.on('end', () => {
    const status = response.statusCode ?? 0;
    let body: { receivedAtMs?: number; error?: { code?: string; message?: string } } = {};
    try {
      body = text === '' ? {} : (JSON.parse(text) as typeof body);
    } catch {
      // A proxy's error page, say: the status tells enough.
    }
    if (status === 200) {
      resolve({ gateway: url.origin, receivedAtMs: body.receivedAtMs ?? Date.now() });
      return;
    }
    const message = body.error?.message ?? `HTTP ${status}`;
    if (status >= 400 && status < 500) {
      reject(new GatewayRefusal(status, body.error?.code ?? String(status), message));
      return;
    }
    reject(new Error(`HTTP ${status}: ${message}`));
  });
};
