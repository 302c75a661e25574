/**
 * What the VMS says of the servers a take-over decided with others is about: its broken Slave (asked as the
 * take-over starts, so that its fence knows by then whether the VMS can reach it) and the standby it claims.
 * The servers asked about in one turn of the event loop, and those asked while that call is under way, go in
 * one call (`serverStatusesOf`, batched by infra/batches.ts): a hundred take-overs at once make a few calls,
 * not two hundred requests that each cost the VMS its own work. Only their own servers are asked about, never
 * the whole site, whose read grows with the site (10,000 servers) and not with the failures. Each answer is
 * shared by every take-over that asks about that server while it is younger than `maxAgeMs` (counted from
 * when it was asked).
 * A Slave the VMS reports it cannot reach is not asked to fence (see fenceBrokenSlave in take-over.ts).
 */
import { Batches } from '../infra/batches';
import { VmsRejected } from '../vms/control-plane';
import type { VmsControlPlane, VmsServerStatus } from '../vms/control-plane';

export class SharedStatusRead {
  private readonly reads = new Map<string, { askedAtMs: number; status: Promise<VmsServerStatus> }>();
  private readonly calls = new Batches<string, VmsServerStatus>((serverIds) => this.statusesOf(serverIds));

  constructor(
    private readonly vms: Pick<VmsControlPlane, 'serverStatusesOf'>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Asks the VMS about the server now, unless a read of it young enough is under way or done. */
  refresh(serverId: string): void {
    void this.read(serverId).catch(() => undefined);
  }

  /** Whether the VMS reports the server up; its refusal or failure to answer is the caller's to handle. */
  async isServerUp(serverId: string): Promise<boolean> {
    return (await this.read(serverId)).reachable;
  }

  /** Whether the VMS reports that it cannot reach the server; a read that failed says nothing. */
  async reportedUnreachable(serverId: string): Promise<boolean> {
    return this.read(serverId).then(
      (status) => !status.reachable,
      () => false,
    );
  }

  private read(serverId: string): Promise<VmsServerStatus> {
    const nowMs = this.now();
    for (const [id, read] of this.reads) {
      if (nowMs - read.askedAtMs > this.maxAgeMs) this.reads.delete(id);
    }
    const young = this.reads.get(serverId);
    if (young !== undefined) return young.status;
    const status = this.calls.run(serverId);
    const read = { askedAtMs: nowMs, status };
    this.reads.set(serverId, read);
    // A failed read is not shared: the next take-over to ask asks again.
    status.catch(() => {
      if (this.reads.get(serverId) === read) this.reads.delete(serverId);
    });
    return status;
  }

  /** One call for the servers asked about at once; each asker hears of its own server. */
  private async statusesOf(serverIds: string[]): Promise<(VmsServerStatus | VmsRejected)[]> {
    const statuses = new Map(
      (await this.vms.serverStatusesOf(serverIds)).map((status) => [status.serverId, status]),
    );
    return serverIds.map(
      (serverId) =>
        statuses.get(serverId) ??
        new VmsRejected('unknown-server', `the VMS does not know server ${serverId}`),
    );
  }
}
