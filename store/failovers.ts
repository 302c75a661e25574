/**
 * The state changes of a failover, each one PostgreSQL transaction, each safe to run twice: a step that
 * already happened returns what it did the first time.
 */
import type { Pool, PoolClient } from 'pg';
import type {
  CameraMove,
  ClaimResult,
  FailoverPlan,
  FailoverStart,
  HandedOverPlugin,
  PluginReinstallEnd,
  StandbyRestore,
} from '../domain/contracts';
import { DomainError, ErrorType } from '../domain/errors';
import type { SilenceRecord } from '../domain/liveness';
import { refuteSilence } from '../domain/liveness';
import { checkRestorable } from '../domain/rules';
import type { BrokenReason } from '../domain/site';
import { sameDriveLetters } from '../domain/site';
import { preparedStatement, queryPrepared, withTransaction } from '../infra/database';
import type { Queryable } from '../infra/database';
import { raiseAlert } from './alerts';
import { appendEvent, appendEventFrom } from './events';
import { livenessRecords } from './monitoring';
import type { LivenessRecord } from './monitoring';
import { cameraIdsOf, getServer, lockServer, lockServers } from './servers';
import type { ServerRecord } from './servers';

export type FailoverStatus =
  'started' | 'waiting-for-standby' | 'standby-claimed' | 'promoted' | 'recording-restored' | 'completed';

export interface FailoverRecord {
  id: string;
  slaveId: string;
  reason: BrokenReason;
  status: FailoverStatus;
  failoverServerId: string | null;
  deadlineAt: Date;
  startedAt: Date;
  camerasCommittedAt: Date | null;
  completedAt: Date | null;
  ipCamerasMoved: number | null;
  analogCamerasLeft: number | null;
}

interface FailoverRow {
  id: string;
  slave_id: string;
  reason: BrokenReason;
  status: FailoverStatus;
  failover_server_id: string | null;
  deadline_at: Date;
  started_at: Date;
  cameras_committed_at: Date | null;
  completed_at: Date | null;
  ip_cameras_moved: number | null;
  analog_cameras_left: number | null;
}

const SELECT_FAILOVERS = `
  SELECT id, slave_id, reason, status, failover_server_id, deadline_at, started_at, cameras_committed_at,
         completed_at, ip_cameras_moved, analog_cameras_left
    FROM failovers`;

const toFailoverRecord = (row: FailoverRow): FailoverRecord => ({
  id: row.id,
  slaveId: row.slave_id,
  reason: row.reason,
  status: row.status,
  failoverServerId: row.failover_server_id,
  deadlineAt: row.deadline_at,
  startedAt: row.started_at,
  camerasCommittedAt: row.cameras_committed_at,
  completedAt: row.completed_at,
  ipCamerasMoved: row.ip_cameras_moved,
  analogCamerasLeft: row.analog_cameras_left,
});

export const unknownFailover = (failoverId: string): DomainError =>
  new DomainError(ErrorType.InvalidInput, `unknown failover "${failoverId}"`);

export const findFailover = async (
  db: Queryable,
  failoverId: string,
): Promise<FailoverRecord | undefined> => {
  const { rows } = await db.query<FailoverRow>(`${SELECT_FAILOVERS} WHERE id = $1`, [failoverId]);
  return rows[0] && toFailoverRecord(rows[0]);
};

const lockFailover = async (tx: PoolClient, failoverId: string): Promise<FailoverRecord> => {
  const { rows } = await tx.query<FailoverRow>(`${SELECT_FAILOVERS} WHERE id = $1 FOR UPDATE`, [failoverId]);
  if (!rows[0]) throw unknownFailover(failoverId);
  return toFailoverRecord(rows[0]);
};

export const listFailovers = async (db: Queryable, serverId?: string): Promise<FailoverRecord[]> => {
  const { rows } =
    serverId === undefined
      ? await db.query<FailoverRow>(`${SELECT_FAILOVERS} ORDER BY started_at`)
      : await db.query<FailoverRow>(
          `${SELECT_FAILOVERS} WHERE slave_id = $1 OR failover_server_id = $1 ORDER BY started_at`,
          [serverId],
        );
  return rows.map(toFailoverRecord);
};

/** This failover and any other of the same Slaves still moving them ($1 the Slaves, $2 the failovers). */
const OPEN_FAILOVERS_OF_SLAVES_SQL = `
  SELECT id, slave_id FROM failovers
   WHERE id = ANY($2) OR (slave_id = ANY($1) AND status NOT IN ('recording-restored', 'completed'))`;
export const OPEN_FAILOVERS_OF_SLAVES = preparedStatement(
  'open-failovers-of-slaves',
  OPEN_FAILOVERS_OF_SLAVES_SQL,
);

/** Who opened a failover: its monitor's take-over, or the detector as the deadline passed. */
export type FailoverOpener = 'monitor' | 'detector';

/** What came of opening one failover: its plan, or why it was refused (nothing changed for it). */
export type FailoverOpening = { plan: FailoverPlan; openedNow: boolean } | { refused: DomainError };

/** What an opening found of its Slave, its failovers and its liveness, as read in the opening's transaction. */
interface OpeningFound {
  slave: ServerRecord | undefined;
  /** This failover exists already (its id is taken). */
  exists: boolean;
  /** Another failover still moving the Slave: its id, or how it is known. */
  movedBy: string | undefined;
  record: LivenessRecord | undefined;
}

/**
 * Whether a failover opens now, joins itself (opened already under its id), or is refused: the Slave is not
 * a Slave, its silence is refuted by what PostgreSQL holds now (domain/liveness.ts `refuteSilence`), another
 * failover moves it, or it is in Broken recorders already.
 */
