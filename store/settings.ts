/**
 * Failover settings, maintenance windows and disk health of servers. Each change is asked for by a request
 * (a monitor's step, an operator's command): its event is recorded once per request, however often the
 * step that records it runs.
 */
import type { Pool } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import { checkProtectable } from '../domain/rules';
import type { DiskHealth, FailoverSettings } from '../domain/site';
import { withTransaction } from '../infra/database';
import { appendEvent } from './events';
import { lockServer } from './servers';

/**
 * A change asked through a Slave's monitor, which holds it in service: refused once the Slave is in Broken
 * recorders (the detector opens its failover as the deadline passes, before the monitor hears of it).
 */
export interface MonitorRequest {
  whileActive?: boolean;
}

const refuseUnlessActive = (server: { id: string; status: string }, what: string): void => {
  if (server.status !== 'active') {
    throw new DomainError(ErrorType.ServerNotActive, `"${server.id}" is in Broken recorders: ${what}`);
  }
};

export const saveSettings = (
  db: Pool,
  serverId: string,
  settings: FailoverSettings,
  requestId: string,
  { whileActive = false }: MonitorRequest = {},
): Promise<void> =>
  withTransaction(db, async (tx) => {
    const server = await lockServer(tx, serverId);
    if (whileActive) refuseUnlessActive(server, 'its settings cannot change now');
    checkProtectable(server, settings);
    if (server.settings.protected === settings.protected && server.settings.timeoutMs === settings.timeoutMs)
      return;
    await tx.query(
      'UPDATE servers SET protected = $2, failover_timeout_ms = $3, updated_at = now() WHERE id = $1',
      [serverId, settings.protected, settings.timeoutMs],
    );
    await appendEvent(tx, { serverId, event: 'settings-changed', details: { ...settings }, requestId });
  });

export const saveMaintenance = (
  db: Pool,
  serverId: string,
  untilMs: number | null,
  requestId: string,
  { whileActive = false }: MonitorRequest = {},
): Promise<void> =>
  withTransaction(db, async (tx) => {
    const server = await lockServer(tx, serverId);
    if (whileActive) refuseUnlessActive(server, 'no maintenance window can start');
    await tx.query(
      'UPDATE servers SET maintenance_until = to_timestamp($2 / 1000.0), updated_at = now() WHERE id = $1',
      [serverId, untilMs],
    );
    if (untilMs !== null) {
      await appendEvent(tx, {
        serverId,
        event: 'maintenance-started',
        details: { until: new Date(untilMs).toISOString() },
        requestId,
      });
    }
  });

/** Records the health of the disks a heartbeat reported; letters the site does not know are ignored. */
export const saveDiskHealth = (
  db: Pool,
  serverId: string,
  disks: DiskHealth[],
  requestId: string,
): Promise<void> =>
  withTransaction(db, async (tx) => {
    await tx.query(
      `UPDATE drives d SET healthy = r.healthy, checked_at = now()
         FROM unnest($2::text[], $3::boolean[]) AS r(letter, healthy)
        WHERE d.server_id = $1 AND d.letter = r.letter`,
      [serverId, disks.map((disk) => disk.letter), disks.map((disk) => disk.healthy)],
    );
    const broken = disks.filter((disk) => !disk.healthy).map((disk) => disk.letter);
    if (broken.length > 0) {
      await appendEvent(tx, {
        serverId,
        event: 'disks-degraded',
        details: { brokenDisks: broken },
        requestId,
      });
    }
  });
