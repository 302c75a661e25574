/**
 * The VMS bridge misbehaving in the middle of a failover: a call that hangs past its deadline, then the bridge
 * gone altogether (connections cut, new ones refused) and back. The worker — its own process, driving the
 * bridge over HTTP — retries with the same request ids: the failover completes once, every VMS effect applied
 * once, no camera recorded by two servers.
 */
import type { AddressInfo } from 'node:net';
import { createSimulatorServer, listen, stopServer } from '../../vms/simulator-server';
import { TestAgents } from '../support/agents';
import { terminateRunningWorkflows } from '../support/cleanup';
import { failoverRows } from '../support/db';
import { breakAllDisks } from '../support/heartbeats';
import { buildService, killAllServices, startService } from '../support/service-process';
import type { ServiceProcess } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import { startSimulatorService, stopSimulatorServices } from '../support/simulator-service';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';
import { readFileSync } from 'node:fs';

beforeAll(buildService, 180_000);

afterEach(async () => {
  await killAllServices();
  await stopSimulatorServices();
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const gatewayOf = (service: ServiceProcess): string =>
  (JSON.parse(readFileSync(service.readyFile, 'utf8')) as { gateway: string }).gateway;

test('a rebind that hangs past its deadline, then the bridge gone for 5 s: the failover completes once, nothing recorded twice', async () => {
  const w = world.current;
  const description = site(slave({ id: 'rec-01', timeout: '1h', ipCameras: 3 }), standby('fo-01'));
  await w.seed(description);
  const bridge = await startSimulatorService(w, { token: null });
  await bridge.seed(description);
  const service = startService({
    ...serviceEnv(w),
    VMS_BRIDGE_URL: bridge.url,
    VMS_SIMULATOR: 'off',
    VMS_BRIDGE_TIMEOUT: '2s',
  });
  await service.ready();
  await w.fleet.startMonitor('rec-01');
  // The monitor entered rec-01 in the detector's roster.
  await eventually('rec-01 to be in the liveness roster', async () => {
    const { rows } = await w.db.query<{ monitored: boolean }>(
      'SELECT monitored_since IS NOT NULL AS monitored FROM servers WHERE id = $1',
      ['rec-01'],
    );
    return rows[0]?.monitored === true ? true : undefined;
  });

  await bridge.client.setCallFault('rebind', { hang: true });
  await breakAllDisks(new TestAgents(w.db, () => [gatewayOf(service)]), 'rec-01');
  // Promoted, and the rebind hangs: the worker gives up on it after 2 s and tries again, and again.
  await eventually('the take-over to be retried twice', () =>
    Promise.resolve(
      service
        .logs()
        .filter((line) => line.msg === 'Activity failed' && line.activityType === 'takeOverRecording')
        .length >= 2
        ? true
        : undefined,
    ),
  );
  expect(await bridge.simulator.camerasRecordedTwice()).toEqual([]);

  // The bridge goes away: every connection cut, new ones refused, for 5 s.
  const { port } = bridge.server.address() as AddressInfo;
  await stopServer(bridge.server);
  await sleep(5_000);
  expect(await failoverRows(w.db)).toMatchObject([{ slave_id: 'rec-01', status: 'promoted' }]);
  const back = createSimulatorServer({ simulator: bridge.simulator, logger: w.logger });
  await listen(back, port, '127.0.0.1');
  try {
    await bridge.simulator.setCallFault('rebind', null);
    const failover = await eventually(
      'the failover to complete',
      async () => (await failoverRows(w.db)).find((row) => row.status === 'completed'),
      { timeoutMs: 60_000 },
    );
    expect(failover).toMatchObject({ slave_id: 'rec-01', failover_server_id: 'fo-01' });
    const applied = (await bridge.simulator.calls()).filter((call) => call.outcome === 'applied');
    // The Slave, reachable with its recording running, fenced before its cameras moved.
    expect(applied.map((call) => `${call.operation} ${call.subject}`)).toEqual([
      'promote fo-01',
      'fence rec-01',
      'rebind fo-01',
    ]);
    expect((await bridge.simulator.cameraBindings()).get('rec-01-ip-1')).toBe('fo-01');
    expect(await bridge.simulator.camerasRecordedTwice()).toEqual([]);
    expect(service.child.exitCode).toBeNull();
  } finally {
    await stopServer(back);
  }
});