const openingDecision = (
  input: FailoverStart,
  { slave, exists, movedBy, record }: OpeningFound,
): 'open' | 'join' | DomainError => {
  if (slave === undefined)
    return new DomainError(ErrorType.UnknownServer, `unknown server "${input.slaveId}"`);
  if (slave.role !== 'slave')
    return new DomainError(ErrorType.NotASlave, `"${input.slaveId}" is not a Slave server`);
  if (exists) return 'join';
  if (input.claim !== undefined && slave.status === 'active' && record !== undefined) {
    const refutation = refuteSilence(silenceRecord(slave, record), input.claim, input.reason);
    if (refutation !== undefined) {
      return new DomainError(
        ErrorType.FailoverNotConfirmed,
        `"${input.slaveId}" is not failed over: ${refutation}`,
      );
    }
  }
  // An older failover that has restored recording may still reinstall plugins: it does not hold the Slave,
  // which may have been restored, promoted again and broken since.
  if (movedBy !== undefined) {
    return new DomainError(
      ErrorType.FailoverInProgress,
      `"${input.slaveId}" is already failing over (${movedBy})`,
    );
  }
  if (slave.status !== 'active')
    return new DomainError(ErrorType.ServerNotActive, `"${input.slaveId}" is already in Broken recorders`);
  return 'open';
};

const silenceRecord = (
  slave: Pick<ServerRecord, 'materialDriveLetters' | 'settings'>,
  record: LivenessRecord,
): SilenceRecord => ({
  protected: slave.settings.protected,
  currentTerm: record.term?.term ?? null,
  leaseLastSeenMs: record.lease?.lastSeenMs ?? null,
  leaseDisks: record.lease?.disks ?? [],
  materialDriveLetters: slave.materialDriveLetters,
  timeoutMs: record.timeoutMs,
  maintenanceUntilMs: record.maintenanceUntilMs,
  silenceFromMs: record.silenceFromMs,
  observingSinceMs: record.term?.observingSinceMs ?? null,
});

/**
 * Opens failovers, in one transaction however many: each Slave moved to Broken recorders once its decision is
 * confirmed against what PostgreSQL holds now (`openingDecision`). A Slave promoted by earlier failovers takes
 * over the plugin reinstalls they left unfinished on it. A failover opened already under its id (by the
 * detector, or an earlier attempt) answers the same plan; `openedNow` says whether this call opened it. One
 * refused changes nothing and does not keep the others from opening. A detector deciding a hundred deadlines
 * at once opens them in five statements, not in a hundred transactions queued for the pool's connections.
 */
export const openFailovers = (
  db: Pool,
  inputs: readonly FailoverStart[],
  openedBy: FailoverOpener,
): Promise<FailoverOpening[]> =>
  withTransaction(db, async (tx) => {
    const slaveIds = [...new Set(inputs.map((input) => input.slaveId))];
    const slaves = await lockServers(tx, slaveIds);
    const { rows: open } = await queryPrepared<{ id: string; slave_id: string }>(
      tx,
      OPEN_FAILOVERS_OF_SLAVES,
      [slaveIds, inputs.map((input) => input.failoverId)],
    );
    const toConfirm = inputs.filter((input) => input.claim !== undefined).map((input) => input.slaveId);
    const records =
      toConfirm.length === 0 ? new Map<string, LivenessRecord>() : await livenessRecords(tx, toConfirm);
    const openedInBatch = new Set<string>();
    const decisions = inputs.map((input) => {
      const decision = openingDecision(input, {
        slave: slaves.get(input.slaveId),
        exists: open.some((row) => row.id === input.failoverId),
        movedBy:
          open.find((row) => row.slave_id === input.slaveId && row.id !== input.failoverId)?.id ??
          (openedInBatch.has(input.slaveId) ? 'opened together with this one' : undefined),
        record: records.get(input.slaveId),
      });
      if (decision === 'open') openedInBatch.add(input.slaveId);
      return decision;
    });
    const toOpen = inputs.filter((_, index) => decisions[index] === 'open');
    const joined = inputs.filter((_, index) => decisions[index] === 'join');
    const plugins = new Map<string, string[]>();
    const pluginRows = [
      ...(toOpen.length === 0
        ? []
        : (await queryPrepared<PluginRow>(tx, OPEN_FAILOVERS, openingValues(toOpen, openedBy))).rows),
      ...(joined.length === 0 ? [] : await pluginsToReinstallOfMany(tx, joined)),
    ];
    for (const row of pluginRows)
      plugins.set(row.failover_id, [...(plugins.get(row.failover_id) ?? []), row.name]);
    // The monitor's take-over joins a failover the detector opened: its monitor knows of it.
    if (openedBy === 'monitor' && joined.length > 0)
      await recordMonitorsTold(
        tx,
        joined.map((input) => input.failoverId),
      );
    return inputs.map((input, index): FailoverOpening => {
      const decision = decisions[index];
      if (decision instanceof DomainError) return { refused: decision };
      const slave = slaves.get(input.slaveId);
      return {
        plan: {
          failoverId: input.failoverId,
          slaveId: input.slaveId,
          driveLetters: slave?.driveLetters ?? [],
          plugins: plugins.get(input.failoverId) ?? [],
        },
        openedNow: decision === 'open',
      };
    });
  });

/** Opens one failover (`openFailovers`); a refusal is thrown. */
export const openFailover = async (
  db: Pool,
  input: FailoverStart,
  openedBy: FailoverOpener,
): Promise<{ plan: FailoverPlan; openedNow: boolean }> => {
  const [opening] = await openFailovers(db, [input], openedBy);
  if (opening === undefined) throw new Error(`failover ${input.failoverId} was not opened`);
  if ('refused' in opening) throw opening.refused;
  return opening;
};

/** An open failover, as the detector tells its monitor of it or starts its failover workflow. */
export interface OpenedFailover {
  failoverId: string;
  slaveId: string;
  reason: BrokenReason;
  deadlineMs: number;
}

/**
 * Failovers not completed, oldest first, while their Slave is still in Broken recorders for them (its latest
 * failover): a Slave restored since has a life of its own (promoted again, a new monitor of the same id), which
 * a report of its old failover must not reach.
 */
const OPENED_FAILOVERS = `
  SELECT f.id, f.slave_id, f.reason, round(extract(epoch FROM f.deadline_at) * 1000) AS deadline_ms
    FROM failovers f JOIN servers s ON s.id = f.slave_id
   WHERE f.status <> 'completed' AND s.role = 'slave' AND s.status = 'broken'
     AND f.id = (SELECT latest.id FROM failovers latest WHERE latest.slave_id = f.slave_id
                  ORDER BY latest.started_at DESC, latest.id DESC LIMIT 1)`;

interface OpenedFailoverRow {
  id: string;
  slave_id: string;
  reason: BrokenReason;
  deadline_ms: string;
}

