/**
 * The statements of a take-over, planned on every connection of a worker's pool as it starts. A PostgreSQL
 * backend fills its catalog caches the first time a statement touches a table, an index or a function: the
 * first take-over on each connection planned its statements several times slower than later ones (the
 * opening statement: about 15 ms against 2 on an idle machine), and a burst of failovers right after a start
 * spread over every connection paid it all at once (docs/benchmark.md). EXPLAIN plans a statement without
 * running it: nothing changes.
 */
import type { Pool, PoolClient } from 'pg';
import {
  ATTEMPT_CLAIM_SQL,
  COMMIT_CAMERA_MOVE_SQL,
  IP_CAMERAS_TO_MOVE_SQL,
  OPEN_FAILOVERS_OF_SLAVE_SQL,
  OPEN_FAILOVER_SQL,
  RECORD_PROMOTION_SQL,
} from './failovers';
import { FENCE_TARGET_SQL, RECORD_SETTLED_FENCE_SQL, RECORD_UNSETTLED_FENCE_SQL } from './fencing';
import { LIVENESS_RECORD_SQL } from './monitoring';
import { LOCK_SERVER_SQL } from './servers';
import { STALE_AGENT_LAST_SEEN_SQL } from './standbys';

const NO_ID = '(planned only)';

// Each statement of a take-over, in the order a take-over runs them, planned with values of the types it takes.
const EXPLAIN_LOCK_SERVER = `EXPLAIN ${LOCK_SERVER_SQL}`;
const EXPLAIN_OPEN_FAILOVERS_OF_SLAVE = `EXPLAIN ${OPEN_FAILOVERS_OF_SLAVE_SQL}`;
const EXPLAIN_LIVENESS_RECORD = `EXPLAIN ${LIVENESS_RECORD_SQL}`;
const EXPLAIN_OPEN_FAILOVER = `EXPLAIN ${OPEN_FAILOVER_SQL}`;
const EXPLAIN_ATTEMPT_CLAIM = `EXPLAIN ${ATTEMPT_CLAIM_SQL}`;
const EXPLAIN_STALE_AGENT_LAST_SEEN = `EXPLAIN ${STALE_AGENT_LAST_SEEN_SQL}`;
const EXPLAIN_RECORD_PROMOTION = `EXPLAIN ${RECORD_PROMOTION_SQL}`;
const EXPLAIN_FENCE_TARGET = `EXPLAIN ${FENCE_TARGET_SQL}`;
const EXPLAIN_RECORD_SETTLED_FENCE = `EXPLAIN ${RECORD_SETTLED_FENCE_SQL}`;
const EXPLAIN_RECORD_UNSETTLED_FENCE = `EXPLAIN ${RECORD_UNSETTLED_FENCE_SQL}`;
const EXPLAIN_IP_CAMERAS_TO_MOVE = `EXPLAIN ${IP_CAMERAS_TO_MOVE_SQL}`;
const EXPLAIN_COMMIT_CAMERA_MOVE = `EXPLAIN ${COMMIT_CAMERA_MOVE_SQL}`;

/** Plans them on one connection; answers each by name, and whether it could be planned. */
const planOn = async (client: PoolClient): Promise<[string, boolean][]> => {
  const planned = async (name: string, explained: Promise<unknown>): Promise<[string, boolean]> =>
    explained.then(
      () => [name, true],
      () => [name, false],
    );
  // One after the other: a connection runs one query at a time.
  return [
    await planned('lock the server', client.query(EXPLAIN_LOCK_SERVER, [NO_ID])),
    await planned('failovers of the Slave', client.query(EXPLAIN_OPEN_FAILOVERS_OF_SLAVE, [NO_ID, NO_ID])),
    await planned('liveness record', client.query(EXPLAIN_LIVENESS_RECORD, [NO_ID])),
    await planned(
      'open the failover',
      client.query(EXPLAIN_OPEN_FAILOVER, [NO_ID, NO_ID, 'heartbeat-timeout', 0, NO_ID, 'detector']),
    ),
    await planned('claim a standby', client.query(EXPLAIN_ATTEMPT_CLAIM, [NO_ID])),
    await planned('standby heard', client.query(EXPLAIN_STALE_AGENT_LAST_SEEN, [NO_ID])),
    await planned('record the promotion', client.query(EXPLAIN_RECORD_PROMOTION, [NO_ID, 0])),
    await planned('fence target', client.query(EXPLAIN_FENCE_TARGET, [NO_ID])),
    await planned('record a fence', client.query(EXPLAIN_RECORD_SETTLED_FENCE, [NO_ID, 'fenced', {}])),
    await planned(
      'record a fence not done',
      client.query(EXPLAIN_RECORD_UNSETTLED_FENCE, [NO_ID, 'unreachable', {}, NO_ID]),
    ),
    await planned('cameras to move', client.query(EXPLAIN_IP_CAMERAS_TO_MOVE, [NO_ID])),
    await planned('commit the camera move', client.query(EXPLAIN_COMMIT_CAMERA_MOVE, [NO_ID, []])),
  ];
};

/**
 * Plans every take-over statement on each of `connections` connections of the pool (all taken at once, so
 * each is a different one). Answers how many statements a connection plans, and those that could not be
 * planned: none unless a statement and its values above drifted apart.
 */
export const planTakeOverStatements = async (
  pool: Pool,
  connections: number,
): Promise<{ statements: number; failed: string[] }> => {
  const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
  try {
    const outcomes = (await Promise.all(clients.map(planOn))).flat();
    const failed = new Set(outcomes.filter(([, ok]) => !ok).map(([name]) => name));
    return { statements: outcomes.length / connections, failed: [...failed] };
  } finally {
    for (const client of clients) client.release();
  }
};
