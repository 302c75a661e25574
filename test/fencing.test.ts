/**
 * Fencing: a broken Slave is stopped recording in the VMS before its cameras move, so that no camera is
 * recorded by two servers, also when the "broken" Slave is alive and heartbeating late; a Slave the VMS
 * cannot reach then is fenced once it is heard again, by its agent or by the VMS reaching it (its agent still
 * dead); a restored server is a standby in the VMS too.
 * The simulated VMS records which server records which camera, apart from the bindings.
 */
import { parseSite } from '../domain/site-file';
import { listAlerts } from '../store/alerts';
import { eventsOf, failoverRows } from './support/db';
import { heartbeat } from './support/heartbeats';
import { keepHeartbeating } from './support/heartbeat-loop';
import type { HeartbeatLoop } from './support/heartbeat-loop';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';
import type { TestContext } from './support/world';

const world = useTestWorld();

const description = site(slave({ id: 'rec-01', timeout: '2s', ipCameras: 3 }), standby('fo-01'));
const CAMERAS = ['rec-01-ip-1', 'rec-01-ip-2', 'rec-01-ip-3'];

const vmsServer = async (w: TestContext, serverId: string) => {
  const server = (await w.vms.state()).servers.find((candidate) => candidate.serverId === serverId);
  if (server === undefined) throw new Error(`the simulated VMS has no server ${serverId}`);
  return server;
};

const slaveFence = async (w: TestContext, failoverId: string): Promise<string | null> =>
  (
    await w.db.query<{ slave_fence: string | null }>('SELECT slave_fence FROM failovers WHERE id = $1', [
      failoverId,
    ])
  ).rows[0]?.slave_fence ?? null;

/** Rec-01 monitored and heard by its agent, recording its cameras in the VMS. */
const monitoredAndHeard = async (w: TestContext) => {
  await w.seed(description);
  await w.vms.putSite(parseSite(description));
  await w.startLiveness();
  const agent = keepHeartbeating(w.agents, ['rec-01'], 250);
  await w.fleet.startMonitor('rec-01');
  await monitorReaches(w, 'rec-01', (state) => state.lastHeartbeatAtMs !== null);
  expect((await vmsServer(w, 'rec-01')).recordedCameras).toEqual(CAMERAS);
  return agent;
};

/** Rec-01 cut off from the VMS and silent: it fails over to fo-01 unfenced. */
const failedOverUnreachable = async (w: TestContext, agent: HeartbeatLoop) => {
  await w.vms.setServerState('rec-01', 'partitioned');
  await agent.stop('rec-01');
  return failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
};

/** Rec-01 fenced at last: it records nothing, fo-01 records its cameras, none twice. */
const fencedAtLast = async (w: TestContext, failoverId: string, timeoutMs?: number) => {
  await eventually(
    'rec-01 to be fenced',
    async () => ((await slaveFence(w, failoverId)) === 'fenced' ? true : undefined),
    timeoutMs === undefined ? {} : { timeoutMs },
  );
  expect(await w.vms.camerasRecordedTwice()).toEqual([]);
  expect(await vmsServer(w, 'rec-01')).toMatchObject({ fenced: true, recordedCameras: [] });
};