const toOpenedFailover = (row: OpenedFailoverRow): OpenedFailover => ({
  failoverId: row.id,
  slaveId: row.slave_id,
  reason: row.reason,
  deadlineMs: Number(row.deadline_ms),
});

const UNTOLD_FAILOVERS = `${OPENED_FAILOVERS} AND f.monitor_told_at IS NULL ORDER BY f.started_at, f.id`;
const TOLD_OPEN_FAILOVERS = `${OPENED_FAILOVERS} AND f.monitor_told_at IS NOT NULL ORDER BY f.started_at, f.id`;

/** Failovers the detector opened whose monitor has not been told of them yet. */
export const untoldFailovers = async (db: Queryable): Promise<OpenedFailover[]> =>
  (await db.query<OpenedFailoverRow>(UNTOLD_FAILOVERS)).rows.map(toOpenedFailover);

/**
 * Failovers not completed whose monitor was told of them, or opened them itself: each has a failover workflow,
 * started by that monitor, unless the monitor ended before it started one (terminated by hand).
 */
export const toldOpenFailovers = async (db: Queryable): Promise<OpenedFailover[]> =>
  (await db.query<OpenedFailoverRow>(TOLD_OPEN_FAILOVERS)).rows.map(toOpenedFailover);

/** Records the monitors of these failovers told (or their failover workflows started, with no monitor to tell). */
export const recordMonitorsTold = async (db: Queryable, failoverIds: string[]): Promise<void> => {
  await db.query(
    'UPDATE failovers SET monitor_told_at = now() WHERE id = ANY($1) AND monitor_told_at IS NULL',
    [failoverIds],
  );
};

/**
 * SQL (CTEs of the statement that opens the failovers of `input`): a broken Slave was the promoted server of
 * earlier failovers; their reinstalls still pending on it (their installs would go to a broken server) or left
 * for manual action there become the new failover's, and are marked handed over to it, with an event each.
 * The earlier failover's reinstall activity finds its row so and ends. `handed` has a row per plugin taken over.
 */
const HAND_OVER_PLUGIN_REINSTALLS = `
  unfinished AS (
    SELECT r.failover_id, r.plugin, r.status, f.slave_id, i.failover_id AS to_failover_id,
           i.slave_id AS to_slave_id
      FROM plugin_reinstalls r JOIN failovers f ON f.id = r.failover_id
      JOIN input i ON f.failover_server_id = i.slave_id
     WHERE r.status IN ('pending', 'needs-manual-action')
     FOR UPDATE OF r
  ), handed AS (
    UPDATE plugin_reinstalls r SET status = 'handed-over', handed_over_to = u.to_failover_id, updated_at = now()
      FROM unfinished u
     WHERE r.failover_id = u.failover_id AND r.plugin = u.plugin
    RETURNING u.failover_id, u.plugin, u.slave_id AS server_id, u.to_failover_id,
              jsonb_build_object('plugin', u.plugin, 'serverId', u.to_slave_id, 'was', u.status,
                                 'toFailoverId', u.to_failover_id) AS details
  ), handed_events AS (${appendEventFrom('handed', 'plugin-handed-over', 'handed.plugin')})`;

const MOVED_TO_BROKEN_RECORDERS_EVENT = appendEventFrom('moved', 'moved-to-broken-recorders');

/**
 * Every failover of the arrays opened ($1 ids, $2 Slaves, $3 reasons, $4 deadlines in ms and $5 as text, $6
 * who opens them), its Slave in Broken recorders, earlier reinstalls on it taken over, and the events: one
 * statement, which answers the plugins each reinstalls. Of a server that does not exist it opens nothing (the
 * warm-up runs it so; an opening has locked its Slaves first). Opened at this statement's time: the moment
 * the Slave moves, whatever the transaction did before.
 */
const OPEN_FAILOVERS_SQL = `
  WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[])
                  AS i (failover_id, slave_id, reason, deadline_ms, deadline)
  ), opened AS (
    INSERT INTO failovers (id, slave_id, reason, deadline_at, status, started_at, monitor_told_at)
    SELECT i.failover_id, s.id, i.reason, to_timestamp(i.deadline_ms / 1000.0), 'started', statement_timestamp(),
           CASE WHEN $6::text = 'monitor' THEN now() END
      FROM input i JOIN servers s ON s.id = i.slave_id
    RETURNING id
  ), broken AS (
    UPDATE servers s SET status = 'broken', updated_at = now() FROM input i WHERE s.id = i.slave_id
  ), ${HAND_OVER_PLUGIN_REINSTALLS},
  moved AS (
    SELECT opened.id AS failover_id, i.slave_id AS server_id,
           jsonb_build_object('reason', i.reason, 'deadline', i.deadline, 'openedBy', $6::text)
           || coalesce((SELECT jsonb_build_object('pluginsTakenOver',
                                 jsonb_agg(DISTINCT h.plugin COLLATE "C" ORDER BY h.plugin COLLATE "C"))
                          FROM handed h WHERE h.to_failover_id = opened.id HAVING count(*) > 0), '{}')
             AS details
      FROM opened JOIN input i ON i.failover_id = opened.id
  ), moved_event AS (${MOVED_TO_BROKEN_RECORDERS_EVENT})
  SELECT i.failover_id, p.name FROM input i JOIN plugins p ON p.server_id = i.slave_id
   UNION SELECT to_failover_id, plugin FROM handed
   ORDER BY failover_id, name`;
export const OPEN_FAILOVERS = preparedStatement('open-failovers', OPEN_FAILOVERS_SQL);

/** The values of OPEN_FAILOVERS for these failovers. */
const openingValues = (inputs: readonly FailoverStart[], openedBy: FailoverOpener): unknown[] => [
  inputs.map((input) => input.failoverId),
  inputs.map((input) => input.slaveId),
  inputs.map((input) => input.reason),
  inputs.map((input) => input.deadlineMs),
  inputs.map((input) => new Date(input.deadlineMs).toISOString()),
  openedBy,
];

interface PluginRow {
  failover_id: string;
  name: string;
}

/** The plugins to reinstall, as SQL over the failover and its Slave (SQL expressions). */
const pluginsToReinstallOf = (failoverId: string, slaveId: string): string => `
  SELECT name FROM plugins WHERE server_id = ${slaveId}
   UNION SELECT plugin FROM plugin_reinstalls WHERE handed_over_to = ${failoverId}`;
