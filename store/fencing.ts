/**
 * Fencing of broken Slaves: whether each failover stopped its Slave recording in the VMS before the cameras
 * moved, and which fences are still to repeat (the VMS could not reach the Slave then).
 */
import { DomainError } from '../domain/errors';
import { preparedStatement, queryPrepared } from '../infra/database';
import type { Queryable } from '../infra/database';
import { raiseAlertFrom } from './alerts';
import { appendEventFrom } from './events';
import { unknownFailover } from './failovers';

/**
 * 'fenced': it records nothing; 'not-recording': the VMS does not hold it as a recorder, nothing to stop;
 * 'unreachable': to repeat once it is heard again; 'refused': the VMS refused for another reason.
 */
export type SlaveFence = 'fenced' | 'not-recording' | 'unreachable' | 'refused';

/** Whether the Slave is known to record nothing any more. */
export const isFenceSettled = (fence: SlaveFence | null): fence is 'fenced' | 'not-recording' =>
  fence === 'fenced' || fence === 'not-recording';

export interface FenceTarget {
  failoverId: string;
  slaveId: string;
  fence: SlaveFence | null;
}

const FENCE_TARGETS_SQL = 'SELECT id, slave_id, slave_fence FROM failovers WHERE id = ANY($1)';
export const FENCE_TARGETS = preparedStatement('fence-targets', FENCE_TARGETS_SQL);

/** Each failover's Slave and its fence so far, in one statement; a failover that does not exist, an error. */
export const fenceTargets = async (
  db: Queryable,
  failoverIds: readonly string[],
): Promise<(FenceTarget | DomainError)[]> => {
  const { rows } = await queryPrepared<{ id: string; slave_id: string; slave_fence: SlaveFence | null }>(
    db,
    FENCE_TARGETS,
    [failoverIds],
  );
  const found = new Map(rows.map((row) => [row.id, row]));
  return failoverIds.map((failoverId) => {
    const row = found.get(failoverId);
    if (row === undefined) return unknownFailover(failoverId);
    return { failoverId, slaveId: row.slave_id, fence: row.slave_fence };
  });
};

/** The latest failover of a server whose fence is still to repeat, if any. */
export const pendingFenceOf = async (db: Queryable, serverId: string): Promise<FenceTarget | undefined> => {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM failovers WHERE slave_id = $1 AND slave_fence = 'unreachable'
      ORDER BY started_at DESC, id DESC LIMIT 1`,
    [serverId],
  );
  const row = rows[0];
  return row && { failoverId: row.id, slaveId: serverId, fence: 'unreachable' };
};

/**
 * One statement for fences of several failovers: a fence that did not settle raises its alert. A fence that
 * succeeded stays recorded whatever a later attempt says.
 */
const RECORD_FENCES_SQL = `
  WITH outcome AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[]) AS o (failover_id, fence, details, message)
  ), fence AS (
    UPDATE failovers SET slave_fence = outcome.fence,
           slave_fenced_at = CASE WHEN outcome.fence = 'fenced' THEN now() END
      FROM outcome
     WHERE failovers.id = outcome.failover_id
       AND slave_fence IS DISTINCT FROM 'fenced' AND slave_fence IS DISTINCT FROM 'not-recording'
    RETURNING failovers.id AS failover_id, failovers.slave_id AS server_id, outcome.fence, outcome.details,
              outcome.message
  ), settled AS (
    SELECT * FROM fence WHERE fence IN ('fenced', 'not-recording')
  ), unsettled AS (
    SELECT * FROM fence WHERE fence NOT IN ('fenced', 'not-recording')
  ), settled_recorded AS (${appendEventFrom('settled', 'slave-fenced')}),
  unsettled_recorded AS (${appendEventFrom('unsettled', 'slave-not-fenced')}),
  alert AS (
    SELECT failover_id || ':fencing-failed' AS alert_id, 'fencing-failed' AS kind, server_id, message,
           jsonb_build_object('failoverId', failover_id) || details AS details
      FROM unsettled
  ), raised AS (${raiseAlertFrom('alert')})
  SELECT failover_id FROM fence`;
export const RECORD_FENCES = preparedStatement('record-fences', RECORD_FENCES_SQL);

/** What came of asking the VMS to fence a failover's Slave. */
export interface FenceOutcome {
  failoverId: string;
  slaveId: string;
  fence: SlaveFence;
  error?: string;
}

/** The alert of a fence that did not settle. */
const unsettledMessage = ({ slaveId, fence, error }: FenceOutcome): string =>
  fence === 'unreachable'
    ? `${slaveId} could not be fenced: the VMS cannot reach it. It may record its cameras next to ` +
      'the promoted server; the fence is repeated when it is heard again.'
    : `${slaveId} could not be fenced: the VMS refused (${error ?? 'no reason given'}).`;

/**
 * Records what fences came to, in one statement, and answers each failover's fence as it stands: a fence that
 * succeeded before stays. One that did not settle raises an alert (once per failover): the Slave may still
 * record its cameras next to the promoted server until it is fenced, demoted or switched off.
 */
export const recordFences = async (
  db: Queryable,
  outcomes: readonly FenceOutcome[],
): Promise<(SlaveFence | DomainError)[]> => {
  // One outcome per failover, a settled one first: two fences of one failover in a batch record what stays.
  const byFailover = new Map<string, FenceOutcome>();
  for (const outcome of outcomes) {
    const kept = byFailover.get(outcome.failoverId);
    if (kept === undefined || (!isFenceSettled(kept.fence) && isFenceSettled(outcome.fence))) {
      byFailover.set(outcome.failoverId, outcome);
    }
  }
  const recording = [...byFailover.values()];
  const { rows } = await queryPrepared<{ failover_id: string }>(db, RECORD_FENCES, [
    recording.map((outcome) => outcome.failoverId),
    recording.map((outcome) => outcome.fence),
    recording.map((outcome) =>
      isFenceSettled(outcome.fence)
        ? { fence: outcome.fence }
        : { fence: outcome.fence, error: outcome.error ?? null },
    ),
    recording.map((outcome) => (isFenceSettled(outcome.fence) ? null : unsettledMessage(outcome))),
  ]);
  const recorded = new Set(rows.map((row) => row.failover_id));
  const others = recording.filter((outcome) => !recorded.has(outcome.failoverId));
  const othersNow =
    others.length === 0
      ? []
      : await fenceTargets(
          db,
          others.map((outcome) => outcome.failoverId),
        );
  const standing = new Map<string, SlaveFence | DomainError>(
    recording.map((outcome) => [outcome.failoverId, outcome.fence]),
  );
  othersNow.forEach((target, index) => {
    const outcome = others[index];
    if (outcome === undefined) return;
    standing.set(
      outcome.failoverId,
      target instanceof DomainError ? target : (target.fence ?? outcome.fence),
    );
  });
  // Each caller hears the fence as it stands, whichever outcome of its failover was recorded.
  return outcomes.map((outcome) => standing.get(outcome.failoverId) ?? outcome.fence);
};
