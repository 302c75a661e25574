/**
 * The heartbeat agents of the simulated Slaves and standbys, all in the bench process: each server POSTs a
 * heartbeat to the worker's gateway every interval with its own credential, phases spread evenly over the
 * interval. They share kept-alive HTTP connections (`concurrency` at most, one request each at a time), as
 * many agents behind one proxy would; each request is what a real agent sends (liveness/gateway-client.ts).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { Semaphore } from '../infra/limit';
import { GatewayClient, GatewayRefusal } from '../liveness/gateway-client';

const HEALTHY_DISKS = [
  { letter: 'C', healthy: true },
  { letter: 'D', healthy: true },
  { letter: 'E', healthy: true },
];

/** A gateway that has not answered in this long has failed the heartbeat. */
const REQUEST_TIMEOUT_MS = 5_000;

interface Agent {
  stopped: boolean;
  loop: Promise<void>;
}

export interface SenderCounts {
  /** Heartbeats the gateway took (HTTP 200). */
  sent: number;
  /** Heartbeats refused or not answered: each one is a Slave the system could not hear. */
  failed: number;
  /** Time from the scheduled moment to the request leaving: the bench itself falling behind. */
  scheduleLagMs: number[];
  /** Request sent to answer read: the gateway's latency as an agent sees it. */
  requestMs: number[];
}

export class HeartbeatAgents {
  private readonly agents = new Map<string, Agent>();
  private readonly clients = new Map<string, GatewayClient>();
  private readonly limiter: Semaphore;
  private readonly connections: { http: HttpAgent; https: HttpsAgent };
  private readonly sentBy = new Map<string, number>();
  private readonly lastSentAt = new Map<string, number>();
  private readonly lastReceivedAt = new Map<string, number>();
  readonly counts: SenderCounts = { sent: 0, failed: 0, scheduleLagMs: [], requestMs: [] };
  /** Failures by kind: an HTTP refusal's code, or the client's error name. */
  readonly errors = new Map<string, number>();

  constructor(
    private readonly gatewayUrl: string,
    /** The agent token of each server, as `vms agent-token issue` gives it. */
    private readonly tokens: ReadonlyMap<string, string>,
    private readonly intervalMs: number,
    concurrency: number,
    /** No agent loops past this moment, whatever happens. */
    private readonly stopAllAtMs: number,
  ) {
    this.limiter = new Semaphore(concurrency);
    this.connections = {
      http: new HttpAgent({ keepAlive: true, maxSockets: concurrency }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: concurrency }),
    };
  }

  /** Starts the agent of a server; its first heartbeat goes at `firstAtMs`. */
  start(serverId: string, firstAtMs: number): void {
    if (this.agents.has(serverId)) return;
    const token = this.tokens.get(serverId);
    if (token === undefined) throw new Error(`no agent token was issued for ${serverId}`);
    this.clients.set(
      serverId,
      new GatewayClient({
        gateways: [this.gatewayUrl],
        token,
        timeoutMs: REQUEST_TIMEOUT_MS,
        agents: this.connections,
      }),
    );
    const agent: Agent = { stopped: false, loop: Promise.resolve() };
    agent.loop = this.runAgent(serverId, firstAtMs, agent);
    this.agents.set(serverId, agent);
  }

  /** Starts every server's agent with phases spread evenly over one interval from now. */
  startAll(serverIds: string[]): void {
    const now = Date.now();
    serverIds.forEach((serverId, index) =>
      this.start(serverId, now + Math.floor((index * this.intervalMs) / serverIds.length)),
    );
  }

  /**
   * The servers fail at the same moment: each sends a last heartbeat now, all together, then no more.
   * Their deadlines (last heartbeat + timeout) fall within the few milliseconds of this burst.
   */
  async fail(serverIds: string[]): Promise<void> {
    for (const serverId of serverIds) {
      const agent = this.agents.get(serverId);
      if (agent) agent.stopped = true;
    }
    await Promise.all(serverIds.map((serverId) => this.agents.get(serverId)?.loop ?? Promise.resolve()));
    const now = Date.now();
    await Promise.all(serverIds.map((serverId) => this.send(serverId, now)));
  }

  async stopAll(): Promise<void> {
    for (const agent of this.agents.values()) agent.stopped = true;
    await Promise.all([...this.agents.values()].map((agent) => agent.loop));
    this.connections.http.destroy();
    this.connections.https.destroy();
  }

  sentTo(serverId: string): number {
    return this.sentBy.get(serverId) ?? 0;
  }

  lastSentAtMs(serverId: string): number | undefined {
    return this.lastSentAt.get(serverId);
  }

  /** When the gateway says it received the last heartbeat it took from this server (its own clock). */
  lastReceivedAtMs(serverId: string): number | undefined {
    return this.lastReceivedAt.get(serverId);
  }

  private async runAgent(serverId: string, firstAtMs: number, agent: Agent): Promise<void> {
    let dueAtMs = firstAtMs;
    while (!agent.stopped && dueAtMs < this.stopAllAtMs) {
      const waitMs = dueAtMs - Date.now();
      if (waitMs > 0) await sleep(waitMs);
      if (agent.stopped) return;
      await this.send(serverId, dueAtMs);
      dueAtMs += this.intervalMs;
    }
  }

  private async send(serverId: string, dueAtMs: number): Promise<void> {
    const client = this.clients.get(serverId);
    if (client === undefined) throw new Error(`no agent was started for ${serverId}`);
    await this.limiter.run(async () => {
      const sentAtMs = Date.now();
      this.counts.scheduleLagMs.push(sentAtMs - dueAtMs);
      try {
        const delivery = await client.send({ serverId, sentAtMs, disks: HEALTHY_DISKS });
        this.counts.requestMs.push(Date.now() - sentAtMs);
        this.counts.sent += 1;
        this.sentBy.set(serverId, (this.sentBy.get(serverId) ?? 0) + 1);
        this.lastSentAt.set(serverId, sentAtMs);
        this.lastReceivedAt.set(serverId, delivery.receivedAtMs);
      } catch (error) {
        this.counts.failed += 1;
        const kind =
          error instanceof GatewayRefusal ? `HTTP ${error.status} ${error.code}` : (error as Error).name;
        this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
      }
    });
  }
}