/** Of failovers open already ($1 ids, $2 their Slaves). */
const PLUGINS_TO_REINSTALL_OF_OPEN_FAILOVERS = `
  SELECT i.failover_id, p.name FROM unnest($1::text[], $2::text[]) AS i (failover_id, slave_id)
    JOIN LATERAL (${pluginsToReinstallOf('i.failover_id', 'i.slave_id')}) p ON true
   ORDER BY i.failover_id, p.name`;

/** The plugins failovers open already reinstall: their broken Slave's own, and those they took over. */
const pluginsToReinstallOfMany = async (
  db: Queryable,
  inputs: readonly FailoverStart[],
): Promise<PluginRow[]> =>
  (
    await db.query<PluginRow>(PLUGINS_TO_REINSTALL_OF_OPEN_FAILOVERS, [
      inputs.map((input) => input.failoverId),
      inputs.map((input) => input.slaveId),
    ])
  ).rows;

/**
 * What an event about the failover's current claim is about: the standby and the claim's number (a failover
 * claims again after a standby failed it, maybe the same one, back in service).
 */
export const claimSubject = async (db: Queryable, failoverId: string, serverId: string): Promise<string> => {
  const { rows } = await db.query<{ released: number }>(
    "SELECT count(*)::int AS released FROM failover_events WHERE failover_id = $1 AND event = 'standby-released'",
    [failoverId],
  );
  return `${serverId}#${(rows[0]?.released ?? 0) + 1}`;
};

/** {@link claimSubject} as an SQL expression over `source`, a CTE with columns failover_id and failover_server_id. */
const claimSubjectOf = (source: string): string =>
  `${source}.failover_server_id || '#' || (SELECT count(*) + 1 FROM failover_events released
     WHERE released.failover_id = ${source}.failover_id AND released.event = 'standby-released')`;
const STANDBY_CLAIMED_EVENT = appendEventFrom('recorded', 'standby-claimed', claimSubjectOf('recorded'));
const STANDBY_PROMOTED_EVENT = appendEventFrom('promotion', 'standby-promoted', claimSubjectOf('promotion'));

/** SQL: the drive letters of server `serverId`, sorted (none: an empty array). */
const driveLettersOf = (serverId: string): string =>
  `coalesce((SELECT array_agg(d.letter ORDER BY d.letter) FROM drives d WHERE d.server_id = ${serverId}), '{}')`;

/**
 * Whether a standby with the Slave's drive letters is out of service: the Slave waits because standbys
 * failed, which needs a person (waiting for want of any standby is what the site was built with).
 */
const MATCHED_STANDBY_OUT_OF_SERVICE = `
  SELECT 1 FROM servers s
   WHERE s.role = 'failover' AND s.out_of_service_since IS NOT NULL
     AND ${driveLettersOf('s.id')} = ${driveLettersOf('$1')}`;
const matchedStandbyOutOfService = async (db: Queryable, slaveId: string): Promise<boolean> => {
  const { rows } = await db.query(MATCHED_STANDBY_OUT_OF_SERVICE, [slaveId]);
  return rows.length > 0;
};

/**
 * A claim, and whether the claimed standby is still to be promoted: a step run again after the promotion finds
 * the claim as it was, and the standby already took the Slave's place.
 */
export type StandbyClaim = ClaimResult & { toPromote: boolean };

interface ClaimAttempt {
  failover_id: string;
  slave_id: string;
  /** The failover's status before the attempt. */
  status: FailoverStatus;
  /** The standby it holds: claimed before, or by this attempt. */
  failover_server_id: string | null;
  claimed_now: boolean;
}

const ATTEMPT_CLAIMS_SQL = `
  WITH failover AS (
    SELECT id, slave_id, status, failover_server_id, ${driveLettersOf('failovers.slave_id')} AS letters
      FROM failovers WHERE id = ANY($1)
     ORDER BY id
       FOR UPDATE
  ), needing AS (
    SELECT id, slave_id, letters, row_number() OVER (PARTITION BY letters ORDER BY id) AS rank
      FROM failover WHERE failover_server_id IS NULL
  ), wanted AS (
    SELECT letters, count(*) AS how_many FROM needing GROUP BY letters
  ), candidate AS (
    SELECT wanted.letters, free.id,
           row_number() OVER (PARTITION BY wanted.letters ORDER BY free.created_at, free.id) AS rank
      FROM wanted CROSS JOIN LATERAL (
        SELECT s.id, s.created_at FROM servers s
         WHERE s.role = 'failover' AND s.status = 'standby' AND s.replaces_server_id IS NULL
           AND s.out_of_service_since IS NULL AND ${driveLettersOf('s.id')} = wanted.letters
         ORDER BY s.created_at, s.id
         LIMIT wanted.how_many
           FOR UPDATE OF s SKIP LOCKED
      ) free
  ), pair AS (
    SELECT needing.id AS failover_id, needing.slave_id, candidate.id AS server_id
      FROM needing JOIN candidate ON candidate.letters = needing.letters AND candidate.rank = needing.rank
  ), claimed AS (
    UPDATE servers SET replaces_server_id = pair.slave_id, updated_at = now()
      FROM pair WHERE servers.id = pair.server_id
    RETURNING servers.id, pair.failover_id
  ), recorded AS (
    UPDATE failovers SET status = 'standby-claimed', failover_server_id = claimed.id
      FROM claimed WHERE failovers.id = claimed.failover_id
    RETURNING failovers.id AS failover_id, failovers.slave_id AS server_id, failovers.failover_server_id,
              jsonb_build_object('failoverServerId', failovers.failover_server_id) AS details
  ), event AS (${STANDBY_CLAIMED_EVENT})
  SELECT f.id AS failover_id, f.slave_id, f.status, coalesce(claimed.id, f.failover_server_id) AS failover_server_id,
         claimed.id IS NOT NULL AS claimed_now
    FROM failover f LEFT JOIN claimed ON claimed.failover_id = f.id`;
export const ATTEMPT_CLAIMS = preparedStatement('attempt-claims', ATTEMPT_CLAIMS_SQL);

