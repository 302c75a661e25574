/**
 * The liveness layer end to end on the real stack: agents heartbeat to the gateway, the detector decides at
 * the deadline, the monitor confirms and fails over. Signals sent straight to a monitor by any Temporal
 * client are checked, counted when bad, and never stop it.
 */
import { execFileSync } from 'node:child_process';
import type { Pool } from 'pg';
import { failoverWorkflowId } from '../domain/names';
import { livenessSignal } from '../workflows/definitions';
import { signalReporter } from '../liveness/reporter';
import { LivenessService } from '../liveness/service';
import { findFailover } from '../store/failovers';
import { readLeases } from '../store/leases';
import { createPool } from '../infra/database';
import { findServer } from '../store/servers';
import { camerasOf, eventsOf, failoverRows, serverRow } from './support/db';
import { breakAllDisks, healthy, heartbeat } from './support/heartbeats';
import { site, slave, standby } from './support/site';
import { temporalCli } from './support/temporal-dev-server';
import { temporalAddress, temporalNamespace } from './support/environment';
import { eventually, failoverOf, failoverResult, monitorHandle, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** When the monitor of a failover was recorded told of it (null: not yet). */
const monitorToldAt = async (db: Pool, failoverId: string): Promise<Date | null> => {
  const { rows } = await db.query<{ monitor_told_at: Date | null }>(
    'SELECT monitor_told_at FROM failovers WHERE id = $1',
    [failoverId],
  );
  return rows[0]?.monitor_told_at ?? null;
};

test('a Slave whose agent stops fails over at its deadline: last heartbeat plus its timeout', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));

  const { result, lastHeartbeatMs } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'monitoring');
    for (let beat = 0; beat < 3; beat += 1) {
      await heartbeat(agents, 'rec-01', healthy('D', 'E'));
      await sleep(500);
    }
    await heartbeat(agents, 'rec-01', healthy('D', 'E'));
    const lastHeartbeatMs = Date.now();
    const result = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    return { result, lastHeartbeatMs };
  });

  const failover = await findFailover(db, result.failoverId);
  const lease = (await readLeases(db, ['rec-01']))[0];
  expect(lease).toBeDefined();
  // The deadline is the gateway's receipt of the last heartbeat plus the timeout, to the millisecond.
  expect(failover?.deadlineAt.getTime()).toBe((lease?.lastSeenMs ?? 0) + 2_000);
  expect(Math.abs((lease?.lastSeenMs ?? 0) - lastHeartbeatMs)).toBeLessThan(1_000);
  // Taken within a second of the deadline, on a busy test machine.
  expect((failover?.startedAt.getTime() ?? 0) - (failover?.deadlineAt.getTime() ?? 0)).toBeLessThan(1_000);
  expect(failover).toMatchObject({ reason: 'heartbeat-timeout' });
});

test('heartbeats within the timeout keep a Slave in service; the detector tells its monitor rarely', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1500ms' }), standby('fo-01')));

  const state = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (candidate) => candidate.phase === 'monitoring');
    // Four times the timeout, with a heartbeat every 300 ms.
    const until = Date.now() + 6_000;
    while (Date.now() < until) {
      await heartbeat(agents, 'rec-01', healthy('D', 'E'));
      await sleep(300);
    }
    return monitorReaches(world.current, 'rec-01', () => true);
  });

  expect(state).toMatchObject({ phase: 'monitoring', broken: null });
  expect(await failoverRows(db)).toEqual([]);
  // About twenty heartbeats, and a checkpoint every 5 s (LIVENESS_CHECKPOINT_PERIOD in the test world).
  expect(state.reportsReceived).toBeLessThan(6);
  expect(state.term).toBeGreaterThan(0);
});

test('a heartbeat reporting all material disks broken fails the Slave over at once, whatever its timeout', async () => {
  const { fleet, db, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));

  const result = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'monitoring');
    await breakAllDisks(agents, 'rec-01');
    return failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });

  expect(result.failoverServerId).toBe('fo-01');
  expect(await failoverRows(db)).toMatchObject([{ reason: 'all-disks-broken', status: 'completed' }]);
  expect(await eventsOf(db, 'rec-01')).toContain('disks-degraded');
});

