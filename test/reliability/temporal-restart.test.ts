/**
 * The Temporal server stopped and started again on its persistent database file, for longer than a Slave's
 * timeout, while Slaves are monitored and one is failing over. The heartbeat gateway and the detector need
 * no Temporal: a Slave that kept heartbeating is not failed over; a deadline that passed while the server was
 * down is reported once it is back and fails over at the deadline it had; the failover under way completes
 * once. test/reliability/liveness-outages.test.ts has the same outage with the worker as its own process. The server is a dev server of the test's own (the shared one is never
 * stopped), or the production stack's server under `npm run test:production-stack` (test/support/temporal-server.ts).
 */
import { connectClient } from '../../infra/temporal';
import { connectWorkerConnection } from '../../infra/worker-connection';
import { terminateRunningWorkflows } from '../support/cleanup';
import { failoverRows } from '../support/db';
import { WORKFLOW_BUNDLE_PATH } from '../support/environment';
import { TestAgents } from '../support/agents';
import { keepHeartbeating } from '../support/heartbeat-loop';
import { breakAllDisks } from '../support/heartbeats';
import { site, slave, standby } from '../support/site';
import type { TemporalServerUnderTest } from '../support/temporal-server';
import { temporalServerUnderTest } from '../support/temporal-server';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';
import { createFleet } from '../../app/fleet';
import { createVmsWorker } from '../../workers/worker';
import { signalReporter } from '../../liveness/reporter';
import { LivenessService } from '../../liveness/service';

let server: TemporalServerUnderTest;

beforeEach(async () => {
  server = await temporalServerUnderTest();
  await server.start();
});

// Declared before the world, so that it runs while the test's world still exists.
afterEach(async () => {
  await server.release();
  // On the production server the monitors of the test would otherwise stay (the dev server goes away).
  await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
});

const world = useTestWorld();

/** Far shorter than the outage: the server stays down past rec-timer's 20 s deadline. */
const KEEP_TIMEOUT_MS = 4_000;
const HEARTBEAT_INTERVAL_MS = 1_000;

test.each(['SIGTERM', 'SIGKILL'] as const)(
  'Temporal server stopped with %s for longer than a timeout and restarted: the Slave that kept heartbeating stays in service, a deadline passed meanwhile fails over at that deadline, the failover under way completes once',
  async (signal) => {
    const w = world.current;
    await w.seed(
      site(
        slave({ id: 'rec-keep', timeout: `${KEEP_TIMEOUT_MS}ms` }),
        slave({ id: 'rec-timer', timeout: '20s' }),
        slave({ id: 'rec-held', timeout: '1h' }),
        standby('fo-01'),
        standby('fo-02'),
      ),
    );
    const client = await connectClient(server.temporal);
    const nativeConnection = await connectWorkerConnection(server.temporal);
    const fleet = createFleet({ config: w.config, client, db: w.db });
    // The liveness layer of this worker reports to the server under test (the world's reports to the shared one).
    const liveness = new LivenessService(
      {
        site: w.site,
        db: w.db,
        databaseUrl: w.databaseUrl,
        reporter: signalReporter(client, w.config),
        vms: w.vms,
        failover: w.config.failover,
        identity: w.config.worker.identity,
        logger: w.logger,
      },
      w.config.liveness,
    );
    const gateway = await liveness.start();
    const agents = new TestAgents(w.db, () => [`http://127.0.0.1:${gateway.port}`]);
    const worker = await createVmsWorker({
      config: w.config,
      connection: nativeConnection,
      client,
      db: w.db,
      vms: w.vms,
      workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    });
    const running = worker.run();
    const hold = await w.vms.hold('promote');
    // rec-keep's agent heartbeats all along; the standbys' agents too, so that promoted servers stay in service.
    const heartbeats = keepHeartbeating(agents, ['rec-keep', 'fo-01', 'fo-02'], HEARTBEAT_INTERVAL_MS);

    try {
      for (const id of ['rec-keep', 'rec-timer', 'rec-held']) await fleet.startMonitor(id);
      await breakAllDisks(agents, 'rec-held');
      await eventually('the failover of rec-held to be promoting', () => hold.reached());
      const keepBefore = await eventually('rec-keep to be monitored', async () => {
        const state = await fleet.monitorState('rec-keep');
        return state?.phase === 'monitoring' ? state : undefined;
      });
      const timerDeadlineMs = await eventually('the detector to hold the deadline of rec-timer', () =>
        Promise.resolve(liveness.detector.deadlineOf('rec-timer')),
      );

      await server.stop(signal);
      const stoppedAtMs = Date.now();
      await hold.release();
      // The scenario needs rec-timer's deadline to pass while the server is down.
      expect(stoppedAtMs).toBeLessThan(timerDeadlineMs);
      await eventually(
        "rec-timer's deadline to pass while the server is down",
        () => Promise.resolve(Date.now() > timerDeadlineMs + 1_000),
        { timeoutMs: 40_000, intervalMs: 200 },
      );
      await server.start();
      const outageMs = Date.now() - stoppedAtMs;

      const failovers = await eventually(
        'both failovers to complete after the restart',
        async () => {
          const rows = await failoverRows(w.db);
          return rows.length === 2 && rows.every((row) => row.status === 'completed') ? rows : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
      // Two more of rec-keep's timeouts after the restart.
      const restartedAtMs = Date.now();
      await eventually('two timeouts after the restart', () =>
        Promise.resolve(Date.now() > restartedAtMs + 2 * KEEP_TIMEOUT_MS),
      );
      const keepAfter = await eventually('rec-keep to answer after the restart', async () => {
        const state = await fleet.monitorState('rec-keep');
        return state?.phase === 'monitoring' ? state : undefined;
      });

      expect(outageMs).toBeGreaterThan(3 * KEEP_TIMEOUT_MS);
      // The gateway took rec-keep's heartbeats while Temporal was away: nothing of it needs Temporal.
      expect(heartbeats.failures()).toBe(0);
      expect(keepAfter).toMatchObject({
        phase: 'monitoring',
        broken: null,
        refutedFailovers: 0,
        sinceMs: keepBefore.sinceMs,
      });
      expect(failovers.map((row) => [row.slave_id, row.reason]).sort()).toEqual([
        ['rec-held', 'all-disks-broken'],
        ['rec-timer', 'heartbeat-timeout'],
      ]);
      expect((await failoverRows(w.db)).map((row) => row.slave_id).sort()).toEqual(['rec-held', 'rec-timer']);
      const timerFailover = await w.db.query<{ deadline_ms: number }>(
        "SELECT (extract(epoch FROM deadline_at) * 1000)::float8 AS deadline_ms FROM failovers WHERE slave_id = 'rec-timer'",
      );
      expect(timerFailover.rows[0]?.deadline_ms).toBeCloseTo(timerDeadlineMs, -1);
      const timerState = await fleet.monitorState('rec-timer');
      expect(timerState?.broken).toMatchObject({ reason: 'heartbeat-timeout', atMs: timerDeadlineMs });
      const applied = (await w.vms.calls()).filter((call) => call.outcome === 'applied');
      expect(
        applied
          .filter((call) => call.operation === 'promote')
          .map((call) => call.requestId)
          .sort(),
      ).toEqual(failovers.map((row) => row.id).sort());
      expect(applied.filter((call) => call.operation === 'rebind')).toHaveLength(2);
    } finally {
      await hold.release();
      await heartbeats.stop();
      agents.close();
      worker.shutdown();
      await running.catch(() => undefined);
      await liveness.stop();
      await client.connection.close();
      await nativeConnection.close();
    }
  },
);