/**
 * One statement: locks the failovers (in the order of their ids) and, for each that holds no standby yet,
 * claims the oldest available one whose drive letters match its Slave's, and records the claim with its event.
 * Failovers whose Slaves have the same letters take the oldest standbys in the order of their ids; as many
 * standbys are locked as are taken, with SKIP LOCKED, so that concurrent claims pick different servers and
 * none is kept from one it could take; the unique replaces_server_id makes a double claim fail.
 */
const attemptClaims = async (
  db: Queryable,
  failoverIds: readonly string[],
): Promise<Map<string, ClaimAttempt>> => {
  const { rows } = await queryPrepared<ClaimAttempt>(db, ATTEMPT_CLAIMS, [failoverIds]);
  return new Map(rows.map((row) => [row.failover_id, row]));
};

/** The claim an attempt holds, if any. */
const heldClaim = (attempt: ClaimAttempt): StandbyClaim | undefined =>
  attempt.failover_server_id === null
    ? undefined
    : {
        claimed: true,
        serverId: attempt.failover_server_id,
        toPromote: attempt.claimed_now || attempt.status === 'standby-claimed',
      };

/**
 * Claims, for each failover, the oldest available standby whose drive letters match its Slave's (a failover
 * that holds one already gets it again), in one statement for all of them. A failover left with none free is
 * recorded as waiting, once, in a transaction of its own that tries the claim again under the failover's
 * lock: a standby restored meanwhile is not missed. An unknown failover answers its error.
 */
export const claimMatchedStandbys = async (
  db: Pool,
  failoverIds: readonly string[],
): Promise<(StandbyClaim | DomainError)[]> => {
  const attempts = await attemptClaims(db, failoverIds);
  return Promise.all(
    failoverIds.map(async (failoverId) => {
      const attempt = attempts.get(failoverId);
      if (attempt === undefined) return unknownFailover(failoverId);
      return heldClaim(attempt) ?? claimOrWait(db, failoverId);
    }),
  );
};

export const claimMatchedStandby = async (db: Pool, failoverId: string): Promise<StandbyClaim> => {
  const [claim = unknownFailover(failoverId)] = await claimMatchedStandbys(db, [failoverId]);
  if (claim instanceof DomainError) throw claim;
  return claim;
};

/** The claim tried again under the failover's lock; with none free still, the failover waits for one. */
const claimOrWait = (db: Pool, failoverId: string): Promise<StandbyClaim> =>
  withTransaction(db, async (tx) => {
    const attempt = (await attemptClaims(tx, [failoverId])).get(failoverId);
    if (attempt === undefined) throw unknownFailover(failoverId);
    const held = heldClaim(attempt);
    if (held !== undefined) return held;
    const slaveId = attempt.slave_id;
    const firstWait = attempt.status !== 'waiting-for-standby';
    if (firstWait) {
      await tx.query("UPDATE failovers SET status = 'waiting-for-standby' WHERE id = $1", [failoverId]);
      await appendEvent(tx, {
        serverId: slaveId,
        failoverId,
        event: 'waiting-for-standby',
        details: { reason: 'no available failover server with the same drive letters' },
      });
      if (await matchedStandbyOutOfService(tx, slaveId)) {
        await raiseAlert(tx, {
          id: `${failoverId}:no-matched-standby`,
          kind: 'no-matched-standby',
          serverId: slaveId,
          message:
            `${slaveId} is in Broken recorders and every failover server with its drive letters is out ` +
            'of service: its IP cameras record nowhere until one is put back in service, restored or added',
          details: { failoverId },
        });
      }
    }
    return { claimed: false, firstWait, toPromote: false };
  });

const RECORD_PROMOTIONS_SQL = `
  WITH promotion AS (
    UPDATE failovers SET status = 'promoted' WHERE id = ANY($1) AND status = 'standby-claimed'
    RETURNING id AS failover_id, slave_id AS server_id, failover_server_id,
              jsonb_build_object('failoverServerId', failover_server_id) AS details
  ), promoted AS (
    UPDATE servers promoted
       SET role = 'slave', status = 'active', updated_at = now(),
           protected = broken.protected, failover_timeout_ms = broken.failover_timeout_ms,
           silence_from = now() + make_interval(secs => $2 / 1000.0)
      FROM promotion JOIN servers broken ON broken.id = promotion.server_id
     WHERE promoted.id = promotion.failover_server_id
  ), recorded AS (${STANDBY_PROMOTED_EVENT})
  SELECT failover_id FROM promotion`;
export const RECORD_PROMOTIONS = preparedStatement('record-promotions', RECORD_PROMOTIONS_SQL);

/** The failovers of `failoverIds` that do not exist, in one statement. */
const unknownFailovers = async (db: Queryable, failoverIds: readonly string[]): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    `SELECT i.id FROM unnest($1::text[]) AS i (id)
      WHERE NOT EXISTS (SELECT 1 FROM failovers f WHERE f.id = i.id)`,
    [failoverIds],
  );
  return rows.map((row) => row.id);
};

/**
 * Records each failover's claimed standby as the active Slave in the broken one's place, with its failover
 * settings, in one statement. Until it is heard or answers, its silence counts from when it may take to come
 * up (`serverUpTimeoutMs`). A failover promoted already, or not at this step, changes nothing. Answers, for
 * each failover in order, undefined or the error of one that does not exist.
 */
export const recordPromotions = async (
  db: Queryable,
  failoverIds: readonly string[],
  serverUpTimeoutMs: number,
): Promise<(DomainError | undefined)[]> => {
  const { rows } = await queryPrepared<{ failover_id: string }>(db, RECORD_PROMOTIONS, [
    failoverIds,
    serverUpTimeoutMs,
  ]);
  const promoted = new Set(rows.map((row) => row.failover_id));
  const others = failoverIds.filter((failoverId) => !promoted.has(failoverId));
  const unknown = new Set(others.length === 0 ? [] : await unknownFailovers(db, others));
  return failoverIds.map((failoverId) => (unknown.has(failoverId) ? unknownFailover(failoverId) : undefined));
};

const IP_CAMERAS_TO_MOVE_SQL = `
  SELECT f.id, f.failover_server_id,
        ARRAY(SELECT c.id FROM cameras c WHERE c.server_id = f.slave_id AND c.kind = 'ip' ORDER BY c.id)
          AS camera_ids
   FROM failovers f WHERE f.id = ANY($1)`;
