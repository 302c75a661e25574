/** Server leases: what the gateways last heard of each server, written in batches. */
import type { DiskHealth } from '../domain/site';
import type { Queryable } from '../infra/database';

export interface StoredLease {
  serverId: string;
  lastSeenMs: number;
  sentAtMs: number | null;
  disks: DiskHealth[];
  intervalMs: number | null;
  heardBy: string;
}

interface LeaseRow {
  server_id: string;
  last_seen_at: Date;
  sent_at: Date | null;
  disks: DiskHealth[];
  interval_ms: number | null;
  heard_by: string;
}

const SELECT_LEASES =
  'SELECT server_id, last_seen_at, sent_at, disks, interval_ms, heard_by FROM server_leases';

const toStoredLease = (row: LeaseRow): StoredLease => ({
  serverId: row.server_id,
  lastSeenMs: row.last_seen_at.getTime(),
  sentAtMs: row.sent_at?.getTime() ?? null,
  disks: row.disks,
  intervalMs: row.interval_ms,
  heardBy: row.heard_by,
});

/**
 * One statement for every lease heard since the last write. A row only moves forward: a late write of an
 * older observation (another gateway, a retried batch) never hides a newer one.
 */
export const writeLeases = async (db: Queryable, leases: StoredLease[]): Promise<void> => {
  if (leases.length === 0) return;
  await db.query(
    `INSERT INTO server_leases (server_id, last_seen_at, sent_at, disks, interval_ms, heard_by)
     SELECT l.server_id, to_timestamp(l.last_seen_ms / 1000.0), to_timestamp(l.sent_at_ms / 1000.0),
            l.disks::jsonb, l.interval_ms, l.heard_by
       FROM unnest($1::text[], $2::float8[], $3::float8[], $4::text[], $5::int[], $6::text[])
            AS l(server_id, last_seen_ms, sent_at_ms, disks, interval_ms, heard_by)
     ON CONFLICT (server_id) DO UPDATE
        SET last_seen_at = excluded.last_seen_at, sent_at = excluded.sent_at, disks = excluded.disks,
            interval_ms = excluded.interval_ms, heard_by = excluded.heard_by, written_at = now()
      WHERE server_leases.last_seen_at < excluded.last_seen_at`,
    [
      leases.map((lease) => lease.serverId),
      leases.map((lease) => lease.lastSeenMs),
      leases.map((lease) => lease.sentAtMs),
      leases.map((lease) => JSON.stringify(lease.disks)),
      leases.map((lease) => lease.intervalMs),
      leases.map((lease) => lease.heardBy),
    ],
  );
};

export const readLeases = async (db: Queryable, serverIds?: string[]): Promise<StoredLease[]> => {
  const { rows } =
    serverIds === undefined
      ? await db.query<LeaseRow>(`${SELECT_LEASES} ORDER BY server_id`)
      : await db.query<LeaseRow>(`${SELECT_LEASES} WHERE server_id = ANY($1) ORDER BY server_id`, [
          serverIds,
        ]);
  return rows.map(toStoredLease);
};

/** Leases other gateways wrote lately (a short look-back covers commits that landed out of order). */
export const leasesWrittenByOthers = async (
  db: Queryable,
  instance: string,
  lookBackMs: number,
): Promise<StoredLease[]> => {
  const { rows } = await db.query<LeaseRow>(
    `${SELECT_LEASES} WHERE heard_by <> $1 AND written_at > now() - make_interval(secs => $2 / 1000.0)`,
    [instance, lookBackMs],
  );
  return rows.map(toStoredLease);
};
