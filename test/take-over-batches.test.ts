/**
 * The take-over's database steps are set-based: take-overs under way at once (a hundred Slaves failing
 * together) read and record each step in one statement for all of them. Each store function is given a mixed
 * batch (failovers at the step, past it, before it, unknown) and answers each its own, in order; the rows,
 * events and alerts it leaves are checked exactly. Then take-overs run together through `createTakeOver`, each
 * step of theirs one statement for all.
 */
import { Client } from 'pg';
import type { Pool, QueryConfig } from 'pg';
import { DomainError } from '../domain/errors';
import { parseSite } from '../domain/site-file';
import { createTakeOver } from '../failover/take-over';
import { listAlerts } from '../store/alerts';
import {
  claimMatchedStandbys,
  commitCameraMoves,
  ipCamerasToMoveOf,
  openFailover,
  openFailovers,
  recordPluginInstalled,
  recordPromotions,
} from '../store/failovers';
import { fenceTargets, recordFences } from '../store/fencing';
import { writeLeases } from '../store/leases';
import { staleAgentsLastSeen } from '../store/standbys';
import { cameraBindingsOf } from './support/db';
import { site, slave, standby } from './support/site';
import { useTestWorld } from './support/world';
import type { TestContext } from './support/world';

const world = useTestWorld();

const quietLog = { info: () => {}, warn: () => {} };

const takeOverSteps = ({ db, vms, config }: TestContext) =>
  createTakeOver({ db, vms, tuning: config.failover, log: quietLog });

/** Opens a failover of a Slave as the detector does, without a claim to confirm. */
const open = async (db: Pool, failoverId: string, slaveId: string) =>
  (
    await openFailover(
      db,
      { failoverId, slaveId, reason: 'heartbeat-timeout', deadlineMs: Date.now() },
      'detector',
    )
  ).plan;

/** An answer of a batch, readable in an assertion: a domain error by its type and message. */
const readable = (answer: unknown) =>
  answer instanceof DomainError ? { error: answer.type, message: answer.message } : answer;

const unknownFailover = (failoverId: string) => ({
  error: 'InvalidInput',
  message: `unknown failover "${failoverId}"`,
});