export const IP_CAMERAS_TO_MOVE = preparedStatement('ip-cameras-to-move', IP_CAMERAS_TO_MOVE_SQL);

/** The IP cameras a failover moves, and the promoted server they move to. */
export interface CamerasToMove {
  failoverServerId: string;
  cameraIds: string[];
}

/**
 * The IP cameras still bound to each failover's broken Slave, and the promoted server they move to, in one
 * statement; for a failover that does not exist or has not claimed a standby, its error.
 */
export const ipCamerasToMoveOf = async (
  db: Queryable,
  failoverIds: readonly string[],
): Promise<(CamerasToMove | DomainError)[]> => {
  const { rows } = await queryPrepared<{
    id: string;
    failover_server_id: string | null;
    camera_ids: string[];
  }>(db, IP_CAMERAS_TO_MOVE, [failoverIds]);
  const found = new Map(rows.map((row) => [row.id, row]));
  return failoverIds.map((failoverId) => {
    const row = found.get(failoverId);
    if (row === undefined) return unknownFailover(failoverId);
    if (row.failover_server_id === null) return noStandbyClaimed(failoverId);
    return { failoverServerId: row.failover_server_id, cameraIds: row.camera_ids };
  });
};

const noStandbyClaimed = (failoverId: string): DomainError =>
  new DomainError(ErrorType.InvalidInput, `failover "${failoverId}" has not claimed a standby server`);

/** SQL: the cameras a `cameras-rebound` event `e` recorded as moved, and the analog ones left. */
const CAMERAS_OF_REBOUND_EVENT = `
  ARRAY(SELECT jsonb_array_elements_text(e.details->'ipCameraIds')) AS ip_camera_ids,
  ARRAY(SELECT jsonb_array_elements_text(e.details->'analogCamerasLeft')) AS analog_camera_ids`;

/**
 * What the failover's camera move committed, as its event recorded it in the same transaction: a step run
 * again after it finds no camera left on the Slave, and the cameras may have moved on since.
 */
const committedCameraMove = async (db: Queryable, failoverId: string): Promise<CameraMove> => {
  const { rows } = await db.query<{ ip_camera_ids: string[]; analog_camera_ids: string[] }>(
    `SELECT ${CAMERAS_OF_REBOUND_EVENT} FROM failover_events e
      WHERE e.failover_id = $1 AND e.event = 'cameras-rebound'`,
    [failoverId],
  );
  const row = rows[0];
  if (row === undefined) {
    throw new Error(`failover "${failoverId}" committed its cameras without recording which`);
  }
  return { ipCameraIds: row.ip_camera_ids, analogCameraIds: row.analog_camera_ids };
};

/**
 * The standby and the camera move of a failover whose cameras are committed (undefined before): a take-over
 * that finds its steps done answers this instead of running them again.
 */
export const committedTakeOver = async (
  db: Queryable,
  failoverId: string,
): Promise<{ failoverServerId: string; cameras: CameraMove } | undefined> => {
  const { rows } = await db.query<{
    failover_server_id: string;
    ip_camera_ids: string[];
    analog_camera_ids: string[];
  }>(
    `SELECT f.failover_server_id, ${CAMERAS_OF_REBOUND_EVENT}
       FROM failovers f JOIN failover_events e ON e.failover_id = f.id AND e.event = 'cameras-rebound'
      WHERE f.id = $1 AND f.cameras_committed_at IS NOT NULL AND f.failover_server_id IS NOT NULL`,
    [failoverId],
  );
  const row = rows[0];
  return (
    row && {
      failoverServerId: row.failover_server_id,
      cameras: { ipCameraIds: row.ip_camera_ids, analogCameraIds: row.analog_camera_ids },
    }
  );
};

const CAMERAS_REBOUND_EVENT = appendEventFrom('event', 'cameras-rebound');

const COMMIT_CAMERA_MOVES_SQL = `
  WITH failover AS (
    SELECT id, slave_id, failover_server_id FROM failovers
     WHERE id = ANY($1) AND cameras_committed_at IS NULL AND failover_server_id IS NOT NULL
     ORDER BY id
     FOR UPDATE
  ), moved AS (
    UPDATE cameras SET server_id = failover.failover_server_id
      FROM failover JOIN unnest($2::text[], $3::text[]) AS wanted (failover_id, camera_id)
           ON wanted.failover_id = failover.id
     WHERE cameras.id = wanted.camera_id AND cameras.server_id = failover.slave_id AND cameras.kind = 'ip'
    RETURNING failover.id AS failover_id, cameras.id
  ), move AS (
    SELECT failover.id AS failover_id, failover.slave_id AS server_id, failover.failover_server_id,
           ARRAY(SELECT moved.id FROM moved WHERE moved.failover_id = failover.id ORDER BY moved.id COLLATE "C")
             AS ip_camera_ids,
           ARRAY(SELECT c.id FROM cameras c WHERE c.server_id = failover.slave_id AND c.kind = 'analog'
                  ORDER BY c.id) AS analog_camera_ids
      FROM failover
  ), restored AS (
    UPDATE failovers SET status = 'recording-restored', cameras_committed_at = now(),
           ip_cameras_moved = cardinality(move.ip_camera_ids),
           analog_cameras_left = cardinality(move.analog_camera_ids)
      FROM move WHERE failovers.id = move.failover_id
  ), reinstalls AS (
    INSERT INTO plugin_reinstalls (failover_id, plugin, server_id, status)
    SELECT move.failover_id, plugins.name, move.failover_server_id, 'pending'
      FROM move JOIN LATERAL (${pluginsToReinstallOf('move.failover_id', 'move.server_id')}) AS plugins (name)
           ON true
    ON CONFLICT DO NOTHING
  ), event AS (
    SELECT failover_id, server_id,
           jsonb_build_object('failoverServerId', failover_server_id, 'ipCameraIds', to_jsonb(ip_camera_ids),
                              'analogCamerasLeft', to_jsonb(analog_camera_ids)) AS details
      FROM move
  ), recorded AS (${CAMERAS_REBOUND_EVENT})
  SELECT failover_id, ip_camera_ids, analog_camera_ids FROM move`;
export const COMMIT_CAMERA_MOVES = preparedStatement('commit-camera-moves', COMMIT_CAMERA_MOVES_SQL);

