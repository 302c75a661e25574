/**
 * The worker's Prometheus endpoint carries the site's own figures next to the SDK's: servers by folder,
 * failovers by reason, and how long a failover left cameras unrecorded. Scraped over HTTP from a worker
 * service that failed a Slave over.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { projectRoot } from '../infra/paths';
import { findFailover } from '../store/failovers';
import { TestAgents } from './support/agents';
import { terminateRunningWorkflows } from './support/cleanup';
import { failoverRows } from './support/db';
import type { HeartbeatLoop } from './support/heartbeat-loop';
import { keepHeartbeating } from './support/heartbeat-loop';
import { buildService, killAllServices, startService } from './support/service-process';
import { serviceEnv } from './support/service-env';
import { site, slave, standby } from './support/site';
import { eventually } from './support/wait';
import { useTestWorld } from './support/world';

let agents: HeartbeatLoop | undefined;

beforeAll(buildService, 180_000);

afterEach(async () => {
  await agents?.stop();
  agents = undefined;
  await killAllServices();
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

const freePort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};

/** Every sample of the scrape, by its name and labels as written (`name{label="value"}`). */
const scrape = async (port: number): Promise<Map<string, number>> => {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (match === null || line.startsWith('#')) continue;
    const labels = (match[2] ?? '').replace(/,?service_name="[^"]*"/, '').replace(/^\{,/, '{');
    samples.set(`${match[1]}${labels === '{}' ? '' : labels}`, Number(match[3]));
  }
  return samples;
};

test('a failover shows on the worker Prometheus endpoint: servers by folder, failovers by reason, recording gap', async () => {
  const w = world.current;
  await w.seed(
    site(slave({ id: 'rec-01', timeout: '2s' }), slave({ id: 'rec-02', timeout: '1h' }), standby('fo-01')),
  );
  const metricsPort = await freePort();
  const service = startService({
    ...serviceEnv(w),
    METRICS_PORT: String(metricsPort),
    SITE_METRICS_INTERVAL: '1s',
    LEASE_WRITE_INTERVAL: '200ms',
  });
  await service.ready();
  for (const id of ['rec-01', 'rec-02']) await w.fleet.startMonitor(id);
  agents = keepHeartbeating(
    new TestAgents(w.db, () => [service.gateway()]),
    ['rec-01', 'rec-02', 'fo-01'],
    500,
  );

  const before = await eventually('the site figures on the endpoint', async () => {
    const samples = await scrape(metricsPort);
    return samples.get('vms_monitored_slaves') === 2 ? samples : undefined;
  });
  expect(before.get('vms_servers{role="failover",status="standby"}')).toBe(1);
  expect(before.get('vms_servers{role="slave",status="active"}')).toBe(2);
  expect(before.get('vms_servers{role="slave",status="broken"}')).toBe(0);
  expect(before.get('vms_detector_leading')).toBe(1);

  await agents.stop('rec-01');
  const failover = await eventually('rec-01 to fail over', async () =>
    (await failoverRows(w.db)).find((row) => row.slave_id === 'rec-01'),
  );
  const restored = await eventually('the cameras to be rebound', async () => {
    const record = await findFailover(w.db, failover.id);
    return record?.camerasCommittedAt ? record : undefined;
  });

  const after = await eventually('the failover on the endpoint', async () => {
    const samples = await scrape(metricsPort);
    return (samples.get('vms_failover_recording_gap_seconds_count{reason="heartbeat-timeout"}') ?? 0) >= 1
      ? samples
      : undefined;
  });
  expect(after.get('vms_servers{role="slave",status="broken"}')).toBe(1);
  expect(after.get('vms_servers{role="failover",status="standby"}')).toBe(0);
  expect(after.get('vms_failovers_started_total{reason="heartbeat-timeout"}')).toBe(1);
  expect(after.get('vms_failovers_started_total{reason="all-disks-broken"}')).toBe(0);
  expect(after.get('vms_failover_recording_gap_seconds_count{reason="heartbeat-timeout"}')).toBe(1);
  // The gap the histogram holds is the one PostgreSQL recorded.
  const gapSeconds = ((restored.camerasCommittedAt?.getTime() ?? 0) - restored.deadlineAt.getTime()) / 1000;
  expect(after.get('vms_failover_recording_gap_seconds_sum{reason="heartbeat-timeout"}')).toBeCloseTo(
    gapSeconds,
    1,
  );

  // The dashboard in deploy/ reads only site metrics the endpoint serves.
  const dashboard = readFileSync(join(projectRoot(), 'deploy/grafana/vms-failover.json'), 'utf8');
  const read = new Set(dashboard.match(/\bvms_[a-z_]+/g));
  expect(read.size).toBeGreaterThan(5);
  const served = new Set([...after.keys()].map((sample) => sample.replace(/\{.*$/, '')));
  expect([...read].filter((name) => !served.has(name))).toEqual([]);
});
