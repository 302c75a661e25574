/**
 * Whether the VMS reports standbys up, for take-overs decided together: one read of every server's status
 * shared by all of them, instead of one call each. A hundred Slaves failing at once ask the VMS once, and each
 * take-over finds its answer read while its claim was being made. A read is shared while it is younger than
 * `maxAgeMs` (counted from when it was asked); a server it does not hold, or a read that failed, is asked
 * about alone, as a take-over decided alone always is. The same read tells which broken Slaves the VMS cannot
 * reach: their fence is not asked for (see fenceBrokenSlave in take-over.ts).
 */
import type { VmsControlPlane } from '../vms/control-plane';

export class SharedStatusRead {
  private read: { askedAtMs: number; reachable: Promise<Map<string, boolean> | undefined> } | undefined;

  constructor(
    private readonly vms: Pick<VmsControlPlane, 'serverStatus' | 'isServerUp'>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Asks the VMS now, unless a read young enough is under way or done. */
  refresh(): void {
    const nowMs = this.now();
    if (this.read !== undefined && nowMs - this.read.askedAtMs <= this.maxAgeMs) return;
    this.read = {
      askedAtMs: nowMs,
      reachable: this.vms.serverStatus().then(
        (servers) => new Map(servers.map((server) => [server.serverId, server.reachable])),
        () => undefined,
      ),
    };
  }

  async isServerUp(serverId: string): Promise<boolean> {
    return (await this.reachability())?.get(serverId) ?? this.vms.isServerUp(serverId);
  }

  /** Whether the shared read holds the server as one the VMS cannot reach; never asks about it alone. */
  async reportedUnreachable(serverId: string): Promise<boolean> {
    return (await this.reachability())?.get(serverId) === false;
  }

  /** Each server's reachability from a read young enough (asked now if none is); undefined if it failed. */
  private async reachability(): Promise<Map<string, boolean> | undefined> {
    this.refresh();
    return this.read?.reachable;
  }
}