/** A failover's IP cameras to bind to its promoted server. */
export interface CameraMoveToCommit {
  failoverId: string;
  cameraIds: readonly string[];
}

/**
 * Binds each broken Slave's IP cameras to its promoted server and schedules the plugin reinstalls, in one
 * statement for every failover given. Analog cameras are wired to the broken server and stay. A failover
 * committed already answers its first commit's result; one that does not exist or has no standby, its error.
 */
export const commitCameraMoves = async (
  db: Queryable,
  moves: readonly CameraMoveToCommit[],
): Promise<(CameraMove | DomainError)[]> => {
  const { rows } = await queryPrepared<{
    failover_id: string;
    ip_camera_ids: string[];
    analog_camera_ids: string[];
  }>(db, COMMIT_CAMERA_MOVES, [
    moves.map((move) => move.failoverId),
    moves.flatMap((move) => move.cameraIds.map(() => move.failoverId)),
    moves.flatMap((move) => move.cameraIds),
  ]);
  const committed = new Map(
    rows.map((row): [string, CameraMove] => [
      row.failover_id,
      { ipCameraIds: row.ip_camera_ids, analogCameraIds: row.analog_camera_ids },
    ]),
  );
  // Committed before (a second run answers the first run's result), or nothing to commit: one at a time.
  return Promise.all(
    moves.map(
      async ({ failoverId }) => committed.get(failoverId) ?? (await earlierCameraMove(db, failoverId)),
    ),
  );
};

/** The camera move a failover committed before, or why there is none. */
const earlierCameraMove = async (db: Queryable, failoverId: string): Promise<CameraMove | DomainError> => {
  const failover = await findFailover(db, failoverId);
  if (failover === undefined) return unknownFailover(failoverId);
  if (failover.camerasCommittedAt !== null) return committedCameraMove(db, failoverId);
  return noStandbyClaimed(failoverId);
};

/**
 * Where a plugin reinstall of a failover stands. Handed over: the promoted server broke before the plugin
 * was installed on it, and the failover of that server (`toFailoverId`) reinstalls it on its own.
 */
export type PluginReinstall =
  | { status: 'pending' | 'installed' | 'needs-manual-action' }
  | { status: 'handed-over'; toFailoverId: string };

type PluginReinstallRow =
  | { status: 'pending' | 'installed' | 'needs-manual-action'; handed_over_to: null }
  | { status: 'handed-over'; handed_over_to: string };

export type PluginReinstallStatus = PluginReinstall['status'];

export const findPluginReinstall = async (
  db: Queryable,
  failoverId: string,
  plugin: string,
): Promise<PluginReinstall | undefined> => {
  const { rows } = await db.query<PluginReinstallRow>(
    'SELECT status, handed_over_to FROM plugin_reinstalls WHERE failover_id = $1 AND plugin = $2',
    [failoverId, plugin],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return row.status === 'handed-over'
    ? { status: row.status, toFailoverId: row.handed_over_to }
    : { status: row.status };
};

export const recordPluginAttemptFailed = async (
  db: Pool,
  input: { failoverId: string; plugin: string; attempt: number; error: string },
): Promise<void> => {
  await db.query(
    `UPDATE plugin_reinstalls SET attempts = greatest(attempts, $3), last_error = $4, updated_at = now()
      WHERE failover_id = $1 AND plugin = $2 AND status = 'pending'`,
    [input.failoverId, input.plugin, input.attempt, input.error],
  );
};

/**
 * Records the plugin installed on the promoted server. A reinstall handed over meanwhile stays so: the
 * install reached a server that broke, and the failover that took it over installs it on its own.
 */
export const recordPluginInstalled = (
  db: Pool,
  input: { failoverId: string; plugin: string; attempt: number },
): Promise<PluginReinstallEnd> =>
  withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ server_id: string; slave_id: string }>(
      `UPDATE plugin_reinstalls r SET status = 'installed', attempts = greatest(attempts, $3), updated_at = now()
         FROM failovers f
        WHERE r.failover_id = $1 AND r.plugin = $2 AND r.status = 'pending' AND f.id = r.failover_id
        RETURNING r.server_id, f.slave_id`,
      [input.failoverId, input.plugin, input.attempt],
    );
    const row = rows[0];
    if (!row) {
      const reinstall = await findPluginReinstall(tx, input.failoverId, input.plugin);
      return reinstall?.status === 'handed-over' ? reinstall : { status: 'installed' };
    }
    await tx.query('INSERT INTO plugins (server_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
      row.server_id,
      input.plugin,
    ]);
    await appendEvent(tx, {
      serverId: row.slave_id,
      failoverId: input.failoverId,
      event: 'plugin-reinstalled',
      details: { plugin: input.plugin, serverId: row.server_id, attempts: input.attempt },
      subject: input.plugin,
    });
    return { status: 'installed' };
  });

export const recordPluginNeedsManualAction = (
  db: Pool,
  input: { failoverId: string; plugin: string; error: string },
): Promise<void> =>
  withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ server_id: string; slave_id: string; attempts: number }>(
      `UPDATE plugin_reinstalls r SET status = 'needs-manual-action', last_error = $3, updated_at = now()
         FROM failovers f
        WHERE r.failover_id = $1 AND r.plugin = $2 AND r.status = 'pending' AND f.id = r.failover_id
        RETURNING r.server_id, f.slave_id, r.attempts`,
      [input.failoverId, input.plugin, input.error],
    );
    const row = rows[0];
    if (!row) return;
    await appendEvent(tx, {
      serverId: row.slave_id,
      failoverId: input.failoverId,
      event: 'plugin-needs-manual-action',
      details: { plugin: input.plugin, serverId: row.server_id, attempts: row.attempts, error: input.error },
      subject: input.plugin,
    });
  });

/**
 * Completes the failover; returns its plugins that a later failover took over (its promoted server broke
 * before they were installed).
 */
