/**
 * The heartbeat agents of the simulated Slaves, all in the bench process: each Slave sends a heartbeat
 * signal every interval, phases spread evenly over the interval, at most `concurrency` signals in flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Fleet } from '../app/fleet';
import { Semaphore } from '../infra/limit';

const HEALTHY_DISKS = [
  { letter: 'C', healthy: true },
  { letter: 'D', healthy: true },
  { letter: 'E', healthy: true },
];

interface Agent {
  stopped: boolean;
  loop: Promise<void>;
}

export interface SenderCounts {
  sent: number;
  failed: number;
  /** Time from the scheduled moment to the signal being sent: the bench itself falling behind. */
  scheduleLagMs: number[];
  /** Time for the server to accept a signal. */
  ackMs: number[];
}

export class HeartbeatSenders {
  private readonly agents = new Map<string, Agent>();
  private readonly limiter: Semaphore;
  private readonly sentBy = new Map<string, number>();
  private readonly lastSentAt = new Map<string, number>();
  readonly counts: SenderCounts = { sent: 0, failed: 0, scheduleLagMs: [], ackMs: [] };
  readonly errors = new Map<string, number>();

  constructor(
    private readonly fleet: Fleet,
    private readonly intervalMs: number,
    concurrency: number,
    /** No agent loops past this moment, whatever happens. */
    private readonly stopAllAtMs: number,
  ) {
    this.limiter = new Semaphore(concurrency);
  }

  /** Starts the agent of a Slave; its first heartbeat goes at `firstAtMs`. */
  start(serverId: string, firstAtMs: number): void {
    if (this.agents.has(serverId)) return;
    const agent: Agent = { stopped: false, loop: Promise.resolve() };
    agent.loop = this.runAgent(serverId, firstAtMs, agent);
    this.agents.set(serverId, agent);
  }

  /** Starts every Slave's agent with phases spread evenly over one interval from now. */
  startAll(serverIds: string[]): void {
    const now = Date.now();
    serverIds.forEach((serverId, index) =>
      this.start(serverId, now + Math.floor((index * this.intervalMs) / serverIds.length)),
    );
  }

  /**
   * The Slaves fail at the same moment: each sends a last heartbeat now, all together, then no more.
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
  }

  sentTo(serverId: string): number {
    return this.sentBy.get(serverId) ?? 0;
  }

  lastSentAtMs(serverId: string): number | undefined {
    return this.lastSentAt.get(serverId);
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
    await this.limiter.run(async () => {
      const sentAtMs = Date.now();
      this.counts.scheduleLagMs.push(sentAtMs - dueAtMs);
      try {
        await this.fleet.sendHeartbeat({ serverId, sentAtMs, disks: HEALTHY_DISKS });
        this.counts.ackMs.push(Date.now() - sentAtMs);
        this.counts.sent += 1;
        this.sentBy.set(serverId, (this.sentBy.get(serverId) ?? 0) + 1);
        this.lastSentAt.set(serverId, sentAtMs);
      } catch (error) {
        this.counts.failed += 1;
        const type = (error as { type?: string }).type ?? (error as Error).name;
        this.errors.set(type, (this.errors.get(type) ?? 0) + 1);
      }
    });
  }
}
