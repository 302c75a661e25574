/**
 * The Temporal server stopped and started again on its persistent database file while Slaves are
 * monitored and one is failing over. Monitors resume with their timers (a deadline that passed while the
 * server was down fires once it is back, at the deadline it had), heartbeats counted before and after, the
 * failover under way completes once. The server is a dev server of the test's own (the shared one is never
 * stopped), or the production stack's server under `npm run test:production-stack` (test/support/temporal-server.ts).
 */
import { connectClient } from '../../infra/temporal';
import { connectWorkerConnection } from '../../infra/worker-connection';
import { terminateRunningWorkflows } from '../support/cleanup';
import { failoverRows } from '../support/db';
import { WORKFLOW_BUNDLE_PATH } from '../support/environment';
import { breakAllDisks, heartbeat } from '../support/heartbeats';
import { site, slave, standby } from '../support/site';
import type { TemporalServerUnderTest } from '../support/temporal-server';
import { temporalServerUnderTest } from '../support/temporal-server';
import { eventually } from '../support/wait';
import { useTestWorld } from '../support/world';
import { createFleet } from '../../app/fleet';
import { createVmsWorker } from '../../workers/worker';

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

test.each(['SIGTERM', 'SIGKILL'] as const)(
  'Temporal server stopped with %s and restarted: monitors resume with their timers, the failover under way completes once',
  async (signal) => {
    const w = world.current;
    await w.seed(
      site(
        slave({ id: 'rec-keep', timeout: '1h' }),
        slave({ id: 'rec-timer', timeout: '20s' }),
        slave({ id: 'rec-held', timeout: '1h' }),
        standby('fo-01'),
        standby('fo-02'),
      ),
    );
    const client = await connectClient(server.temporal);
    const nativeConnection = await connectWorkerConnection(server.temporal);
    const fleet = createFleet({ config: w.config, client, db: w.db });
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

    try {
      for (const id of ['rec-keep', 'rec-timer', 'rec-held']) await fleet.startMonitor(id);
      for (let beat = 0; beat < 3; beat += 1) {
        await heartbeat(fleet, 'rec-keep');
      }
      await breakAllDisks(fleet, 'rec-held');
      await eventually('the failover of rec-held to be promoting', async () =>
        (await hold.reached()) ? true : undefined,
      );
      const keepBefore = await eventually('rec-keep to count its heartbeats', async () => {
        const state = await fleet.monitorState('rec-keep');
        return state?.heartbeatsReceived === 3 ? state : undefined;
      });
      const timerDeadlineMs = (await fleet.monitorState('rec-timer'))?.deadlineMs as number;

      await server.stop(signal);
      const stoppedAtMs = Date.now();
      await hold.release();
      // The scenario needs rec-timer's deadline to pass while the server is down.
      expect(stoppedAtMs).toBeLessThan(timerDeadlineMs);
      await eventually(
        "rec-timer's deadline to pass while the server is down",
        () => Promise.resolve(Date.now() > timerDeadlineMs + 1_000 ? true : undefined),
        { timeoutMs: 40_000, intervalMs: 200 },
      );
      await server.start();

      await heartbeat(fleet, 'rec-keep');
      const failovers = await eventually(
        'both failovers to complete after the restart',
        async () => {
          const rows = await failoverRows(w.db);
          return rows.length === 2 && rows.every((row) => row.status === 'completed') ? rows : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
      const keepAfter = await eventually(
        'rec-keep to count the heartbeat sent after the restart',
        async () => {
          const state = await fleet.monitorState('rec-keep');
          return state?.heartbeatsReceived === 4 ? state : undefined;
        },
      );

      expect(keepAfter).toMatchObject({ phase: 'monitoring', broken: null, sinceMs: keepBefore.sinceMs });
      expect(failovers.map((row) => [row.slave_id, row.reason]).sort()).toEqual([
        ['rec-held', 'all-disks-broken'],
        ['rec-timer', 'heartbeat-timeout'],
      ]);
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
      worker.shutdown();
      await running.catch(() => undefined);
      await client.connection.close();
      await nativeConnection.close();
    }
  },
);