test('a Slave whose agent link died while it records is fenced before its cameras move; late heartbeats change nothing; restore makes it a standby in the VMS', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    const agent = await monitoredAndHeard(w);

    // The agent's link dies; the recording service runs on and the VMS still reaches the server.
    await agent.stop('rec-01');
    const failover = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
    expect(failover.failoverServerId).toBe('fo-01');

    expect(await w.vms.camerasRecordedTwice()).toEqual([]);
    expect(await vmsServer(w, 'rec-01')).toMatchObject({ fenced: true, recordedCameras: [] });
    expect((await vmsServer(w, 'fo-01')).recordedCameras).toEqual(CAMERAS);
    const calls = (await w.vms.calls()).filter((call) => call.outcome === 'applied');
    expect(calls.map((call) => `${call.operation} ${call.subject}`)).toEqual([
      'promote fo-01',
      'fence rec-01',
      'rebind fo-01',
    ]);
    expect(await slaveFence(w, failover.failoverId)).toBe('fenced');

    // The agent is back: its heartbeats are late, the server stays fenced.
    await heartbeat(w.agents, 'rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats >= 1);
    await heartbeat(w.agents, 'rec-01');
    expect(await w.vms.camerasRecordedTwice()).toEqual([]);
    expect(await vmsServer(w, 'rec-01')).toMatchObject({ fenced: true, recordedCameras: [] });

    await w.fleet.restore('rec-01');
    expect(await vmsServer(w, 'rec-01')).toMatchObject({ role: 'standby', recordedCameras: [] });
    expect(await eventsOf(w.db, 'rec-01')).toContain('demoted-to-standby');
    expect(await w.vms.camerasRecordedTwice()).toEqual([]);
  });
});

test('a Slave the VMS cannot reach as it fails over is recorded unfenced with an alert, and fenced once it is heard again', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    const agent = await monitoredAndHeard(w);

    // Cut off: neither its agent nor the VMS reaches it, and it records on.
    const failover = await failedOverUnreachable(w, agent);
    expect((await failoverRows(w.db))[0]).toMatchObject({ status: 'completed', failover_server_id: 'fo-01' });
    expect(await slaveFence(w, failover.failoverId)).toBe('unreachable');
    expect(await listAlerts(w.db)).toEqual([
      expect.objectContaining({ kind: 'fencing-failed', serverId: 'rec-01' }),
    ]);
    // What fencing cannot prevent while the server is out of reach: it still records.
    expect((await w.vms.camerasRecordedTwice()).map((camera) => camera.cameraId)).toEqual(CAMERAS);

    // The link is back: its first late heartbeat has it fenced.
    await w.vms.setServerState('rec-01', 'up');
    await heartbeat(w.agents, 'rec-01');
    await fencedAtLast(w, failover.failoverId);
    expect((await vmsServer(w, 'fo-01')).recordedCameras).toEqual(CAMERAS);
  });
});

test('a Slave the VMS could not reach as it failed over is fenced once the VMS reaches it again, its agent still silent', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    const failover = await failedOverUnreachable(w, await monitoredAndHeard(w));
    expect(await slaveFence(w, failover.failoverId)).toBe('unreachable');
    const siteReads = jest.spyOn(w.vms, 'serverStatus');
    const serverReads = jest.spyOn(w.vms, 'serverStatusesOf');
    const oneServerReads = jest.spyOn(w.vms, 'serverStatusOf');

    // The link to the VMS is back (server-up in its status); the agent never heartbeats again.
    await w.vms.setServerState('rec-01', 'up');
    await fencedAtLast(w, failover.failoverId);
    expect((await vmsServer(w, 'fo-01')).recordedCameras).toEqual(CAMERAS);
    // No server is heard through the VMS: the Slave whose fence is pending is named, never the whole site
    // read (a site of 10,000 servers with one Slave down for days would be read whole every second).
    expect(serverReads).toHaveBeenCalledWith(['rec-01']);
    expect(oneServerReads).not.toHaveBeenCalled();
    expect(siteReads).not.toHaveBeenCalled();
  });
});

test('a Slave heard late while the VMS still cannot reach it is fenced at a later report, once the VMS reaches it', async () => {
  const w = world.current;
  await w.withWorker(async () => {
    const failover = await failedOverUnreachable(w, await monitoredAndHeard(w));

    // Its agent reaches the gateway once more, the VMS still does not reach it: the fence waits.
    await heartbeat(w.agents, 'rec-01');
    await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats === 1);
    expect(await slaveFence(w, failover.failoverId)).toBe('unreachable');

    // The VMS reaches it; its agent stays silent. The detector tells the monitor again (at most once a
    // minute per Slave), and that report, the second, has it fenced.
    await w.vms.setServerState('rec-01', 'up');
    await fencedAtLast(w, failover.failoverId, 90_000);
  });
}, 180_000);
