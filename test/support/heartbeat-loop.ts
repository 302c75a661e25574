/** Agents that keep heartbeating in the background, as they do on a site, until a test stops them. */
import type { DiskHealth } from '../../domain/site';
import type { TestAgents } from './agents';

export interface HeartbeatLoop {
  /** Stops the agent of one server (it goes silent), or of every server. */
  stop(serverId?: string): Promise<void>;
  /** When the agent's last heartbeat was taken by a gateway. */
  lastDeliveredAt(serverId: string): number | undefined;
  delivered(serverId: string): number;
  /** Heartbeats no gateway took (outages of the gateways are expected to cause some). */
  failures(): number;
}

export const keepHeartbeating = (
  agents: TestAgents,
  serverIds: string[],
  intervalMs: number,
  disks: DiskHealth[] = [],
): HeartbeatLoop => {
  const running = new Map<string, { stopped: boolean; loop: Promise<void> }>();
  const lastDelivered = new Map<string, number>();
  const deliveredCount = new Map<string, number>();
  let failures = 0;
  for (const [index, serverId] of serverIds.entries()) {
    const agent = { stopped: false, loop: Promise.resolve() };
    agent.loop = (async () => {
      // Phases spread over the interval, as on a real site.
      await new Promise((resolve) => setTimeout(resolve, (index * intervalMs) / serverIds.length));
      while (!agent.stopped) {
        const startedAt = Date.now();
        try {
          await agents.heartbeat(serverId, disks);
          lastDelivered.set(serverId, Date.now());
          deliveredCount.set(serverId, (deliveredCount.get(serverId) ?? 0) + 1);
        } catch {
          failures += 1;
        }
        const waitMs = startedAt + intervalMs - Date.now();
        if (waitMs > 0 && !agent.stopped) await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    })();
    running.set(serverId, agent);
  }
  return {
    stop: async (serverId) => {
      const stopping = serverId === undefined ? [...running.values()] : [running.get(serverId)];
      const loops: Promise<void>[] = [];
      for (const agent of stopping) {
        if (agent === undefined) continue;
        agent.stopped = true;
        loops.push(agent.loop);
      }
      await Promise.all(loops);
    },
    lastDeliveredAt: (serverId) => lastDelivered.get(serverId),
    delivered: (serverId) => deliveredCount.get(serverId) ?? 0,
    failures: () => failures,
  };
};
