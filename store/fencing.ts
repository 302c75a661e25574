/**
 * Fencing of broken Slaves: whether each failover stopped its Slave recording in the VMS before the cameras
 * moved, and which fences are still to repeat (the VMS could not reach the Slave then).
 */
import { DomainError, ErrorType } from '../domain/errors';
import { preparedStatement, queryPrepared } from '../infra/database';
import type { Queryable } from '../infra/database';
import { raiseAlertFrom } from './alerts';
import { appendEventFrom } from './events';

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

const FENCE_TARGET_SQL = 'SELECT slave_id, slave_fence FROM failovers WHERE id = $1';
export const FENCE_TARGET = preparedStatement('fence-target', FENCE_TARGET_SQL);

export const fenceTarget = async (db: Queryable, failoverId: string): Promise<FenceTarget> => {
  const { rows } = await queryPrepared<{ slave_id: string; slave_fence: SlaveFence | null }>(
    db,
    FENCE_TARGET,
    [failoverId],
  );
  const row = rows[0];
  if (row === undefined) throw new DomainError(ErrorType.InvalidInput, `unknown failover "${failoverId}"`);
  return { failoverId, slaveId: row.slave_id, fence: row.slave_fence };
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

const RECORD_FENCE = `
  fence AS (
    UPDATE failovers SET slave_fence = $2, slave_fenced_at = CASE WHEN $2 = 'fenced' THEN now() END
     WHERE id = $1 AND slave_fence IS DISTINCT FROM 'fenced' AND slave_fence IS DISTINCT FROM 'not-recording'
    RETURNING id AS failover_id, slave_id AS server_id, $3::jsonb AS details
  )`;
const RECORD_SETTLED_FENCE_SQL = `
  WITH ${RECORD_FENCE}, recorded AS (${appendEventFrom('fence', 'slave-fenced')})
  SELECT 1 FROM fence`;
export const RECORD_SETTLED_FENCE = preparedStatement('record-settled-fence', RECORD_SETTLED_FENCE_SQL);
/** A fence that did not settle raises its alert in the same statement. */
const RECORD_UNSETTLED_FENCE_SQL = `
  WITH ${RECORD_FENCE}, recorded AS (${appendEventFrom('fence', 'slave-not-fenced')}),
  alert AS (
    SELECT failover_id || ':fencing-failed' AS alert_id, 'fencing-failed' AS kind, server_id,
           $4::text AS message, jsonb_build_object('failoverId', failover_id) || details AS details
      FROM fence
  ), raised AS (${raiseAlertFrom('alert')})
  SELECT 1 FROM fence`;
export const RECORD_UNSETTLED_FENCE = preparedStatement('record-unsettled-fence', RECORD_UNSETTLED_FENCE_SQL);

/**
 * Records what a fence came to, in one statement. A fence that succeeded stays recorded whatever a later
 * attempt says; one that did not raises an alert (once per failover): the Slave may still record its cameras
 * next to the promoted server until it is fenced, demoted or switched off.
 */
export const recordFence = async (
  db: Queryable,
  input: { failoverId: string; slaveId: string; fence: SlaveFence; error?: string },
): Promise<SlaveFence> => {
  const { failoverId, slaveId, fence } = input;
  const settled = isFenceSettled(fence);
  const details = settled ? { fence } : { fence, error: input.error ?? null };
  const message =
    fence === 'unreachable'
      ? `${slaveId} could not be fenced: the VMS cannot reach it. It may record its cameras next to ` +
        'the promoted server; the fence is repeated when it is heard again.'
      : `${slaveId} could not be fenced: the VMS refused (${input.error ?? 'no reason given'}).`;
  const { rowCount } = await queryPrepared(db, settled ? RECORD_SETTLED_FENCE : RECORD_UNSETTLED_FENCE, [
    failoverId,
    fence,
    details,
    ...(settled ? [] : [message]),
  ]);
  if (rowCount === 0) return (await fenceTarget(db, failoverId)).fence ?? fence;
  return fence;
};
