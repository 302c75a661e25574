/**
 * Standby health: a standby that fails a failover (the VMS reports it down when claimed, or cannot reach it
 * for longer than the standby budget) is released and taken out of service; an operator puts it back.
 */
import type { Pool, PoolClient } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import { preparedStatement, queryPrepared, withTransaction } from '../infra/database';
import type { Queryable } from '../infra/database';
import { raiseAlert } from './alerts';
import { appendEvent } from './events';
import { claimSubject, unknownFailover } from './failovers';
import { lockServer } from './servers';

/**
 * Notes that the VMS could not reach the failover's claimed standby, and returns for how long it has not
 * (0 on the first such answer). The count starts again with every standby claimed.
 */
export const standbyUnreachableForMs = async (db: Queryable, failoverId: string): Promise<number> => {
  const { rows } = await db.query<{ failing_for_ms: number }>(
    `UPDATE failovers SET standby_failing_since = coalesce(standby_failing_since, now()) WHERE id = $1
     RETURNING (extract(epoch FROM now() - standby_failing_since) * 1000)::float8 AS failing_for_ms`,
    [failoverId],
  );
  return rows[0]?.failing_for_ms ?? 0;
};

const takeOutOfService = async (
  tx: PoolClient,
  input: { failoverId: string; slaveId: string; serverId: string; reason: string; subject: string },
): Promise<void> => {
  const { failoverId, slaveId, serverId, reason, subject } = input;
  await tx.query(
    `UPDATE servers SET out_of_service_since = coalesce(out_of_service_since, now()),
            out_of_service_reason = coalesce(out_of_service_reason, $2), updated_at = now()
      WHERE id = $1`,
    [serverId, reason],
  );
  await appendEvent(tx, {
    serverId,
    failoverId,
    event: 'standby-out-of-service',
    details: { slaveId, reason },
    subject,
  });
  await raiseAlert(tx, {
    id: `${failoverId}:${subject}:out-of-service`,
    kind: 'standby-out-of-service',
    serverId,
    message:
      `standby ${serverId} failed the failover of ${slaveId} and is out of service: ${reason}. ` +
      `Repair it, then: vms standby in-service ${serverId}`,
    details: { failoverId, slaveId, reason },
  });
};

/**
 * Gives up the failover's claimed standby: it is no longer promoted nor claimed in PostgreSQL, and out of
 * service; the failover claims again. Refused once the cameras moved to it (recording is restored there). A
 * second run, or a run for a standby the failover no longer holds, changes nothing.
 */
export const releaseFailedStandby = (
  db: Pool,
  input: { failoverId: string; serverId: string; reason: string },
): Promise<void> =>
  withTransaction(db, async (tx) => {
    const { failoverId, serverId, reason } = input;
    const { rows } = await tx.query<{
      slave_id: string;
      failover_server_id: string | null;
      cameras_committed_at: Date | null;
    }>('SELECT slave_id, failover_server_id, cameras_committed_at FROM failovers WHERE id = $1 FOR UPDATE', [
      failoverId,
    ]);
    const failover = rows[0];
    if (failover === undefined) throw unknownFailover(failoverId);
    if (failover.failover_server_id !== serverId) return;
    if (failover.cameras_committed_at !== null) {
      throw new DomainError(
        ErrorType.InvalidInput,
        `failover "${failoverId}" moved its cameras to ${serverId} already: it keeps them`,
      );
    }
    await lockServer(tx, serverId);
    const subject = await claimSubject(tx, failoverId, serverId);
    await tx.query(
      `UPDATE servers SET role = 'failover', status = 'standby', protected = false, replaces_server_id = NULL,
              silence_from = NULL, updated_at = now()
        WHERE id = $1`,
      [serverId],
    );
    await tx.query(
      `UPDATE failovers SET status = 'started', failover_server_id = NULL, standby_failing_since = NULL
        WHERE id = $1`,
      [failoverId],
    );
    await appendEvent(tx, {
      serverId: failover.slave_id,
      failoverId,
      event: 'standby-released',
      details: { failoverServerId: serverId, reason },
      subject,
    });
    await takeOutOfService(tx, { failoverId, slaveId: failover.slave_id, serverId, reason, subject });
  });

/** Puts a standby back in service; returns whether it was out of service. Only failover servers have one. */
export const putInService = (db: Pool, serverId: string, by: string): Promise<boolean> =>
  withTransaction(db, async (tx) => {
    const server = await lockServer(tx, serverId);
    if (server.role !== 'failover') {
      throw new DomainError(ErrorType.InvalidInput, `"${serverId}" is not a failover server`);
    }
    if (server.outOfService === null) return false;
    await tx.query(
      `UPDATE servers SET out_of_service_since = NULL, out_of_service_reason = NULL, updated_at = now()
        WHERE id = $1`,
      [serverId],
    );
    await appendEvent(tx, {
      serverId,
      event: 'standby-in-service',
      details: { by, outOfServiceSince: new Date(server.outOfService.sinceMs).toISOString() },
      // Once per time out of service.
      requestId: `out-of-service@${new Date(server.outOfService.sinceMs).toISOString()}`,
    });
    return true;
  });

const STALE_AGENT_LAST_SEEN_SQL = `
  SELECT s.id, l.last_seen_at FROM servers s JOIN server_leases l ON l.server_id = s.id
   WHERE s.id = ANY($1) AND s.liveness_source IN ('agent', 'both')
     AND (s.lease_valid_from IS NULL OR l.last_seen_at >= s.lease_valid_from)
     AND l.last_seen_at < now() - make_interval(secs => s.failover_timeout_ms / 1000.0)`;
export const STALE_AGENT_LAST_SEEN = preparedStatement('stale-agent-last-seen', STALE_AGENT_LAST_SEEN_SQL);

/**
 * When each standby's agent was last heard, for those heard longer ago than their failover timeout: an agent
 * gone silent says the standby may be gone too. A standby heard through the VMS only, never heard by an agent
 * (many standbys run none) since its restore, or heard lately is left out.
 */
export const staleAgentsLastSeen = async (
  db: Queryable,
  serverIds: readonly string[],
): Promise<Map<string, Date>> => {
  const { rows } = await queryPrepared<{ id: string; last_seen_at: Date }>(db, STALE_AGENT_LAST_SEEN, [
    serverIds,
  ]);
  return new Map(rows.map((row) => [row.id, row.last_seen_at]));
};
