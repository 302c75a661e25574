/** Disk health as the heartbeat agent reports it: stated by the operator or checked on the file system. */
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import type { DiskHealth } from '../domain/site';

/**
 * A recording drive is healthy when its mount point exists, is writable and its file system answers.
 * Any error (missing mount, read-only remount after I/O errors, dead device) means broken.
 */
export const isDriveHealthy = async (path: string): Promise<boolean> => {
  try {
    await access(path, constants.W_OK);
    const stats = await statfs(path);
    return stats.blocks > 0;
  } catch {
    return false;
  }
};

export const checkDrives = (mounts: ReadonlyMap<string, string>): Promise<DiskHealth[]> =>
  Promise.all([...mounts].map(async ([letter, path]) => ({ letter, healthy: await isDriveHealthy(path) })));

export const statedDisks = (states: ReadonlyMap<string, boolean>): DiskHealth[] =>
  [...states].map(([letter, healthy]) => ({ letter, healthy }));