/** The id of the latest event, to read what a call recorded after it. */
const lastEventId = async (db: Pool): Promise<string> =>
  (await db.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM failover_events')).rows[0]
    ?.id ?? '0';

const eventsAfter = async (db: Pool, eventId: string) =>
  (
    await db.query<{
      failover_id: string;
      server_id: string;
      event: string;
      details: unknown;
      idempotency_key: string;
    }>(
      `SELECT failover_id, server_id, event, details, idempotency_key FROM failover_events
        WHERE id > $1 ORDER BY failover_id, id`,
      [eventId],
    )
  ).rows;

const cameraRows = async (db: Pool) =>
  (
    await db.query<{ id: string; kind: string; server_id: string }>(
      'SELECT id, kind, server_id FROM cameras ORDER BY id COLLATE "C"',
    )
  ).rows;

const reinstallRows = async (db: Pool) =>
  (
    await db.query<{
      failover_id: string;
      plugin: string;
      server_id: string;
      status: string;
      handed_over_to: string | null;
    }>(
      `SELECT failover_id, plugin, server_id, status, handed_over_to FROM plugin_reinstalls
        ORDER BY failover_id, plugin COLLATE "C"`,
    )
  ).rows;

/**
 * The reinstalls a spec scheduled are installed, as the failover workflow would: no reinstall is left pending
 * once a spec ends (a site invariant the test world checks after each).
 */
const installPendingReinstalls = async (db: Pool): Promise<void> => {
  const { rows } = await db.query<{ failover_id: string; plugin: string }>(
    "SELECT failover_id, plugin FROM plugin_reinstalls WHERE status = 'pending' ORDER BY failover_id, plugin",
  );
  for (const { failover_id: failoverId, plugin } of rows) {
    await recordPluginInstalled(db, { failoverId, plugin, attempt: 1 });
  }
};

/**
 * A VMS call that answers each of `count` take-overs only once all of them have asked it and been answered:
 * their next steps start in the same turn of the event loop, as those of take-overs decided at one deadline.
 */
const answeredTogether = (count: number) => {
  let answered = 0;
  let allAnswered: () => void = () => {};
  const together = new Promise<void>((resolve) => (allAnswered = resolve));
  return async <T>(answer: Promise<T>): Promise<T> => {
    try {
      return await answer;
    } finally {
      answered += 1;
      if (answered === count) allAnswered();
      await together;
    }
  };
};

test('claimMatchedStandbys claims in one statement the oldest matched standbys in the order of the failovers, one each; one holding its standby keeps it, those left without one wait', async () => {
  const { db, seed } = world.current;
  const otherLetters = [{ letter: 'C', material: false }, 'F'];
  await seed(
    site(
      ...['rec-01', 'rec-02', 'rec-03', 'rec-04', 'rec-06'].map((id) => slave({ id })),
      slave({ id: 'rec-05', drives: otherLetters }),
      standby('fo-01'),
      standby('fo-02'),
      standby('fo-03'),
      standby('fo-09', otherLetters),
    ),
  );
  for (const n of ['01', '02', '03', '04', '05', '06']) await open(db, `claim-rec-${n}`, `rec-${n}`);
  // Claimed before the batch: it holds the oldest standby.
  expect(await claimMatchedStandbys(db, ['claim-rec-06'])).toEqual([
    { claimed: true, serverId: 'fo-01', toPromote: true },
  ]);
  const before = await lastEventId(db);

  const answers = await claimMatchedStandbys(db, [
    'claim-rec-03',
    'claim-rec-01',
    'claim-rec-05',
    'claim-rec-06',
    'no-such-failover',
    'claim-rec-02',
    'claim-rec-04',
  ]);

  expect(answers.map(readable)).toEqual([
    { claimed: false, firstWait: true, toPromote: false },
    { claimed: true, serverId: 'fo-02', toPromote: true },
    { claimed: true, serverId: 'fo-09', toPromote: true },
    { claimed: true, serverId: 'fo-01', toPromote: true },
    unknownFailover('no-such-failover'),
    { claimed: true, serverId: 'fo-03', toPromote: true },
    { claimed: false, firstWait: true, toPromote: false },
  ]);
  const { rows: failovers } = await db.query(
    "SELECT id, status, failover_server_id FROM failovers WHERE id LIKE 'claim-%' ORDER BY id",
  );
  expect(failovers).toEqual([
    { id: 'claim-rec-01', status: 'standby-claimed', failover_server_id: 'fo-02' },
    { id: 'claim-rec-02', status: 'standby-claimed', failover_server_id: 'fo-03' },
    { id: 'claim-rec-03', status: 'waiting-for-standby', failover_server_id: null },
    { id: 'claim-rec-04', status: 'waiting-for-standby', failover_server_id: null },
    { id: 'claim-rec-05', status: 'standby-claimed', failover_server_id: 'fo-09' },
    { id: 'claim-rec-06', status: 'standby-claimed', failover_server_id: 'fo-01' },
  ]);
  const { rows: standbys } = await db.query(
    "SELECT id, replaces_server_id FROM servers WHERE role = 'failover' ORDER BY id",
  );
  expect(standbys).toEqual([
    { id: 'fo-01', replaces_server_id: 'rec-06' },
    { id: 'fo-02', replaces_server_id: 'rec-01' },
    { id: 'fo-03', replaces_server_id: 'rec-02' },
    { id: 'fo-09', replaces_server_id: 'rec-05' },
  ]);
  expect(
    (await eventsAfter(db, before)).map(({ event, idempotency_key }) => [event, idempotency_key]),
  ).toEqual([
    ['standby-claimed', 'claim-rec-01:standby-claimed:fo-02#1'],
    ['standby-claimed', 'claim-rec-02:standby-claimed:fo-03#1'],
    ['waiting-for-standby', 'claim-rec-03:waiting-for-standby'],
    ['waiting-for-standby', 'claim-rec-04:waiting-for-standby'],
    ['standby-claimed', 'claim-rec-05:standby-claimed:fo-09#1'],
  ]);
  // Asked again, each answers what it holds, and those waiting do not record a second wait.
  expect((await claimMatchedStandbys(db, ['claim-rec-04', 'claim-rec-01'])).map(readable)).toEqual([
    { claimed: false, firstWait: false, toPromote: false },
    { claimed: true, serverId: 'fo-02', toPromote: true },
  ]);
});

test('recordPromotions promotes the claimed standby in one statement; one promoted already, one not yet claimed and an unknown one change nothing', async () => {
  const { db, seed } = world.current;
  await seed(
    site(
      slave({ id: 'rec-01', timeout: '5s' }),
      slave({ id: 'rec-02', timeout: '7s' }),
      slave({ id: 'rec-03' }),
      standby('fo-01'),
      standby('fo-02'),
    ),
  );
  const steps = takeOverSteps(world.current);
  await open(db, 'promote-rec-01', 'rec-01');
  await open(db, 'promote-rec-02', 'rec-02');
  await open(db, 'promote-rec-03', 'rec-03');
  expect(await steps.claimMatchedStandby('promote-rec-01')).toEqual({ claimed: true, serverId: 'fo-01' });
  expect(await steps.claimMatchedStandby('promote-rec-02')).toEqual({ claimed: true, serverId: 'fo-02' });
  // Promoted before, up at once (no time to come up).
  expect(await recordPromotions(db, ['promote-rec-02'], 0)).toEqual([undefined]);
  const promotedBefore = await db.query('SELECT * FROM servers WHERE id = $1', ['fo-02']);
  const before = await lastEventId(db);

  const answers = await recordPromotions(
    db,
    ['promote-rec-01', 'promote-rec-02', 'no-such-failover', 'promote-rec-03'],
    60_000,
  );

  expect(answers.map(readable)).toEqual([
    undefined,
    undefined,
    unknownFailover('no-such-failover'),
    undefined,
  ]);
  const { rows: failovers } = await db.query(
    'SELECT id, status, failover_server_id FROM failovers ORDER BY id',
  );
  expect(failovers).toEqual([
    { id: 'promote-rec-01', status: 'promoted', failover_server_id: 'fo-01' },
    { id: 'promote-rec-02', status: 'promoted', failover_server_id: 'fo-02' },
    { id: 'promote-rec-03', status: 'started', failover_server_id: null },
  ]);
  // The claimed standby takes the Slave's place with its settings; its silence counts from when it may be up.
  const { rows: servers } = await db.query(
    `SELECT id, role, status, protected, failover_timeout_ms, replaces_server_id,
            silence_from > now() + interval '50 seconds' AND silence_from <= now() + interval '60 seconds'
              AS silent_from_server_up
       FROM servers WHERE id IN ('fo-01', 'fo-02') ORDER BY id`,
  );
  expect(servers).toEqual([
    {
      id: 'fo-01',
      role: 'slave',
      status: 'active',
      protected: true,
      failover_timeout_ms: 5_000,
      replaces_server_id: 'rec-01',
      silent_from_server_up: true,
    },
    {
      id: 'fo-02',
      role: 'slave',
      status: 'active',
      protected: true,
      failover_timeout_ms: 7_000,
      replaces_server_id: 'rec-02',
      silent_from_server_up: false,
    },
  ]);
  expect((await db.query('SELECT * FROM servers WHERE id = $1', ['fo-02'])).rows).toEqual(
    promotedBefore.rows,
  );
  expect(await eventsAfter(db, before)).toEqual([
    {
      failover_id: 'promote-rec-01',
      server_id: 'rec-01',
      event: 'standby-promoted',
      details: { failoverServerId: 'fo-01' },
      idempotency_key: 'promote-rec-01:standby-promoted:fo-01#1',
    },
  ]);
});

test('recordFences records a fenced, a not-recording, an unreachable, a refused and an already fenced Slave in one statement: events and alerts each its own, a settled fence stays', async () => {
  const { db, seed } = world.current;
  await seed(
    site(
      slave({ id: 'rec-01' }),
      slave({ id: 'rec-02' }),
      slave({ id: 'rec-03' }),
      slave({ id: 'rec-04' }),
      slave({ id: 'rec-05' }),
      slave({ id: 'rec-06' }),
    ),
  );
  for (const n of ['01', '02', '03', '04', '05', '06']) await open(db, `fence-rec-${n}`, `rec-${n}`);
  // Fenced before; and one the VMS could not reach before, with its alert.
  expect(
    await recordFences(db, [
      { failoverId: 'fence-rec-05', slaveId: 'rec-05', fence: 'fenced' },
      { failoverId: 'fence-rec-06', slaveId: 'rec-06', fence: 'unreachable', error: 'connect ETIMEDOUT' },
    ]),
  ).toEqual(['fenced', 'unreachable']);
  const fencedBefore = await db.query<{ slave_fenced_at: Date }>(
    'SELECT slave_fenced_at FROM failovers WHERE id = $1',
    ['fence-rec-05'],
  );
  const before = await lastEventId(db);

  const answers = await recordFences(db, [
    { failoverId: 'fence-rec-01', slaveId: 'rec-01', fence: 'fenced' },
    {
      failoverId: 'fence-rec-02',
      slaveId: 'rec-02',
      fence: 'not-recording',
      error: 'rec-02 is a standby: only recorders are fenced',
    },
    { failoverId: 'fence-rec-03', slaveId: 'rec-03', fence: 'unreachable', error: 'connect ECONNREFUSED' },
    { failoverId: 'fence-rec-04', slaveId: 'rec-04', fence: 'refused', error: 'locked by an operator' },
    // Fenced before: a later outcome does not undo it.
    { failoverId: 'fence-rec-05', slaveId: 'rec-05', fence: 'unreachable', error: 'connect ETIMEDOUT' },
    // Unreachable before, fenced now that the VMS reaches it.
    { failoverId: 'fence-rec-06', slaveId: 'rec-06', fence: 'fenced' },
    { failoverId: 'no-such-failover', slaveId: 'rec-01', fence: 'fenced' },
  ]);

  expect(answers.map(readable)).toEqual([
    'fenced',
    'not-recording',
    'unreachable',
    'refused',
    'fenced',
    'fenced',
    unknownFailover('no-such-failover'),
  ]);
  const { rows: failovers } = await db.query<{ id: string; slave_fence: string; fenced_at: Date | null }>(
    'SELECT id, slave_fence, slave_fenced_at AS fenced_at FROM failovers ORDER BY id',
  );
  expect(failovers).toEqual([
    { id: 'fence-rec-01', slave_fence: 'fenced', fenced_at: expect.any(Date) },
    { id: 'fence-rec-02', slave_fence: 'not-recording', fenced_at: null },
    { id: 'fence-rec-03', slave_fence: 'unreachable', fenced_at: null },
    { id: 'fence-rec-04', slave_fence: 'refused', fenced_at: null },
    { id: 'fence-rec-05', slave_fence: 'fenced', fenced_at: fencedBefore.rows[0]?.slave_fenced_at },
    { id: 'fence-rec-06', slave_fence: 'fenced', fenced_at: expect.any(Date) },
  ]);
  expect(await eventsAfter(db, before)).toEqual([
    {
      failover_id: 'fence-rec-01',
      server_id: 'rec-01',
      event: 'slave-fenced',
      details: { fence: 'fenced' },
      idempotency_key: 'fence-rec-01:slave-fenced',
    },
    {
      failover_id: 'fence-rec-02',
      server_id: 'rec-02',
      event: 'slave-fenced',
      details: { fence: 'not-recording' },
      idempotency_key: 'fence-rec-02:slave-fenced',
    },
    {
      failover_id: 'fence-rec-03',
      server_id: 'rec-03',
      event: 'slave-not-fenced',
      details: { fence: 'unreachable', error: 'connect ECONNREFUSED' },
      idempotency_key: 'fence-rec-03:slave-not-fenced',
    },
    {
      failover_id: 'fence-rec-04',
      server_id: 'rec-04',
      event: 'slave-not-fenced',
      details: { fence: 'refused', error: 'locked by an operator' },
      idempotency_key: 'fence-rec-04:slave-not-fenced',
    },
    {
      failover_id: 'fence-rec-06',
      server_id: 'rec-06',
      event: 'slave-fenced',
      details: { fence: 'fenced' },
      idempotency_key: 'fence-rec-06:slave-fenced',
    },
  ]);
  const unreachable = (slaveId: string) =>
    `${slaveId} could not be fenced: the VMS cannot reach it. It may record its cameras next to the promoted ` +
    'server; the fence is repeated when it is heard again.';
  const alerts = (await listAlerts(db)).map(({ id, kind, serverId, message, details }) => ({
    id,
    kind,
    serverId,
    message,
    details,
  }));
  expect([...alerts].sort((a, b) => a.id.localeCompare(b.id))).toEqual([
    {
      id: 'fence-rec-03:fencing-failed',
      kind: 'fencing-failed',
      serverId: 'rec-03',
      message: unreachable('rec-03'),
      details: { failoverId: 'fence-rec-03', fence: 'unreachable', error: 'connect ECONNREFUSED' },
    },
    {
      id: 'fence-rec-04:fencing-failed',
      kind: 'fencing-failed',
      serverId: 'rec-04',
      message: 'rec-04 could not be fenced: the VMS refused (locked by an operator).',
      details: { failoverId: 'fence-rec-04', fence: 'refused', error: 'locked by an operator' },
    },
    // Raised when it could not be fenced; shown until a person acknowledges it.
    {
      id: 'fence-rec-06:fencing-failed',
      kind: 'fencing-failed',
      serverId: 'rec-06',
      message: unreachable('rec-06'),
      details: { failoverId: 'fence-rec-06', fence: 'unreachable', error: 'connect ETIMEDOUT' },
    },
  ]);
  // Read back in one statement, each as it stands.
  expect(
    (await fenceTargets(db, ['fence-rec-05', 'no-such-failover', 'fence-rec-03', 'fence-rec-06'])).map(
      readable,
    ),
  ).toEqual([
    { failoverId: 'fence-rec-05', slaveId: 'rec-05', fence: 'fenced' },
    unknownFailover('no-such-failover'),
    { failoverId: 'fence-rec-03', slaveId: 'rec-03', fence: 'unreachable' },
    { failoverId: 'fence-rec-06', slaveId: 'rec-06', fence: 'fenced' },
  ]);
});

test('two fences of one failover in one batch record the settled one, and both callers hear the fence as it stands', async () => {
  const { db, seed } = world.current;
  await seed(site(slave({ id: 'rec-01' }), slave({ id: 'rec-02' })));
  await open(db, 'twice-rec-01', 'rec-01');
  await open(db, 'twice-rec-02', 'rec-02');
  const before = await lastEventId(db);

  const answers = await recordFences(db, [
    { failoverId: 'twice-rec-01', slaveId: 'rec-01', fence: 'unreachable', error: 'connect ETIMEDOUT' },
    { failoverId: 'twice-rec-01', slaveId: 'rec-01', fence: 'fenced' },
    { failoverId: 'twice-rec-02', slaveId: 'rec-02', fence: 'fenced' },
    { failoverId: 'twice-rec-02', slaveId: 'rec-02', fence: 'refused', error: 'locked by an operator' },
  ]);

  expect(answers).toEqual(['fenced', 'fenced', 'fenced', 'fenced']);
  const { rows } = await db.query<{ id: string; slave_fence: string }>(
    "SELECT id, slave_fence FROM failovers WHERE id LIKE 'twice-%' ORDER BY id",
  );
  expect(rows).toEqual([
    { id: 'twice-rec-01', slave_fence: 'fenced' },
    { id: 'twice-rec-02', slave_fence: 'fenced' },
  ]);
  expect((await eventsAfter(db, before)).map(({ failover_id, event }) => [failover_id, event])).toEqual([
    ['twice-rec-01', 'slave-fenced'],
    ['twice-rec-02', 'slave-fenced'],
  ]);
  expect((await listAlerts(db)).filter((alert) => alert.kind === 'fencing-failed')).toEqual([]);
});

test('commitCameraMoves commits the IP cameras of two Slaves in one statement, analog ones left and plugins scheduled; one committed before answers its first commit, an unknown one and one without standby their errors', async () => {
  const { db, vms, seed } = world.current;
  const description = site(
    slave({ id: 'rec-01', ipCameras: 2, analogCameras: 1, plugins: ['ANPR+', 'Activity Map'] }),
    slave({ id: 'rec-02', ipCameras: 1, analogCameras: 2, plugins: ['ANPR+'] }),
    slave({ id: 'rec-03', ipCameras: 1, analogCameras: 1, plugins: ['Activity Map'] }),
    slave({ id: 'rec-04', ipCameras: 1 }),
    standby('fo-01'),
    standby('fo-02'),
    standby('fo-03'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));
  const steps = takeOverSteps(world.current);
  for (const n of ['01', '02', '04']) await open(db, `commit-rec-${n}`, `rec-${n}`);
  expect(await steps.claimMatchedStandby('commit-rec-01')).toEqual({ claimed: true, serverId: 'fo-01' });
  expect(await steps.claimMatchedStandby('commit-rec-02')).toEqual({ claimed: true, serverId: 'fo-02' });
  // rec-03 was taken over before, its plugin reinstalled since.
  const committedBefore = await steps.takeOverFrom(await open(db, 'commit-rec-03', 'rec-03'));
  expect(committedBefore.cameras).toEqual({
    ipCameraIds: ['rec-03-ip-1'],
    analogCameraIds: ['rec-03-analog-1'],
  });
  await recordPluginInstalled(db, { failoverId: 'commit-rec-03', plugin: 'Activity Map', attempt: 1 });
  for (const [failoverId, slaveId, serverId] of [
    ['commit-rec-01', 'rec-01', 'fo-01'],
    ['commit-rec-02', 'rec-02', 'fo-02'],
  ] as const) {
    await steps.promoteStandby({ failoverId, slaveId, serverId });
    expect(await steps.fenceBrokenSlave(failoverId)).toBe('fenced');
  }
  const batch = ['commit-rec-01', 'commit-rec-03', 'no-such-failover', 'commit-rec-02', 'commit-rec-04'];
  const notClaimed = {
    error: 'InvalidInput',
    message: 'failover "commit-rec-04" has not claimed a standby server',
  };

  // The cameras to move, read in one statement: only IP cameras still on the Slave.
  expect((await ipCamerasToMoveOf(db, batch)).map(readable)).toEqual([
    { failoverServerId: 'fo-01', cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'] },
    { failoverServerId: 'fo-03', cameraIds: [] },
    unknownFailover('no-such-failover'),
    { failoverServerId: 'fo-02', cameraIds: ['rec-02-ip-1'] },
    notClaimed,
  ]);
  await vms.rebindCameras({
    requestId: 'commit-rec-01',
    cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
    toServerId: 'fo-01',
  });
  await vms.rebindCameras({ requestId: 'commit-rec-02', cameraIds: ['rec-02-ip-1'], toServerId: 'fo-02' });
  const committedAt = async (failoverId: string) =>
    (
      await db.query<{ cameras_committed_at: Date | null }>(
        'SELECT cameras_committed_at FROM failovers WHERE id = $1',
        [failoverId],
      )
    ).rows;
  const rec03CommittedAt = await committedAt('commit-rec-03');
  const before = await lastEventId(db);

  const answers = await commitCameraMoves(db, [
    { failoverId: 'commit-rec-01', cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'] },
    { failoverId: 'commit-rec-03', cameraIds: ['rec-03-ip-1'] },
    { failoverId: 'no-such-failover', cameraIds: ['rec-04-ip-1'] },
    // An analog camera asked to move stays: it is wired to its Slave.
    { failoverId: 'commit-rec-02', cameraIds: ['rec-02-ip-1', 'rec-02-analog-1'] },
    { failoverId: 'commit-rec-04', cameraIds: ['rec-04-ip-1'] },
  ]);

  expect(answers.map(readable)).toEqual([
    { ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'], analogCameraIds: ['rec-01-analog-1'] },
    { ipCameraIds: ['rec-03-ip-1'], analogCameraIds: ['rec-03-analog-1'] },
    unknownFailover('no-such-failover'),
    { ipCameraIds: ['rec-02-ip-1'], analogCameraIds: ['rec-02-analog-1', 'rec-02-analog-2'] },
    notClaimed,
  ]);
  expect(await cameraRows(db)).toEqual([
    { id: 'rec-01-analog-1', kind: 'analog', server_id: 'rec-01' },
    { id: 'rec-01-ip-1', kind: 'ip', server_id: 'fo-01' },
    { id: 'rec-01-ip-2', kind: 'ip', server_id: 'fo-01' },
    { id: 'rec-02-analog-1', kind: 'analog', server_id: 'rec-02' },
    { id: 'rec-02-analog-2', kind: 'analog', server_id: 'rec-02' },
    { id: 'rec-02-ip-1', kind: 'ip', server_id: 'fo-02' },
    { id: 'rec-03-analog-1', kind: 'analog', server_id: 'rec-03' },
    { id: 'rec-03-ip-1', kind: 'ip', server_id: 'fo-03' },
    { id: 'rec-04-ip-1', kind: 'ip', server_id: 'rec-04' },
  ]);
  const { rows: failovers } = await db.query(
    `SELECT id, status, failover_server_id, ip_cameras_moved, analog_cameras_left,
            cameras_committed_at IS NOT NULL AS committed
       FROM failovers ORDER BY id`,
  );
  expect(failovers).toEqual([
    {
      id: 'commit-rec-01',
      status: 'recording-restored',
      failover_server_id: 'fo-01',
      ip_cameras_moved: 2,
      analog_cameras_left: 1,
      committed: true,
    },
    {
      id: 'commit-rec-02',
      status: 'recording-restored',
      failover_server_id: 'fo-02',
      ip_cameras_moved: 1,
      analog_cameras_left: 2,
      committed: true,
    },
    {
      id: 'commit-rec-03',
      status: 'recording-restored',
      failover_server_id: 'fo-03',
      ip_cameras_moved: 1,
      analog_cameras_left: 1,
      committed: true,
    },
    {
      id: 'commit-rec-04',
      status: 'started',
      failover_server_id: null,
      ip_cameras_moved: null,
      analog_cameras_left: null,
      committed: false,
    },
  ]);
  expect(await committedAt('commit-rec-03')).toEqual(rec03CommittedAt);
  expect(await eventsAfter(db, before)).toEqual([
    {
      failover_id: 'commit-rec-01',
      server_id: 'rec-01',
      event: 'cameras-rebound',
      details: {
        failoverServerId: 'fo-01',
        ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
        analogCamerasLeft: ['rec-01-analog-1'],
      },
      idempotency_key: 'commit-rec-01:cameras-rebound',
    },
    {
      failover_id: 'commit-rec-02',
      server_id: 'rec-02',
      event: 'cameras-rebound',
      details: {
        failoverServerId: 'fo-02',
        ipCameraIds: ['rec-02-ip-1'],
        analogCamerasLeft: ['rec-02-analog-1', 'rec-02-analog-2'],
      },
      idempotency_key: 'commit-rec-02:cameras-rebound',
    },
  ]);
  // Each failover reinstalls its own Slave's plugins on its own promoted server; the one committed before
  // keeps what its reinstall came to.
  expect(await reinstallRows(db)).toEqual([
    {
      failover_id: 'commit-rec-01',
      plugin: 'ANPR+',
      server_id: 'fo-01',
      status: 'pending',
      handed_over_to: null,
    },
    {
      failover_id: 'commit-rec-01',
      plugin: 'Activity Map',
      server_id: 'fo-01',
      status: 'pending',
      handed_over_to: null,
    },
    {
      failover_id: 'commit-rec-02',
      plugin: 'ANPR+',
      server_id: 'fo-02',
      status: 'pending',
      handed_over_to: null,
    },
    {
      failover_id: 'commit-rec-03',
      plugin: 'Activity Map',
      server_id: 'fo-03',
      status: 'installed',
      handed_over_to: null,
    },
  ]);
  await installPendingReinstalls(db);
});

test('commitCameraMoves schedules, for the failover of a promoted server, the plugins handed over to it with its own, beside another failover committed in the same statement', async () => {
  const { db, vms, seed } = world.current;
  const description = site(
    slave({ id: 'rec-01', ipCameras: 1, analogCameras: 1, plugins: ['ANPR+', 'Activity Map'] }),
    slave({ id: 'rec-02', ipCameras: 1, plugins: ['VCA'] }),
    standby('fo-01'),
    standby('fo-02'),
    standby('fo-03'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));
  const steps = takeOverSteps(world.current);
  // fo-01 takes rec-01's place; ANPR+ is installed on it, Activity Map not yet when it breaks in turn.
  const first = await steps.takeOverFrom(await open(db, 'handover-rec-01', 'rec-01'));
  expect(first.claim).toEqual({ claimed: true, serverId: 'fo-01' });
  await recordPluginInstalled(db, { failoverId: 'handover-rec-01', plugin: 'ANPR+', attempt: 1 });
  const start = (failoverId: string, slaveId: string) =>
    ({ failoverId, slaveId, reason: 'heartbeat-timeout', deadlineMs: Date.now() }) as const;
  const openings = await openFailovers(
    db,
    [start('handover-fo-01', 'fo-01'), start('handover-rec-02', 'rec-02')],
    'detector',
  );
  expect(openings.map((opening) => ('plan' in opening ? opening.plan.plugins : opening.refused))).toEqual([
    ['ANPR+', 'Activity Map'],
    ['VCA'],
  ]);
  const moves = [
    { failoverId: 'handover-fo-01', slaveId: 'fo-01', serverId: 'fo-02', cameraIds: ['rec-01-ip-1'] },
    { failoverId: 'handover-rec-02', slaveId: 'rec-02', serverId: 'fo-03', cameraIds: ['rec-02-ip-1'] },
  ];
  for (const { failoverId, slaveId, serverId, cameraIds } of moves) {
    expect(await steps.claimMatchedStandby(failoverId)).toEqual({ claimed: true, serverId });
    await steps.promoteStandby({ failoverId, slaveId, serverId });
    expect(await steps.fenceBrokenSlave(failoverId)).toBe('fenced');
    await vms.rebindCameras({ requestId: failoverId, cameraIds, toServerId: serverId });
  }

  const answers = await commitCameraMoves(
    db,
    moves.map(({ failoverId, cameraIds }) => ({ failoverId, cameraIds })),
  );

  expect(answers).toEqual([
    { ipCameraIds: ['rec-01-ip-1'], analogCameraIds: [] },
    { ipCameraIds: ['rec-02-ip-1'], analogCameraIds: [] },
  ]);
  expect(await cameraRows(db)).toEqual([
    { id: 'rec-01-analog-1', kind: 'analog', server_id: 'rec-01' },
    { id: 'rec-01-ip-1', kind: 'ip', server_id: 'fo-02' },
    { id: 'rec-02-ip-1', kind: 'ip', server_id: 'fo-03' },
  ]);
  expect(await reinstallRows(db)).toEqual([
    // fo-01's own plugin (installed there since) and the one rec-01's failover handed over to it.
    {
      failover_id: 'handover-fo-01',
      plugin: 'ANPR+',
      server_id: 'fo-02',
      status: 'pending',
      handed_over_to: null,
    },
    {
      failover_id: 'handover-fo-01',
      plugin: 'Activity Map',
      server_id: 'fo-02',
      status: 'pending',
      handed_over_to: null,
    },
    {
      failover_id: 'handover-rec-01',
      plugin: 'ANPR+',
      server_id: 'fo-01',
      status: 'installed',
      handed_over_to: null,
    },
    {
      failover_id: 'handover-rec-01',
      plugin: 'Activity Map',
      server_id: 'fo-01',
      status: 'handed-over',
      handed_over_to: 'handover-fo-01',
    },
    {
      failover_id: 'handover-rec-02',
      plugin: 'VCA',
      server_id: 'fo-03',
      status: 'pending',
      handed_over_to: null,
    },
  ]);
  await installPendingReinstalls(db);
});

test('staleAgentsLastSeen answers, of the standbys asked, only those heard by an agent longer ago than their own timeout', async () => {
  const { db, seed } = world.current;
  const heardBy = (failoverTimeout: string, liveness: 'agent' | 'vms' | 'both' = 'agent') => ({
    failoverTimeout,
    liveness,
  });
  await seed(
    site(
      { ...standby('fo-01'), ...heardBy('30s') },
      { ...standby('fo-02'), ...heardBy('30s') },
      { ...standby('fo-03'), ...heardBy('2m') },
      { ...standby('fo-04'), ...heardBy('30s', 'vms') },
      { ...standby('fo-05'), ...heardBy('30s', 'both') },
      { ...standby('fo-06'), ...heardBy('30s') },
      { ...standby('fo-07'), ...heardBy('30s') },
      { ...standby('fo-08'), ...heardBy('30s') },
    ),
  );
  const now = Date.now();
  const minuteAgo = now - 60_000;
  const lease = (serverId: string, lastSeenMs: number) => ({
    serverId,
    lastSeenMs,
    sentAtMs: null,
    disks: [],
    intervalMs: null,
    heardBy: 'gateway-test',
  });
  await writeLeases(db, [
    lease('fo-01', minuteAgo),
    lease('fo-02', now - 5_000),
    lease('fo-03', minuteAgo),
    lease('fo-04', minuteAgo),
    lease('fo-05', minuteAgo),
    lease('fo-07', minuteAgo),
    lease('fo-08', minuteAgo),
  ]);
  // fo-07 restored since it was last heard, as a restore records it: that lease is of its earlier life.
  await db.query("UPDATE servers SET lease_valid_from = now() - interval '10 seconds' WHERE id = 'fo-07'");

  const stale = await staleAgentsLastSeen(db, [
    'fo-01',
    'fo-02',
    'fo-03',
    'fo-04',
    'fo-05',
    'fo-06',
    'fo-07',
    'fo-99',
  ]);

  // fo-02 heard lately, fo-03 within its 2 minutes, fo-04 heard through the VMS only, fo-06 never heard, fo-07
  // not since its restore, fo-99 unknown; fo-08 not asked.
  expect([...stale.entries()].map(([id, at]) => [id, at.getTime()]).sort()).toEqual([
    ['fo-01', minuteAgo],
    ['fo-05', minuteAgo],
  ]);
});

test('take-overs run together end each with its own standby and cameras, each database step one statement for all of them', async () => {
  const { db, vms, seed } = world.current;
  const slaveIds = ['rec-01', 'rec-02', 'rec-03', 'rec-04'];
  const description = site(
    ...slaveIds.map((id) => slave({ id, ipCameras: 2, analogCameras: 1 })),
    standby('fo-01'),
    standby('fo-02'),
    standby('fo-03'),
    standby('fo-04'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));
  // The VMS answers the take-overs' promotions, fences and rebinds together, as for Slaves failing together.
  const promote = vms.promoteToRecorder.bind(vms);
  const fence = vms.fenceRecorder.bind(vms);
  const rebind = vms.rebindCameras.bind(vms);
  const promotedTogether = answeredTogether(slaveIds.length);
  const fencedTogether = answeredTogether(slaveIds.length);
  const reboundTogether = answeredTogether(slaveIds.length);
  jest.spyOn(vms, 'promoteToRecorder').mockImplementation((request) => promotedTogether(promote(request)));
  jest.spyOn(vms, 'fenceRecorder').mockImplementation((request) => fencedTogether(fence(request)));
  jest.spyOn(vms, 'rebindCameras').mockImplementation((request) => reboundTogether(rebind(request)));
  const steps = takeOverSteps(world.current);
  const plans = await Promise.all(slaveIds.map((slaveId) => open(db, `together-${slaveId}`, slaveId)));
  // Every query sent to PostgreSQL on any connection, while the take-overs run.
  const queries = jest.spyOn(Client.prototype, 'query');
  let sent: unknown[] = [];

  const takeOvers = await Promise.all(plans.map((plan) => steps.takeOverFrom(plan))).finally(() => {
    sent = queries.mock.calls.map(([config]) => config as unknown);
    queries.mockRestore();
  });

  // Each Slave's cameras with its own standby, which no other take-over holds.
  const standbys = takeOvers.map(({ claim }) => (claim.claimed ? claim.serverId : null));
  expect([...standbys].sort()).toEqual(['fo-01', 'fo-02', 'fo-03', 'fo-04']);
  for (const [index, { plan, claim, cameras }] of takeOvers.entries()) {
    const slaveId = slaveIds[index] ?? '';
    const serverId = standbys[index] ?? '';
    expect({ plan: plan.failoverId, claim, cameras }).toEqual({
      plan: `together-${slaveId}`,
      claim: { claimed: true, serverId },
      cameras: {
        ipCameraIds: [`${slaveId}-ip-1`, `${slaveId}-ip-2`],
        analogCameraIds: [`${slaveId}-analog-1`],
      },
    });
    expect((await cameraRows(db)).filter((camera) => camera.id.startsWith(`${slaveId}-`))).toEqual([
      { id: `${slaveId}-analog-1`, kind: 'analog', server_id: slaveId },
      { id: `${slaveId}-ip-1`, kind: 'ip', server_id: serverId },
      { id: `${slaveId}-ip-2`, kind: 'ip', server_id: serverId },
    ]);
    expect(await cameraBindingsOf(vms, serverId)).toEqual([`${slaveId}-ip-1`, `${slaveId}-ip-2`]);
  }
  const { rows: failovers } = await db.query(
    'SELECT id, status, slave_fence, ip_cameras_moved, analog_cameras_left FROM failovers ORDER BY id',
  );
  expect(failovers).toEqual(
    slaveIds.map((slaveId) => ({
      id: `together-${slaveId}`,
      status: 'recording-restored',
      slave_fence: 'fenced',
      ip_cameras_moved: 2,
      analog_cameras_left: 1,
    })),
  );
  // Each step after the claim ran once, for the four failovers: not once per take-over.
  const executions = (statement: string) =>
    sent.filter(
      (config): config is QueryConfig =>
        typeof config === 'object' &&
        config !== null &&
        new RegExp(`^${statement}-\\d+$`).test(String((config as QueryConfig).name)),
    );
  const failoverIdsOf = (config: QueryConfig) => [...((config.values?.[0] ?? []) as string[])].sort();
  const everyFailover = slaveIds.map((slaveId) => `together-${slaveId}`);
  const statements = [
    'record-promotions',
    'fence-targets',
    'record-fences',
    'ip-cameras-to-move',
    'commit-camera-moves',
  ];
  expect(statements.map((statement) => [statement, executions(statement).map(failoverIdsOf)])).toEqual(
    statements.map((statement) => [statement, [everyFailover]]),
  );
});
