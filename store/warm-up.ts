/**
 * The statements of a take-over, planned on every connection of a worker's pool as it starts. A PostgreSQL
 * backend fills its catalog caches the first time a statement touches a table, an index or a function: the
 * first take-over on each connection planned its statements several times slower than later ones (the
 * opening statement: about 15 ms against 2 on an idle machine), and a burst of failovers right after a start
 * spread over every connection paid it all at once (docs/benchmark.md). EXPLAIN plans a statement without
 * running it: nothing changes.
 */
import type { Pool } from 'pg';
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

/** Each statement of a take-over, in the order a take-over runs them, with values of the types it takes. */
export const TAKE_OVER_STATEMENTS: { text: string; values: unknown[] }[] = [
  { text: LOCK_SERVER_SQL, values: [NO_ID] },
  { text: OPEN_FAILOVERS_OF_SLAVE_SQL, values: [NO_ID, NO_ID] },
  { text: LIVENESS_RECORD_SQL, values: [NO_ID] },
  { text: OPEN_FAILOVER_SQL, values: [NO_ID, NO_ID, 'heartbeat-timeout', 0, NO_ID, 'detector'] },
  { text: ATTEMPT_CLAIM_SQL, values: [NO_ID] },
  { text: STALE_AGENT_LAST_SEEN_SQL, values: [NO_ID] },
  { text: RECORD_PROMOTION_SQL, values: [NO_ID, 0] },
  { text: FENCE_TARGET_SQL, values: [NO_ID] },
  { text: RECORD_SETTLED_FENCE_SQL, values: [NO_ID, 'fenced', {}] },
  { text: RECORD_UNSETTLED_FENCE_SQL, values: [NO_ID, 'unreachable', {}, NO_ID] },
  { text: IP_CAMERAS_TO_MOVE_SQL, values: [NO_ID] },
  { text: COMMIT_CAMERA_MOVE_SQL, values: [NO_ID, []] },
];

/**
 * Plans every take-over statement on each of `connections` connections of the pool (all taken at once, so
 * each is a different one). Answers the statements that could not be planned, by their first words: none
 * unless a statement and its values above drifted apart.
 */
export const planTakeOverStatements = async (pool: Pool, connections: number): Promise<string[]> => {
  const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
  const failed = new Set<string>();
  try {
    await Promise.all(
      clients.map(async (client) => {
        for (const { text, values } of TAKE_OVER_STATEMENTS) {
          await client.query(`EXPLAIN ${text}`, values).catch(() => {
            failed.add(text.trim().slice(0, 60));
          });
        }
      }),
    );
  } finally {
    for (const client of clients) client.release();
  }
  return [...failed];
};
