/**
 * Standby health and fallback: a failover claims only standbys the VMS reports up; a standby that fails
 * (down when claimed, or out of reach past the standby budget while promoted) is released and out of
 * service, and the next matched standby takes over; with none left the Slave waits and an alert says so.
 */
import { parseSite } from '../domain/site-file';
import { listAlerts } from '../store/alerts';
import { findFailover } from '../store/failovers';
import { readLeases } from '../store/leases';
import { getServer } from '../store/servers';
import { failoverStateQuery } from '../workflows/definitions';
import { failoverRows } from './support/db';
import { keepHeartbeating } from './support/heartbeat-loop';
import { heartbeat } from './support/heartbeats';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';
import type { TestContext } from './support/world';

const world = useTestWorld();

const CAMERAS = ['rec-01-ip-1', 'rec-01-ip-2'];

const standbyAgentSilentForMs = async (w: TestContext, serverId: string): Promise<number> =>
  (
    await w.db.query<{ silent_ms: number }>(
      `SELECT (extract(epoch FROM now() - last_seen_at) * 1000)::float8 AS silent_ms FROM server_leases
        WHERE server_id = $1`,
      [serverId],
    )
  ).rows[0]?.silent_ms ?? 0;

const recordedBy = async (w: TestContext, serverId: string): Promise<string[]> =>
  (await w.vms.state()).servers.find((server) => server.serverId === serverId)?.recordedCameras ?? [];

/** Rec-01 (3 s timeout) monitored and heard, on a site the simulated VMS holds too; its agent is returned. */
const monitoredAndHeard = async (w: TestContext, description: ReturnType<typeof site>) => {
  await w.seed(description);
  await w.vms.putSite(parseSite(description));
  await w.startLiveness();
  const agent = keepHeartbeating(w.agents, ['rec-01'], 250);
  await w.fleet.startMonitor('rec-01');
  await monitorReaches(w, 'rec-01', (state) => state.lastHeartbeatAtMs !== null);
  return agent;
};

test('a standby the VMS reports down is not claimed: it goes out of service and the next matched standby takes over', async () => {
  const w = world.current;
  const description = site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01'), standby('fo-02'));
  await w.withWorker(async () => {
    const agent = await monitoredAndHeard(w, description);
    await w.vms.setServerState('fo-01', 'down');

    await agent.stop('rec-01');
    const failover = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });

    expect(failover.failoverServerId).toBe('fo-02');
    expect(await recordedBy(w, 'fo-02')).toEqual(CAMERAS);
    const record = await findFailover(w.db, failover.failoverId);
    expect(
      (record?.camerasCommittedAt?.getTime() ?? Infinity) - (record?.deadlineAt.getTime() ?? 0),
    ).toBeLessThan(30_000);
    expect((await getServer(w.db, 'fo-01')).outOfService).toEqual({
      sinceMs: expect.any(Number),
      reason: 'the VMS reports it down',
    });
    expect((await listAlerts(w.db)).map((alert) => `${alert.kind} ${alert.serverId}`)).toEqual([
      'standby-out-of-service fo-01',
    ]);

    // Repaired and put back: claimable again.
    await w.vms.setServerState('fo-01', 'up');
    expect(await w.fleet.putStandbyInService('fo-01', 'operator')).toEqual({
      wasOutOfService: true,
      notifiedFailoverIds: [],
    });
    expect((await getServer(w.db, 'fo-01')).outOfService).toBeNull();
  });
});

test('a promoted standby the VMS stops reaching is given up after the standby budget: the next one records within 30 s', async () => {
  const w = world.current;
  const description = site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01'), standby('fo-02'));
  await w.withWorker(async () => {
    const agent = await monitoredAndHeard(w, description);
    // Fo-01 is up when claimed and promoted, and goes down before the cameras move to it.
    const promotion = await w.vms.hold('promote', 'fo-01');
    await agent.stop('rec-01');
    await eventually('fo-01 to be promoted', async () => ((await promotion.reached()) ? true : undefined));
    await w.vms.setServerState('fo-01', 'down');
    const downAtMs = Date.now();
    await promotion.release();

    const failover = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true, timeoutMs: 60_000 });

    expect(failover.failoverServerId).toBe('fo-02');
    expect(await recordedBy(w, 'fo-02')).toEqual(CAMERAS);
    const record = await findFailover(w.db, failover.failoverId);
    expect(record?.camerasCommittedAt?.getTime() ?? Infinity).toBeLessThan(downAtMs + 30_000);
    expect((await getServer(w.db, 'fo-01')).outOfService?.reason).toMatch(/has not reached standby fo-01/);
    expect(await w.vms.camerasRecordedTwice()).toEqual([]);
  });
});

test('a standby whose agent went silent is not claimed, though the VMS reports it up: the next one takes over', async () => {
  const w = world.current;
  const description = site(
    slave({ id: 'rec-01', timeout: '3s' }),
    { ...standby('fo-01'), failoverTimeout: '2s' },
    standby('fo-02'),
  );
  await w.withWorker(async () => {
    const agent = await monitoredAndHeard(w, description);
    // Fo-01's agent was heard once, then nothing for longer than its timeout; fo-02 runs no agent.
    await heartbeat(w.agents, 'fo-01');
    await eventually('the lease of fo-01 to be written', async () => (await readLeases(w.db, ['fo-01']))[0]);
    await eventually(
      'the agent of fo-01 to be silent for its timeout',
      async () => ((await standbyAgentSilentForMs(w, 'fo-01')) > 2_000 ? true : undefined),
      { timeoutMs: 10_000 },
    );

    await agent.stop('rec-01');
    const failover = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });

    expect(failover.failoverServerId).toBe('fo-02');
    expect((await getServer(w.db, 'fo-01')).outOfService?.reason).toMatch(/its agent was last heard at/);
    expect(await recordedBy(w, 'fo-02')).toEqual(CAMERAS);
  });
});

test('with no matched standby left the Slave waits with an alert, and goes on once one is back in service', async () => {
  const w = world.current;
  const description = site(slave({ id: 'rec-01', timeout: '3s' }), standby('fo-01'));
  await w.withWorker(async () => {
    const agent = await monitoredAndHeard(w, description);
    await w.vms.setServerState('fo-01', 'down');

    await agent.stop('rec-01');
    const { broken } = await monitorReaches(w, 'rec-01', (state) => state.phase === 'failed-over');
    const failoverWorkflow = w.client.workflow.getHandle(broken?.failoverId ?? '');
    await eventually('the failover of rec-01 to wait for a standby', async () => {
      const state = await failoverWorkflow.query(failoverStateQuery).catch(() => undefined);
      return state?.step === 'waiting for a matched standby' ? state : undefined;
    });
    expect((await failoverRows(w.db)).map((row) => row.status)).toEqual(['waiting-for-standby']);
    expect((await listAlerts(w.db)).map((alert) => `${alert.kind} ${alert.serverId}`)).toEqual([
      'standby-out-of-service fo-01',
      'no-matched-standby rec-01',
    ]);

    await w.vms.setServerState('fo-01', 'up');
    const { notifiedFailoverIds } = await w.fleet.putStandbyInService('fo-01', 'operator');
    expect(notifiedFailoverIds).toHaveLength(1);
    const failover = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
    expect(failover.failoverServerId).toBe('fo-01');
    expect(await recordedBy(w, 'fo-01')).toEqual(CAMERAS);
  });
});
