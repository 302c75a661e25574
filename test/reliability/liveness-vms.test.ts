/**
 * Agentless liveness: a recorder nobody may install an agent on is heard through the VMS, whose server
 * status the detector polls over the bridge. It fails over when the VMS stops reaching it; the VMS's status
 * not answering for longer than the timeout fails nobody over (it is the orchestrator's outage, not the
 * recorder's). The worker runs as its own process and serves the simulated site as its bridge, over HTTP.
 */
import { findFailover } from '../../store/failovers';
import { SimulatorClient } from '../../vms/simulator-client';
import { terminateRunningWorkflows } from '../support/cleanup';
import { failoverRows } from '../support/db';
import { buildService, killAllServices, startService } from '../support/service-process';
import type { ServiceProcess } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';

const TIMEOUT_MS = 3_000;

let simulator: SimulatorClient | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  simulator?.close();
  simulator = undefined;
  await killAllServices();
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The simulated site the worker serves, from its "Worker ready" log line. The service writes its ready file
 * just before that line, which may reach the pipe a moment later.
 */
const simulatedSiteOf = async (service: ServiceProcess): Promise<string> => {
  const ready = await eventually('the "Worker ready" log line', () =>
    Promise.resolve(service.logs().find((line) => line.msg === 'Worker ready')),
  );
  const match = /simulated site at (\S+)/.exec(typeof ready.vms === 'string' ? ready.vms : '');
  if (match?.[1] === undefined) throw new Error(`the worker serves no simulated site: ${String(ready.vms)}`);
  return match[1];
};

test('a recorder watched through the VMS stays in service while the VMS reaches it, even when the VMS status is out for 3 timeouts, and fails over once it is down', async () => {
  const w = world.current;
  const description = site(
    slave({ id: 'rec-01', timeout: `${TIMEOUT_MS}ms`, liveness: 'vms' }),
    // Watched through the VMS too once promoted: it has no agent either.
    { ...standby('fo-01'), liveness: 'vms' },
  );
  await w.seed(description);
  const service = startService({ ...serviceEnv(w), VMS_STATUS_POLL_INTERVAL: '250ms' });
  await service.ready();
  simulator = new SimulatorClient({ url: await simulatedSiteOf(service), timeoutMs: 5_000 });
  await simulator.putSite(description);
  await w.fleet.startMonitor('rec-01');

  // No agent at all: heard through the VMS for three timeouts.
  await sleep(3 * TIMEOUT_MS);
  expect(await failoverRows(w.db)).toEqual([]);

  // The VMS's status hangs (the bridge or the management server is out) for three timeouts: no decision.
  await simulator.setCallFault('status', { hang: true });
  await sleep(3 * TIMEOUT_MS);
  await simulator.setCallFault('status', null);
  await sleep(TIMEOUT_MS);
  expect(await failoverRows(w.db)).toEqual([]);

  // The recorder crashes: the VMS no longer reaches it.
  await simulator.setServerState('rec-01', 'down');
  const downAtMs = Date.now();
  const failover = await eventually('rec-01 to fail over', async () =>
    (await failoverRows(w.db)).find((row) => row.slave_id === 'rec-01'),
  );
  const record = await findFailover(w.db, failover.id);
  expect(record?.reason).toBe('heartbeat-timeout');
  // Within its timeout, a poll and a second of it going down.
  expect((record?.startedAt.getTime() ?? 0) - downAtMs).toBeLessThan(TIMEOUT_MS + 250 + 1_000);
  expect(
    service
      .logs()
      .some(
        (line) => line.msg === 'VMS status not heard: servers watched through it are not judged until it is',
      ),
  ).toBe(true);
});
