/** Heartbeats as a Slave's agent sends them, and the disk health they carry. */
import type { DiskHealth } from '../../domain/site';
import type { TestAgents } from './agents';

export const healthy = (...letters: string[]): DiskHealth[] =>
  letters.map((letter) => ({ letter, healthy: true }));
export const broken = (...letters: string[]): DiskHealth[] =>
  letters.map((letter) => ({ letter, healthy: false }));

/** A heartbeat of `serverId` sent now to the gateway, with the disk health given (none by default). */
export const heartbeat = (agents: TestAgents, serverId: string, disks: DiskHealth[] = []) =>
  agents.heartbeat(serverId, disks);

/**
 * Fails a Slave over at once: a heartbeat reporting all its material disks broken (D and E, the material
 * drives of test/support/site.ts). Its timeout, however long, does not delay it.
 */
export const breakAllDisks = (agents: TestAgents, serverId: string) =>
  heartbeat(agents, serverId, broken('D', 'E'));