test('malformed signals sent straight to a monitor are counted and ignored; the silent Slave still fails over on time', async () => {
  const { fleet, db, site: siteId, seed, withWorker } = world.current;
  // A timeout longer than the eight `temporal` CLI calls take on a busy machine.
  await seed(site(slave({ id: 'rec-01', timeout: '10s' }), standby('fo-01')));
  const workflowId = `vms-${siteId}-monitor-rec-01`;
  const signal = (name: string, input?: string) =>
    execFileSync(
      temporalCli(),
      [
        'workflow',
        'signal',
        '--address',
        temporalAddress(),
        '--namespace',
        temporalNamespace(),
        '--workflow-id',
        workflowId,
        '--name',
        name,
        ...(input === undefined ? [] : ['--input', input]),
      ],
      { stdio: 'pipe' },
    );

  const { state, result } = await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    const started = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) => candidate.phase === 'monitoring',
    );
    signal('stopMonitor');
    signal('stopMonitor', '{"reason": "because"}');
    signal('liveness');
    signal('liveness', '{"kind": "deadline", "term": "1", "deadlineMs": 0}');
    signal('liveness', '{"kind": "failover", "term": 1}');
    signal('liveness', '[1, 2, 3]');
    signal('heartbeat', '{"serverId": "rec-01", "sentAtMs": 1, "disks": []}');
    // A forged deadline of a term no detector ever had: the take-over refuses it.
    signal('liveness', '{"kind": "deadline", "term": 999, "lastSeenMs": null, "deadlineMs": 1000}');
    const state = await monitorReaches(
      world.current,
      'rec-01',
      (candidate) => candidate.ignoredSignals === 7 && candidate.refutedFailovers === 1,
    );
    const result = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    return { state: { ...state, startedMs: started.sinceMs }, result };
  });

  expect(state).toMatchObject({ phase: 'monitoring', broken: null, ignoredSignals: 7, refutedFailovers: 1 });
  const failover = await findFailover(db, result.failoverId);
  // Never heard: its silence counts from when its monitor began; the forged deadline changed nothing.
  expect(failover?.deadlineAt.getTime()).toBeGreaterThanOrEqual(state.startedMs + 9_000);
  expect((failover?.startedAt.getTime() ?? 0) - (failover?.deadlineAt.getTime() ?? 0)).toBeLessThan(1_000);
  expect(await failoverRows(db)).toHaveLength(1);
});

test('a heartbeat is refused without the credential of its own server, and then cannot keep it in service', async () => {
  const { fleet, agents, seed, withWorker } = world.current;
  await seed(
    site(slave({ id: 'rec-01', timeout: '2s' }), slave({ id: 'rec-02', timeout: '1h' }), standby('fo-01')),
  );

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'monitoring');
    // rec-02's agent tries to keep rec-01 alive with its own credential.
    const rec02 = await agents.tokenOf('rec-02');
    const { GatewayClient } = await import('../liveness/gateway-client');
    const address = world.current.liveness.gateway.address();
    const forger = new GatewayClient({
      gateways: [`http://127.0.0.1:${address?.port}`],
      token: rec02,
      timeoutMs: 2_000,
    });
    try {
      await expect(
        forger.send({ serverId: 'rec-01', sentAtMs: Date.now(), disks: [] }),
      ).rejects.toMatchObject({
        status: 403,
      });
    } finally {
      forger.close();
    }
    await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
  });
  expect(world.current.liveness.gateway.stats.refused.forbidden).toBe(1);
});

