/** Heartbeats as a Slave's agent sends them, and the disk health they carry. */
import type { Fleet } from '../../app/fleet';
import type { DiskHealth } from '../../domain/site';

export const healthy = (...letters: string[]): DiskHealth[] =>
  letters.map((letter) => ({ letter, healthy: true }));
export const broken = (...letters: string[]): DiskHealth[] =>
  letters.map((letter) => ({ letter, healthy: false }));

/** A heartbeat of `serverId` sent now, with the disk health given (none by default). */
export const heartbeat = (fleet: Fleet, serverId: string, disks: DiskHealth[] = []) =>
  fleet.sendHeartbeat({ serverId, sentAtMs: Date.now(), disks });

/**
 * Fails a Slave over at once: a heartbeat reporting all its material disks broken (D and E, the material
 * drives of test/support/site.ts). Its timeout, however long, does not delay it.
 */
export const breakAllDisks = (fleet: Fleet, serverId: string) => heartbeat(fleet, serverId, broken('D', 'E'));
