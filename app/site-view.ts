/**
 * What PostgreSQL records of the site, as the CLI shows it: servers, cameras, failovers and their events, and
 * which Slaves may be monitored (the rule the Fleet applies). Reads only: no Temporal connection needed.
 */
import { isMonitorable } from '../domain/rules';
import type { Queryable } from '../infra/database';
import type { Alert } from '../store/alerts';
import { listAlerts } from '../store/alerts';
import type { DetectorTerm } from '../store/detector-term';
import { currentTerm } from '../store/detector-term';
import { listEvents } from '../store/events';
import type { Hold } from '../store/holds';
import { findOpenHold } from '../store/holds';
import type { StoredLease } from '../store/leases';
import { readLeases } from '../store/leases';
import type { FailoverEventRecord } from '../store/events';
import { listFailovers } from '../store/failovers';
import type { FailoverRecord } from '../store/failovers';
import { getServer, listCameras, listServers } from '../store/servers';
import type { CameraRecord, ServerRecord } from '../store/servers';

export class SiteView {
  constructor(private readonly db: Queryable) {}

  /** The server; an unknown id is refused (UnknownServer). */
  server(serverId: string): Promise<ServerRecord> {
    return getServer(this.db, serverId);
  }

  servers(): Promise<ServerRecord[]> {
    return listServers(this.db);
  }

  cameras(): Promise<CameraRecord[]> {
    return listCameras(this.db);
  }

  /** The Slaves whose monitor may run: active and protected. */
  async monitorableSlaveIds(): Promise<string[]> {
    return (await this.servers()).filter(isMonitorable).map((server) => server.id);
  }

  /** Failovers of the server (as the broken Slave or the promoted standby), or all of them, oldest first. */
  failovers(serverId?: string): Promise<FailoverRecord[]> {
    return listFailovers(this.db, serverId);
  }

  /** The latest `limit` events concerning the server, or all servers, oldest first. */
  events(serverId: string | undefined, limit: number): Promise<FailoverEventRecord[]> {
    return listEvents(this.db, serverId, limit);
  }

  /** What the gateways last heard of each server (written once a lease-write interval). */
  leases(): Promise<StoredLease[]> {
    return readLeases(this.db);
  }

  /** The liveness detector's current term: who leads, since when it observes, when it last renewed. */
  detector(): Promise<DetectorTerm | undefined> {
    return currentTerm(this.db);
  }

  openHold(): Promise<Hold | undefined> {
    return findOpenHold(this.db);
  }

  alerts(): Promise<Alert[]> {
    return listAlerts(this.db);
  }
}
