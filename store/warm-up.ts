/**
 * The statements of a take-over, prepared on every connection of a worker's pool as it starts. Each is a
 * prepared statement (`queryPrepared`): parsed and planned once per connection, then only executed. A burst
 * of failovers right after a start runs its first take-over on every connection at once, and would pay every
 * parse and plan then, with the catalog caches of each backend still cold (the opening statement: about 15 ms
 * cold against 2 on an idle machine; docs/benchmark.md). Each is run once with values that match no row, in a
 * transaction rolled back: nothing changes.
 */
import type { Pool, PoolClient } from 'pg';
import { queryPrepared } from '../infra/database';
import type { PreparedStatement } from '../infra/database';
import {
  ATTEMPT_CLAIMS,
  COMMIT_CAMERA_MOVES,
  IP_CAMERAS_TO_MOVE,
  OPEN_FAILOVERS_OF_SLAVES,
  OPEN_FAILOVERS,
  RECORD_PROMOTIONS,
} from './failovers';
import { FENCE_TARGETS, RECORD_FENCES } from './fencing';
import { LIVENESS_RECORDS } from './monitoring';
import { LOCK_SERVERS } from './servers';
import { STALE_AGENT_LAST_SEEN } from './standbys';

const NO_ID = '(prepared only)';

/** Each statement of a take-over, in the order a take-over runs them, with values of the types it takes. */
const TAKE_OVER_STATEMENTS: [PreparedStatement, unknown[]][] = [
  [LOCK_SERVERS, [[NO_ID]]],
  [OPEN_FAILOVERS_OF_SLAVES, [[NO_ID], [NO_ID]]],
  [LIVENESS_RECORDS, [[NO_ID]]],
  [OPEN_FAILOVERS, [[NO_ID], [NO_ID], ['heartbeat-timeout'], [0], [NO_ID], 'detector']],
  [ATTEMPT_CLAIMS, [[NO_ID]]],
  [STALE_AGENT_LAST_SEEN, [[NO_ID]]],
  [RECORD_PROMOTIONS, [[NO_ID], 0]],
  [FENCE_TARGETS, [[NO_ID]]],
  [RECORD_FENCES, [[NO_ID], ['unreachable'], [{}], [NO_ID]]],
  [IP_CAMERAS_TO_MOVE, [[NO_ID]]],
  [COMMIT_CAMERA_MOVES, [[NO_ID], [NO_ID], [NO_ID]]],
];

/** Prepares them on one connection; answers each by name, and whether it could be prepared. */
const prepareOn = async (client: PoolClient): Promise<[string, boolean][]> => {
  const outcomes: [string, boolean][] = [];
  // One after the other: a connection runs one query at a time.
  for (const [statement, values] of TAKE_OVER_STATEMENTS) {
    await client.query('BEGIN');
    const prepared = await queryPrepared(client, statement, values).then(
      () => true,
      () => false,
    );
    await client.query('ROLLBACK');
    outcomes.push([statement.name, prepared]);
  }
  return outcomes;
};

/**
 * Prepares every take-over statement on each of `connections` connections of the pool (all taken at once, so
 * each is a different one). Answers how many statements a connection prepares, and those that could not be
 * prepared: none unless a statement and its values above drifted apart.
 */
export const prepareTakeOverStatements = async (
  pool: Pool,
  connections: number,
): Promise<{ statements: number; failed: string[] }> => {
  const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
  try {
    const outcomes = (await Promise.all(clients.map(prepareOn))).flat();
    const failed = new Set(outcomes.filter(([, ok]) => !ok).map(([name]) => name));
    return { statements: outcomes.length / connections, failed: [...failed] };
  } finally {
    for (const client of clients) client.release();
  }
};
