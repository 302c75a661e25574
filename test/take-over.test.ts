/**
 * The monitor of a broken Slave restores recording itself: the steps up to the IP cameras committed to a
 * matched standby run as one activity scheduled by the monitor, before the failover workflow is created.
 * The failover workflow then goes on from there (protection of the promoted server, plugin reinstalls).
 */
import { parseSite } from '../domain/site-file';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  claimMatchedStandby,
  findFailover,
  ipCamerasToMoveOf,
  openFailover,
  openFailovers,
  recordPromotions,
  restoreAsStandby,
  untoldFailovers,
} from '../store/failovers';
import { createTakeOver } from '../failover/take-over';
import { findServer } from '../store/servers';
import { fenceTargets } from '../store/fencing';
import { listAlerts } from '../store/alerts';
import { prepareTakeOverStatements } from '../store/warm-up';
import { createPool } from '../infra/database';
import { activitiesOf } from './support/activities';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf, monitorHandle } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();

const bySubject = (a: { subject: string }, b: { subject: string }) => a.subject.localeCompare(b.subject);

test('recording is restored before the failover workflow starts, and every step happens once', async () => {
  const { fleet, db, vms, client, seed, withWorker } = world.current;
  const description = site(
    slave({ id: 'rec-01', timeout: '1s', ipCameras: 2, plugins: ['ANPR+'] }),
    standby('fo-01'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result).toMatchObject({
    failoverServerId: 'fo-01',
    ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
    plugins: [{ plugin: 'ANPR+', status: 'installed' }],
  });
  const camerasCommittedAt = (await findFailover(db, result.failoverId))?.camerasCommittedAt;
  const failoverStartedAt = (await client.workflow.getHandle(result.failoverId).describe()).startTime;
  expect(camerasCommittedAt).toBeInstanceOf(Date);
  expect((camerasCommittedAt as Date).getTime()).toBeLessThan(failoverStartedAt.getTime());

  const monitorEvents = (await monitorHandle(world.current, 'rec-01').fetchHistory()).events ?? [];
  const scheduled = monitorEvents.filter((event) => event.activityTaskScheduledEventAttributes);
  expect(scheduled.map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name)).toEqual([
    'takeOverRecording',
  ]);
  const applied = (await vms.calls()).filter((call) => call.outcome === 'applied');
  expect(applied.map(({ operation, subject }) => ({ operation, subject }))).toEqual([
    { operation: 'promote', subject: 'fo-01' },
    // The broken Slave stops recording before its cameras move.
    { operation: 'fence', subject: 'rec-01' },
    { operation: 'rebind', subject: 'fo-01' },
    { operation: 'install-plugin', subject: 'fo-01/ANPR+' },
  ]);
  expect(await vms.calls()).toHaveLength(4);
});