test('a stop sent before the monitor ran at all ends it: its first task holds the start and the stop', async () => {
  const { fleet, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1h' })));
  // No worker yet: the start and the stop are both in the monitor's first workflow task.
  await fleet.startMonitor('rec-01');
  await fleet.stopMonitor('rec-01');

  const result = await withWorker(() =>
    Promise.race([
      monitorHandle(world.current, 'rec-01').result(),
      sleep(30_000).then(() => 'still running after 30 s'),
    ]),
  );

  expect(result).toMatchObject({ outcome: 'stopped', reason: 'operator', state: { ignoredSignals: 0 } });
});

describe('the detector opens the failover as the deadline passes', () => {
  /**
   * A monitored Slave, heard once more while no worker runs: only the liveness layer (gateway, detector) does.
   * Answers the failover the detector opened at its deadline, and that deadline.
   */
  const silentWithoutWorker = async (): Promise<{ failoverId: string; deadlineMs: number }> => {
    const { fleet, db, agents, seed, withWorker } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));
    await withWorker(async () => {
      await fleet.startMonitor('rec-01');
      await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'monitoring');
    });
    await heartbeat(agents, 'rec-01', healthy('D', 'E'));
    const opened = await eventually(
      'the failover the detector opens',
      async () => (await failoverRows(db))[0],
      {
        timeoutMs: 15_000,
      },
    );
    // The detector tells the monitor once its take-over ends, and records it told.
    await eventually(
      'the monitor told of the failover',
      async () => (await monitorToldAt(db, opened.id)) ?? undefined,
    );
    const lease = (await readLeases(db, ['rec-01']))[0];
    const deadlineMs = (lease?.lastSeenMs ?? 0) + 2_000;
    return { failoverId: opened.id, deadlineMs };
  };

  /**
   * Starts the monitor of rec-01 (seeded with a 2 s timeout) and lets it go silent after one heartbeat: the
   * detector takes its recording over until the VMS applies its rebind, held there before it answers.
   */
  const takeOverHeldAtRebind = async (rebind: { reached(): Promise<boolean> }): Promise<void> => {
    const { fleet, agents } = world.current;
    await fleet.startMonitor('rec-01');
    await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'monitoring');
    await heartbeat(agents, 'rec-01', healthy('D', 'E'));
    await eventually("the detector's rebind held", async () => ((await rebind.reached()) ? true : undefined));
  };

  test('before any workflow task: recording is taken over at once, and its monitor finishes that failover', async () => {
    const { db, vms, withWorker } = world.current;
    const { failoverId, deadlineMs } = await silentWithoutWorker();

    // With no worker running, under the id the monitor's take-over uses: claimed, promoted, fenced, rebound.
    expect(failoverId).toBe(failoverWorkflowId(world.current.site, 'rec-01', deadlineMs));
    const restored = await eventually('recording restored by the detector', async () => {
      const failover = await findFailover(db, failoverId);
      return failover !== undefined && failover.camerasCommittedAt !== null ? failover : undefined;
    });
    expect(restored).toMatchObject({ status: 'recording-restored', failoverServerId: 'fo-01' });
    expect((restored.camerasCommittedAt?.getTime() ?? Infinity) - deadlineMs).toBeLessThan(1_000);
    expect((await serverRow(db, 'rec-01'))?.status).toBe('broken');
    expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    const inVms = (await vms.state()).servers;
    expect(inVms.find((server) => server.serverId === 'rec-01')).toMatchObject({ fenced: true });
    expect(inVms.find((server) => server.serverId === 'fo-01')).toMatchObject({
      role: 'recorder',
      boundCameras: ['rec-01-ip-1', 'rec-01-ip-2'],
    });
    const { rows: moved } = await db.query<{ details: { openedBy: string } }>(
      "SELECT details FROM failover_events WHERE failover_id = $1 AND event = 'moved-to-broken-recorders'",
      [failoverId],
    );
    expect(moved.map((event) => event.details.openedBy)).toEqual(['detector']);

    const { result, monitor } = await withWorker(async () => ({
      result: await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true }),
      monitor: await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'failed-over'),
    }));

    expect(result).toMatchObject({ failoverId, failoverServerId: 'fo-01' });
    expect(monitor.broken?.failoverId).toBe(failoverId);
    expect(await failoverRows(db)).toEqual([
      expect.objectContaining({ id: failoverId, status: 'completed', failover_server_id: 'fo-01' }),
    ]);
    // The monitor's take-over found every step done: each VMS change was asked once.
    expect((await vms.calls('promote')).map((call) => call.outcome)).toEqual(['applied']);
    expect((await vms.calls('rebind')).map((call) => call.outcome)).toEqual(['applied']);
  });

  test.each([
    ['in the same process (the worker service)', false],
    ['in another process (it waits on the lock in PostgreSQL)', true],
  ])(
    "the monitor's take-over waits while the detector's runs, and goes on from where it stopped: %s",
    async (_, apartFromDetector) => {
      const { db, vms, fleet, seed, createWorker } = world.current;
      await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));
      const rebind = await vms.hold('rebind');
      const worker = await createWorker(undefined, { apartFromDetector });
      const seen = await worker.runUntil(async () => {
        // The detector's rebind is applied in the VMS and held before it answers. The detector tells the monitor
        // only once its take-over ends: the deadline is reported to it meanwhile from elsewhere (as a second
        // report of it would be).
        await takeOverHeldAtRebind(rebind);
        const [opened] = await failoverRows(db);
        const deadlineMs = (await findFailover(db, opened?.id ?? ''))?.deadlineAt.getTime() ?? 0;
        await monitorHandle(world.current, 'rec-01').signal(livenessSignal, {
          kind: 'deadline',
          term: world.current.liveness.detector.status().term ?? 0,
          lastSeenMs: null,
          deadlineMs,
        });
        const { failoverId } = await monitorReaches(
          world.current,
          'rec-01',
          (state) => state.phase === 'failing-over',
        ).then((state) => ({ failoverId: state.broken?.failoverId ?? '' }));
        // Long enough for the monitor's take-over to have started and found the failover open.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const duringTheHold = await findFailover(db, failoverId);
        const rebindsDuringTheHold = (await vms.calls('rebind')).length;
        await rebind.release();
        const result = await failoverResult(world.current.client, failoverId);
        await fleet.stopMonitor(result.failoverServerId);
        return { failoverId, duringTheHold, rebindsDuringTheHold };
      });

      expect(seen.duringTheHold).toMatchObject({ status: 'promoted', camerasCommittedAt: null });
      expect(seen.rebindsDuringTheHold).toBe(1);
      expect((await vms.calls('rebind')).map((call) => call.outcome)).toEqual(['applied']);
      expect(await failoverRows(db)).toEqual([
        expect.objectContaining({ id: seen.failoverId, status: 'completed', failover_server_id: 'fo-01' }),
      ]);
      expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    },
  );

  test('a monitor stopped before the detector tells it: the detector starts the failover workflow, which finishes the failover', async () => {
    const { db, vms, fleet, seed, withWorker, client } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));
    const rebind = await vms.hold('rebind');

    const seen = await withWorker(async () => {
      await takeOverHeldAtRebind(rebind);
      // The operator stops the monitor while the detector takes its Slave's recording over, before it is told.
      await fleet.stopMonitor('rec-01');
      const stopped = await monitorHandle(world.current, 'rec-01').result();
      await rebind.release();
      const failoverId = (await failoverRows(db))[0]?.id ?? '';
      const result = await failoverResult(client, failoverId);
      await fleet.stopMonitor(result.failoverServerId);
      return { stopped, failoverId, result, toldAt: await monitorToldAt(db, failoverId) };
    });

    expect(seen.stopped).toMatchObject({
      outcome: 'stopped',
      reason: 'operator',
      state: { phase: 'monitoring' },
    });
    expect(seen.result).toMatchObject({ failoverId: seen.failoverId, failoverServerId: 'fo-01' });
    expect(seen.toldAt).not.toBeNull();
    expect(await failoverRows(db)).toEqual([
      expect.objectContaining({ id: seen.failoverId, status: 'completed', failover_server_id: 'fo-01' }),
    ]);
    expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    expect((await vms.calls('promote')).map((call) => call.outcome)).toEqual(['applied']);
    expect((await vms.calls('rebind')).map((call) => call.outcome)).toEqual(['applied']);
  });

  test('a monitor terminated by hand after it was told, before it started the failover workflow: the detector starts it, which finishes the failover', async () => {
    const { db, vms, withWorker, client } = world.current;
    const { failoverId } = await silentWithoutWorker();
    // Told while no worker runs: the report waits in its history, and the monitor is terminated with it there.
    await monitorHandle(world.current, 'rec-01').terminate('terminated by hand');
    expect(await findFailover(db, failoverId)).toMatchObject({ status: 'recording-restored' });

    const result = await withWorker(async () => {
      // The detector looks for such failovers every 30 s.
      const result = await failoverResult(client, failoverId);
      await world.current.fleet.stopMonitor(result.failoverServerId);
      return result;
    });

    expect(result).toMatchObject({ failoverId, failoverServerId: 'fo-01' });
    expect(await failoverRows(db)).toEqual([
      expect.objectContaining({ id: failoverId, status: 'completed', failover_server_id: 'fo-01' }),
    ]);
    expect(await camerasOf(db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
    // The failover workflow found the take-over's steps done: each VMS change was asked once.
    expect((await vms.calls('promote')).map((call) => call.outcome)).toEqual(['applied']);
    expect((await vms.calls('rebind')).map((call) => call.outcome)).toEqual(['applied']);
  });

  test.each([
    ['the next term tells the monitor, which finishes the failover', false],
    [
      'with the monitor stopped meanwhile, the next term starts the failover workflow from what was committed',
      true,
    ],
  ])('a detector stopped between its take-over and telling the monitor: %s', async (_, monitorStopped) => {
    const { db, vms, seed, createWorker, config, liveness, logger, fleet, client } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));
    const rebind = await vms.hold('rebind');
    const worker = await createWorker();
    const next = new LivenessService(
      {
        site: config.site,
        db,
        databaseUrl: world.current.databaseUrl,
        reporter: signalReporter(world.current.client, config),
        vms,
        failover: config.failover,
        identity: 'next-worker',
        logger,
      },
      config.liveness,
    );

    try {
      const seen = await worker.runUntil(async () => {
        await takeOverHeldAtRebind(rebind);
        // The detector stops (its session ends) during the take-over's last step, which still commits.
        await liveness.stop();
        await rebind.release();
        const failoverId = (await failoverRows(db))[0]?.id ?? '';
        await eventually(
          'the cameras committed',
          async () => (await findFailover(db, failoverId))?.camerasCommittedAt,
        );
        await sleep(1_000);
        const untold = {
          toldAt: await monitorToldAt(db, failoverId),
          phase: (await monitorReaches(world.current, 'rec-01', () => true)).phase,
        };
        if (monitorStopped) {
          await fleet.stopMonitor('rec-01');
          await monitorHandle(world.current, 'rec-01').result();
        }
        // The next term (another worker's detector) tells the monitor, or starts the failover workflow.
        await next.start();
        const result = monitorStopped
          ? await failoverResult(client, failoverId)
          : await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
        if (monitorStopped) await fleet.stopMonitor(result.failoverServerId);
        return { failoverId, untold, result, toldAt: await monitorToldAt(db, failoverId) };
      });

      expect(seen.untold).toEqual({ toldAt: null, phase: 'monitoring' });
      expect(seen.result).toMatchObject({ failoverId: seen.failoverId, failoverServerId: 'fo-01' });
      expect(seen.toldAt).not.toBeNull();
      expect(await failoverRows(db)).toEqual([
        expect.objectContaining({ id: seen.failoverId, status: 'completed', failover_server_id: 'fo-01' }),
      ]);
      expect((await vms.calls('promote')).map((call) => call.outcome)).toEqual(['applied']);
      expect((await vms.calls('rebind')).map((call) => call.outcome)).toEqual(['applied']);
    } finally {
      await next.stop();
    }
  });

  test('a monitor stopped in that moment still takes the failover over before it ends', async () => {
    const { db, fleet, withWorker, client } = world.current;
    const { failoverId } = await silentWithoutWorker();
    // The stop reaches the monitor after the deadline report, in the same workflow task.
    await fleet.stopMonitor('rec-01');

    const outcome = await withWorker(async () => {
      const result = await failoverResult(client, failoverId);
      await fleet.stopMonitor(result.failoverServerId);
      return monitorHandle(world.current, 'rec-01').result();
    });

    expect(outcome).toMatchObject({
      outcome: 'stopped',
      reason: 'operator',
      state: { phase: 'failed-over' },
    });
    expect(await failoverRows(db)).toEqual([
      expect.objectContaining({ id: failoverId, status: 'completed', failover_server_id: 'fo-01' }),
    ]);
  });

  test('a maintenance window asked in that moment is refused: the Slave is in Broken recorders already', async () => {
    const { db, fleet, createWorker } = world.current;
    const { failoverId } = await silentWithoutWorker();
    // Asked before any worker runs: the monitor takes it with the deadline report, in one workflow task.
    const maintenance = fleet.startMaintenance('rec-01', 3_600_000).then(
      () => 'started',
      (error: unknown) => (error as Error).message,
    );
    const worker = await createWorker();

    const answer = await worker.runUntil(async () => {
      const refusal = await maintenance;
      await failoverResult(world.current.client, failoverId).then((result) =>
        fleet.stopMonitor(result.failoverServerId),
      );
      return refusal;
    });

    expect(answer).toMatch(/rec-01" is in Broken recorders: no maintenance window can start/);
    expect((await findServer(db, 'rec-01'))?.maintenanceUntilMs).toBeNull();
    expect(await failoverRows(db)).toEqual([
      expect.objectContaining({ id: failoverId, status: 'completed', failover_server_id: 'fo-01' }),
    ]);
  });
});

test('a liveness service stopped while its detector takes the lead leaves no timer running: a worker stopping then exits', async () => {
  const { vms, config, liveness, logger, databaseUrl } = world.current;
  // The lock is free: each service below takes the lead as it starts.
  await liveness.stop();
  const db = createPool(databaseUrl, logger);
  const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  const before = timers();

  for (let round = 0; round < 30; round += 1) {
    const service = new LivenessService(
      {
        site: config.site,
        db,
        databaseUrl,
        reporter: signalReporter(world.current.client, config),
        vms,
        failover: config.failover,
        identity: `worker-${round}`,
        logger,
      },
      config.liveness,
    );
    await service.start();
    // Stopped at moments spread over the lead's first steps (the lock taken, the term begun, the roster read).
    await sleep(round % 15);
    await service.stop();
  }
  await db.end();

  // The detector of a term begun as its service stopped armed its timers (term renewal, checkpoints, roster
  // reloads) on a closed session, and they kept the process alive.
  await eventually('every timer of the stopped services cleared', () =>
    Promise.resolve(timers() <= before ? true : undefined),
  );
});