export const completeFailover = (db: Pool, failoverId: string): Promise<HandedOverPlugin[]> =>
  withTransaction(db, async (tx) => {
    const failover = await lockFailover(tx, failoverId);
    if (failover.status !== 'completed') {
      await tx.query("UPDATE failovers SET status = 'completed', completed_at = now() WHERE id = $1", [
        failoverId,
      ]);
      await appendEvent(tx, {
        serverId: failover.slaveId,
        failoverId,
        event: 'failover-completed',
        details: { failoverServerId: failover.failoverServerId },
      });
    }
    const { rows } = await tx.query<{ plugin: string; handed_over_to: string }>(
      `SELECT plugin, handed_over_to FROM plugin_reinstalls
        WHERE failover_id = $1 AND status = 'handed-over' ORDER BY plugin`,
      [failoverId],
    );
    return rows.map((row) => ({ plugin: row.plugin, toFailoverId: row.handed_over_to }));
  });

/** A failover of the Slave that has not restored its recording yet: the Slave cannot be restored meanwhile. */
const stillFailingOver = (serverId: string, failoverId: string): DomainError =>
  new DomainError(
    ErrorType.FailoverInProgress,
    `"${serverId}" is still failing over (${failoverId}): restore it once its cameras are rebound`,
  );

const latestFailover = async (
  db: Queryable,
  serverId: string,
): Promise<{ id: string; status: FailoverStatus } | undefined> => {
  const { rows } = await db.query<{ id: string; status: FailoverStatus }>(
    'SELECT id, status FROM failovers WHERE slave_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1',
    [serverId],
  );
  return rows[0];
};

/** The failover a broken server is restored from: it is in Broken recorders for its latest one. */
const latestFailoverId = async (db: Queryable, serverId: string): Promise<string> => {
  const latest = await latestFailover(db, serverId);
  if (latest === undefined) {
    throw new DomainError(ErrorType.ServerNotBroken, `"${serverId}" has never failed over`);
  }
  return latest.id;
};

/**
 * The failover that put a server to be restored in Broken recorders (its latest), refused as a restore is:
 * the server must be broken and its cameras rebound. Its id keys the server's demotion in the VMS.
 */
export const failoverToDemote = async (
  db: Pool,
  serverId: string,
  driveLetters?: string[],
): Promise<string> => {
  const server = await getServer(db, serverId);
  if (!(await restoredSinceLatestFailover(db, server))) {
    // Refused here, before the VMS is told anything, as the restore itself would refuse it.
    checkRestorable(server);
    if (driveLetters !== undefined && !sameDriveLetters(driveLetters, server.driveLetters)) {
      throw driveLettersMismatch(serverId, server.driveLetters, driveLetters);
    }
  }
  const latest = await latestFailover(db, serverId);
  if (latest === undefined) {
    throw new DomainError(ErrorType.ServerNotBroken, `"${serverId}" has never failed over`);
  }
  if (latest.status !== 'recording-restored' && latest.status !== 'completed') {
    throw stillFailingOver(serverId, latest.id);
  }
  return latest.id;
};

/**
 * Whether the server is a standby restored since its latest failover: a restore run again (its activity
 * retried after it committed) finds it so, and answers what it did.
 */
const restoredSinceLatestFailover = async (db: Queryable, server: ServerRecord): Promise<boolean> => {
  if (server.role !== 'failover' || server.status !== 'standby') return false;
  const { rows } = await db.query(
    `SELECT 1 FROM failover_events e
      WHERE e.server_id = $1 AND e.event = 'restored-as-standby'
        AND e.at >= (SELECT max(f.started_at) FROM failovers f WHERE f.slave_id = $1)`,
    [server.id],
  );
  return rows.length > 0;
};

/**
 * A repaired server comes back as a new standby failover server. It does not take its cameras back: the
 * promoted server keeps recording them.
 */
const driveLettersMismatch = (serverId: string, recorded: string[], given: string[]): DomainError =>
  new DomainError(
    ErrorType.DriveLettersMismatch,
    `"${serverId}" was recorded with drives ${recorded.join(',')}, not ${given.join(',')}`,
  );

export const restoreAsStandby = (
  db: Pool,
  input: { serverId: string; driveLetters?: string[] },
): Promise<StandbyRestore> =>
  withTransaction(db, async (tx) => {
    const server = await lockServer(tx, input.serverId);
    if (await restoredSinceLatestFailover(tx, server)) {
      return {
        serverId: input.serverId,
        driveLetters: server.driveLetters,
        analogCameraIds: await cameraIdsOf(tx, input.serverId, 'analog'),
        waitingFailoverIds: await waitingFailoverIds(tx),
      };
    }
    checkRestorable(server);
    const open = await tx.query<{ id: string }>(
      `SELECT id FROM failovers WHERE slave_id = $1 AND status NOT IN ('recording-restored', 'completed')`,
      [input.serverId],
    );
    if (open.rows[0]) throw stillFailingOver(input.serverId, open.rows[0].id);
    if (input.driveLetters !== undefined && !sameDriveLetters(input.driveLetters, server.driveLetters)) {
      throw driveLettersMismatch(input.serverId, server.driveLetters, input.driveLetters);
    }
    await tx.query(
      'UPDATE servers SET replaces_server_id = NULL, updated_at = now() WHERE replaces_server_id = $1',
      [input.serverId],
    );
    await tx.query(
      `UPDATE servers SET role = 'failover', status = 'standby', protected = false, maintenance_until = NULL,
              replaces_server_id = NULL, lease_valid_from = now(), updated_at = now() WHERE id = $1`,
      [input.serverId],
    );
    await tx.query('UPDATE drives SET healthy = true, checked_at = now() WHERE server_id = $1', [
      input.serverId,
    ]);
    // Plugins do not follow a failover; the repaired server starts clean and gets a Slave's plugins if promoted.
    await tx.query('DELETE FROM plugins WHERE server_id = $1', [input.serverId]);
    const analogCameraIds = await cameraIdsOf(tx, input.serverId, 'analog');
    await appendEvent(tx, {
      serverId: input.serverId,
      event: 'restored-as-standby',
      details: { driveLetters: server.driveLetters },
      // Once per failover it is restored from.
      requestId: await latestFailoverId(tx, input.serverId),
    });
    return {
      serverId: input.serverId,
      driveLetters: server.driveLetters,
      analogCameraIds,
      waitingFailoverIds: await waitingFailoverIds(tx),
    };
  });

/** Failovers waiting for a matched standby, oldest first. */
export const waitingFailoverIds = async (db: Queryable): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    "SELECT id FROM failovers WHERE status = 'waiting-for-standby' ORDER BY started_at, id",
  );
  return rows.map((row) => row.id);
};