test('each take-over step run again changes nothing: claim, promotion and camera move are recorded once', async () => {
  const { db, vms, seed } = world.current;
  const description = site(slave({ id: 'rec-01', ipCameras: 2 }), standby('fo-01'), standby('fo-02'));
  await seed(description);
  await vms.putSite(parseSite(description));
  const activities = activitiesOf(world.current);
  const run = new MockActivityEnvironment();
  const failoverId = 'take-over-steps-rec-01';
  const start = {
    failoverId,
    slaveId: 'rec-01',
    reason: 'heartbeat-timeout' as const,
    deadlineMs: Date.now(),
  };

  await run.run(activities.beginFailover, start);
  const claimed = { claimed: true, serverId: 'fo-01' };
  expect(await run.run(activities.claimMatchedStandby, failoverId)).toEqual(claimed);
  expect(await run.run(activities.claimMatchedStandby, failoverId)).toEqual(claimed);
  const promotion = { failoverId, slaveId: 'rec-01', serverId: 'fo-01' };
  await run.run(activities.promoteStandby, promotion);
  await run.run(activities.promoteStandby, promotion);
  // Once promoted, a claim run again keeps the server in the Slave's place, whatever the VMS says of it now.
  await vms.setServerState('fo-01', 'down');
  expect(await run.run(activities.claimMatchedStandby, failoverId)).toEqual(claimed);
  await vms.setServerState('fo-01', 'up');
  await run.run(activities.fenceBrokenSlave, failoverId);
  const moved = { ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'], analogCameraIds: [] };
  expect(await run.run(activities.rebindIpCameras, failoverId)).toEqual(moved);
  expect(await run.run(activities.rebindIpCameras, failoverId)).toEqual(moved);

  expect(await findServer(db, 'fo-01')).toMatchObject({
    role: 'slave',
    status: 'active',
    outOfService: null,
  });
  expect(await findServer(db, 'fo-02')).toMatchObject({ role: 'failover', replacesServerId: null });
  expect(await findFailover(db, failoverId)).toMatchObject({
    status: 'recording-restored',
    ipCamerasMoved: 2,
  });
  const { rows } = await db.query<{ event: string; idempotency_key: string }>(
    'SELECT event, idempotency_key FROM failover_events WHERE failover_id = $1 ORDER BY id',
    [failoverId],
  );
  expect(rows).toEqual([
    { event: 'moved-to-broken-recorders', idempotency_key: `${failoverId}:moved-to-broken-recorders` },
    { event: 'standby-claimed', idempotency_key: `${failoverId}:standby-claimed:fo-01#1` },
    { event: 'standby-promoted', idempotency_key: `${failoverId}:standby-promoted:fo-01#1` },
    { event: 'slave-fenced', idempotency_key: `${failoverId}:slave-fenced` },
    { event: 'cameras-rebound', idempotency_key: `${failoverId}:cameras-rebound` },
  ]);
  expect(await recordPromotions(db, [failoverId, 'no-such-failover'], 60_000)).toEqual([
    undefined,
    expect.objectContaining({ type: 'InvalidInput', message: 'unknown failover "no-such-failover"' }),
  ]);
});

test('the cameras to move are asked only of a failover that claimed a standby', async () => {
  const { db, seed } = world.current;
  await seed(site(slave({ id: 'rec-01', ipCameras: 1 })));
  const failoverId = 'take-over-unclaimed-rec-01';
  await openFailover(
    db,
    { failoverId, slaveId: 'rec-01', reason: 'heartbeat-timeout', deadlineMs: Date.now() },
    'monitor',
  );

  expect(await claimMatchedStandby(db, failoverId)).toEqual({
    claimed: false,
    firstWait: true,
    toPromote: false,
  });
  expect(await ipCamerasToMoveOf(db, [failoverId, 'no-such-failover'])).toEqual([
    expect.objectContaining({
      type: 'InvalidInput',
      message: `failover "${failoverId}" has not claimed a standby server`,
    }),
    expect.objectContaining({ type: 'InvalidInput', message: 'unknown failover "no-such-failover"' }),
  ]);
});

test('a worker prepares every take-over statement on its connections as it starts, planned for any values, and preparing them changes nothing', async () => {
  const { db, seed, databaseUrl, logger } = world.current;
  await seed(site(slave({ id: 'rec-01', ipCameras: 2 }), standby('fo-01')));
  const siteNow = async () =>
    (
      await db.query<Record<string, string>>(
        `SELECT (SELECT count(*) FROM failovers) AS failovers, (SELECT count(*) FROM failover_events) AS events,
                (SELECT string_agg(id || ':' || role || ':' || status, ',' ORDER BY id) FROM servers) AS servers,
                (SELECT string_agg(id || ':' || server_id, ',' ORDER BY id) FROM cameras) AS cameras`,
      )
    ).rows;
  const before = await siteNow();
  const pool = createPool(databaseUrl, logger, { max: 3, plans: 'generic' });
  try {
    // A statement whose values drifted from its parameters would be answered as failed.
    expect(await prepareTakeOverStatements(pool, 3)).toEqual({ statements: 11, failed: [] });
    expect(await siteNow()).toEqual(before);

    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    try {
      for (const client of clients) {
        const { rows } = await client.query<{ name: string; generic_plans: string }>(
          'SELECT name, generic_plans FROM pg_prepared_statements ORDER BY name',
        );
        // Each connection's own names: the embedded PostgreSQL shares one session between connections.
        expect(rows.map((row) => row.name.replace(/-\d+$/, ''))).toEqual([
          'attempt-claims',
          'commit-camera-moves',
          'fence-targets',
          'ip-cameras-to-move',
          'liveness-records',
          'lock-servers',
          'open-failovers',
          'open-failovers-of-slaves',
          'record-fences',
          'record-promotions',
          'stale-agent-last-seen',
        ]);
        // Planned once for any values: a take-over on this connection neither parses nor plans them again.
        expect(rows.every((row) => Number(row.generic_plans) === 1)).toBe(true);
        expect((await client.query<{ jit: string }>('SHOW jit')).rows).toEqual([{ jit: 'off' }]);
      }
    } finally {
      for (const client of clients) client.release();
    }
  } finally {
    await pool.end();
  }
});

test('failovers decided together open in one transaction: each refusal changes nothing for its own, the others open with their plugins', async () => {
  const { db, seed } = world.current;
  await seed(
    site(
      slave({ id: 'rec-01', plugins: ['ANPR+', 'Activity Map'] }),
      slave({ id: 'rec-02', plugins: ['ANPR+'] }),
      slave({ id: 'rec-03' }),
      standby('fo-01'),
    ),
  );
  const start = (failoverId: string, slaveId: string) =>
    ({ failoverId, slaveId, reason: 'heartbeat-timeout', deadlineMs: Date.now() }) as const;
  // Opened before: the batch joins it.
  await openFailover(db, start('f-rec-02', 'rec-02'), 'detector');
  const eventsBefore = await db.query('SELECT id FROM failover_events');

  const openings = await openFailovers(
    db,
    [
      start('f-rec-01', 'rec-01'),
      start('f-rec-02', 'rec-02'),
      start('f-master', 'master'),
      start('f-rec-99', 'rec-99'),
      start('f-fo-01', 'fo-01'),
      start('f-rec-01-again', 'rec-01'),
      start('f-rec-03', 'rec-03'),
    ],
    'detector',
  );

  expect(openings).toEqual([
    {
      plan: {
        failoverId: 'f-rec-01',
        slaveId: 'rec-01',
        driveLetters: ['C', 'D', 'E'],
        plugins: ['ANPR+', 'Activity Map'],
      },
      openedNow: true,
    },
    {
      plan: { failoverId: 'f-rec-02', slaveId: 'rec-02', driveLetters: ['C', 'D', 'E'], plugins: ['ANPR+'] },
      openedNow: false,
    },
    { refused: expect.objectContaining({ type: 'NotASlave' }) },
    { refused: expect.objectContaining({ type: 'UnknownServer', message: 'unknown server "rec-99"' }) },
    { refused: expect.objectContaining({ type: 'NotASlave' }) },
    { refused: expect.objectContaining({ type: 'FailoverInProgress' }) },
    {
      plan: { failoverId: 'f-rec-03', slaveId: 'rec-03', driveLetters: ['C', 'D', 'E'], plugins: [] },
      openedNow: true,
    },
  ]);
  const { rows: servers } = await db.query<{ id: string; status: string }>(
    "SELECT id, status FROM servers WHERE id IN ('master', 'fo-01', 'rec-01', 'rec-02', 'rec-03') ORDER BY id",
  );
  expect(servers).toEqual([
    { id: 'fo-01', status: 'standby' },
    { id: 'master', status: 'active' },
    { id: 'rec-01', status: 'broken' },
    { id: 'rec-02', status: 'broken' },
    { id: 'rec-03', status: 'broken' },
  ]);
  const { rows: failovers } = await db.query<{ id: string }>('SELECT id FROM failovers ORDER BY id');
  expect(failovers.map((row) => row.id)).toEqual(['f-rec-01', 'f-rec-02', 'f-rec-03']);
  // One event each for the two opened now, none for the joined or the refused.
  const { rows: events } = await db.query<{ failover_id: string; event: string }>(
    'SELECT failover_id, event FROM failover_events WHERE NOT id = ANY($1) ORDER BY failover_id',
    [eventsBefore.rows.map((row: { id: string }) => row.id)],
  );
  expect(events).toEqual([
    { failover_id: 'f-rec-01', event: 'moved-to-broken-recorders' },
    { failover_id: 'f-rec-03', event: 'moved-to-broken-recorders' },
  ]);
});

test('a failover the detector opened is untold until its monitor is told or joins it, and never once its Slave is restored', async () => {
  const { db, seed, vms, config } = world.current;
  const description = site(
    slave({ id: 'rec-01', ipCameras: 1 }),
    slave({ id: 'rec-02' }),
    slave({ id: 'rec-03' }),
    standby('fo-01'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));
  const steps = createTakeOver({ db, vms, tuning: config.failover, log: { info: () => {}, warn: () => {} } });
  const open = (failoverId: string, slaveId: string, openedBy: 'detector' | 'monitor') =>
    openFailover(db, { failoverId, slaveId, reason: 'heartbeat-timeout', deadlineMs: Date.now() }, openedBy);
  const untold = async () => (await untoldFailovers(db)).map((failover) => failover.failoverId);

  const { plan } = await open('f-rec-01', 'rec-01', 'detector');
  await open('f-rec-02', 'rec-02', 'monitor');
  await open('f-rec-03', 'rec-03', 'detector');
  expect(await untold()).toEqual(['f-rec-01', 'f-rec-03']);

  // Its monitor's take-over joins it, or the detector records its monitor told.
  await open('f-rec-03', 'rec-03', 'monitor');
  expect(await untold()).toEqual(['f-rec-01']);

  // Taken over to the camera move, then restored as a standby before anyone told its monitor: a report of its
  // old failover must reach no one (its monitor may be one of its next life by then).
  await steps.takeOverFrom(plan);
  expect(await untold()).toEqual(['f-rec-01']);
  await restoreAsStandby(db, { serverId: 'rec-01' });
  expect(await untold()).toEqual([]);
});

test('take-overs decided together ask the VMS about their own servers, never the whole site: a standby it reports down is passed over, a Slave it cannot reach is not asked to fence', async () => {
  const { db, seed, vms, config } = world.current;
  const description = site(
    slave({ id: 'rec-01', ipCameras: 1 }),
    slave({ id: 'rec-02', ipCameras: 1 }),
    slave({ id: 'rec-03', ipCameras: 1 }),
    slave({ id: 'rec-04', ipCameras: 1 }),
    standby('fo-01'),
    standby('fo-02'),
    standby('fo-03'),
    standby('fo-04'),
    standby('fo-05'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));
  await vms.setServerState('fo-02', 'down');
  // Crashed: the VMS cannot reach them.
  await vms.setServerState('rec-02', 'down');
  await vms.setServerState('rec-04', 'down');
  const siteReads = jest.spyOn(vms, 'serverStatus');
  const oneServerReads = jest.spyOn(vms, 'serverStatusOf');
  const serverReads = jest.spyOn(vms, 'serverStatusesOf');
  const oneServerAsks = jest.spyOn(vms, 'isServerUp');
  const steps = createTakeOver({ db, vms, tuning: config.failover, log: { info: () => {}, warn: () => {} } });
  const plans = await Promise.all(
    ['rec-01', 'rec-02', 'rec-03'].map(async (slaveId) => {
      const start = { failoverId: `together-${slaveId}`, slaveId, reason: 'heartbeat-timeout' as const };
      return (await openFailover(db, { ...start, deadlineMs: Date.now() }, 'detector')).plan;
    }),
  );

  const takeOvers = await Promise.all(plans.map((plan) => steps.takeOverFrom(plan, { together: true })));

  const promoted = takeOvers.map((takeOver) => (takeOver.claim.claimed ? takeOver.claim.serverId : null));
  expect([...promoted].sort()).toEqual(['fo-01', 'fo-03', 'fo-04']);
  expect(await findServer(db, 'fo-02')).toMatchObject({
    role: 'failover',
    outOfService: { reason: 'the VMS reports it down' },
  });
  // Each Slave, asked about as its take-over started, and each standby claimed, once; the Slaves in one call.
  expect(serverReads.mock.calls[0]).toEqual([['rec-01', 'rec-02', 'rec-03']]);
  expect(serverReads.mock.calls.flatMap(([serverIds]) => serverIds).sort()).toEqual([
    'fo-01',
    'fo-02',
    'fo-03',
    'fo-04',
    'rec-01',
    'rec-02',
    'rec-03',
  ]);
  expect(siteReads).not.toHaveBeenCalled();
  expect(oneServerReads).not.toHaveBeenCalled();
  expect(oneServerAsks).not.toHaveBeenCalled();
  // The Slaves the VMS reaches are fenced; the one it cannot reach is recorded so, with its alert, uncalled.
  const fences = await vms.calls('fence');
  expect(fences.map(({ subject, outcome }) => ({ subject, outcome })).sort(bySubject)).toEqual([
    { subject: 'rec-01', outcome: 'applied' },
    { subject: 'rec-03', outcome: 'applied' },
  ]);
  expect(await fenceTargets(db, ['together-rec-02'])).toEqual([
    expect.objectContaining({ fence: 'unreachable' }),
  ]);
  const fencingAlerts = (await listAlerts(db)).filter((alert) => alert.kind === 'fencing-failed');
  expect(fencingAlerts).toEqual([expect.objectContaining({ serverId: 'rec-02' })]);

  // Decided alone, a take-over asks about its standby alone, and asks the VMS to fence its Slave.
  const alone = await openFailover(
    db,
    { failoverId: 'alone-rec-04', slaveId: 'rec-04', reason: 'heartbeat-timeout', deadlineMs: Date.now() },
    'detector',
  );
  expect((await steps.takeOverFrom(alone.plan)).claim).toEqual({ claimed: true, serverId: 'fo-05' });
  expect(siteReads).not.toHaveBeenCalled();
  expect(oneServerAsks).toHaveBeenCalledTimes(1);
  expect((await vms.calls('fence')).filter((call) => call.subject === 'rec-04')).toEqual([
    expect.objectContaining({ outcome: 'failed', code: 'server-unreachable' }),
  ]);
  expect(await fenceTargets(db, ['alone-rec-04'])).toEqual([
    expect.objectContaining({ fence: 'unreachable' }),
  ]);
});

test('a finished take-over tells its monitor once the take-overs under way with it have ended', async () => {
  const { fleet, db, vms, seed, withWorker } = world.current;
  const description = site(
    slave({ id: 'rec-01', timeout: '1s', ipCameras: 1 }),
    slave({ id: 'rec-02', timeout: '1s', ipCameras: 1 }),
    standby('fo-01'),
    standby('fo-02'),
  );
  await seed(description);
  await vms.putSite(parseSite(description));
  const camerasCommitted = async () =>
    (
      await db.query<{ id: string; slave_id: string }>(
        'SELECT id, slave_id FROM failovers WHERE cameras_committed_at IS NOT NULL ORDER BY id',
      )
    ).rows;
  const untold = async () => (await untoldFailovers(db)).map((failover) => failover.failoverId);

  // The first promotion the VMS gets is applied and not answered: its take-over stays under way.
  const promotion = await vms.hold('promote');
  try {
    await withWorker(async () => {
      await Promise.all([fleet.startMonitor('rec-01'), fleet.startMonitor('rec-02')]);
      await eventually('a promotion to be held', () => promotion.reached());
      const [done] = await eventually('the other take-over to commit its cameras', async () => {
        const rows = await camerasCommitted();
        return rows.length === 1 && rows;
      });
      // Its recording is restored; its monitor is not told while the other take-over is under way.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await untold()).toContain(done?.id);
      expect(await fleet.monitorState(done?.slave_id ?? '')).toMatchObject({ broken: null });

      await promotion.release();
      for (const slaveId of ['rec-01', 'rec-02']) {
        expect(await failoverOf(world.current, slaveId, { stopPromotedMonitor: true })).toMatchObject({
          ipCameraIds: [`${slaveId}-ip-1`],
        });
      }
      expect(await untold()).toEqual([]);
    });
  } finally {
    await promotion.release();
  }
});
