/**
 * The operator CLI, run as the built `vms` command against the real Temporal server and PostgreSQL while
 * the test runs a worker. Every bad input is one line on stderr, `vms: error: ...`, with exit code 2 for a
 * mistake of the operator and 3 for a service that does not answer.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode } from '@temporalio/worker';
import { monitorWorkflowId } from '../domain/names';
import { projectRoot } from '../infra/paths';
import { findFailover } from '../store/failovers';
import { readLeases } from '../store/leases';
import { findServer, listServers } from '../store/servers';
import { livenessSignal } from '../workflows/definitions';
import { buildCli, closedPort, runCli } from './support/cli';
import { eventsOf, failoverRows, serverRow } from './support/db';
import { TEST_DATA_DIR } from './support/environment';
import { heartbeat, healthy } from './support/heartbeats';
import { keepHeartbeating } from './support/heartbeat-loop';
import { master, site, slave, standby } from './support/site';
import { eventually, failoverOf, monitorHandle, monitorReaches } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();
let cliPath: string;
let workDir: string;

beforeAll(() => {
  cliPath = buildCli('cli-test');
  workDir = mkdtempSync(join(TEST_DATA_DIR, 'cli-files-'));
}, 120_000);

const vms = (...args: string[]) => runCli(cliPath, world.current, args);
const vmsWithEnv = (env: Record<string, string>, ...args: string[]) =>
  runCli(cliPath, world.current, args, env);

const writeFile = (name: string, lines: string[]): string => {
  const path = join(workDir, `${world.current.site}-${name}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
};

/** Exactly one line on stderr, the error. */
const errorLine = (stderr: string): string => {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0] as string;
};

const EXAMPLE_SITE = join(projectRoot(), 'examples', 'site.yaml');

describe('vms site import', () => {
  test('loads the example site, and importing it again only updates', async () => {
    const first = await vms('site', 'import', EXAMPLE_SITE);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain('6 servers added, 0 updated, 11 cameras added');
    expect(first.stdout).toContain('new standby failover servers: standby-01, standby-02');

    const servers = await listServers(world.current.db);
    expect(servers.map((server) => [server.id, server.folder, server.role])).toEqual([
      ['standby-01', 'FailoverServers', 'failover'],
      ['standby-02', 'FailoverServers', 'failover'],
      ['master', 'Servers', 'master'],
      ['rec-01', 'Servers', 'slave'],
      ['rec-02', 'Servers', 'slave'],
      ['rec-03', 'Servers', 'slave'],
    ]);
    expect((await findServer(world.current.db, 'rec-01'))?.materialDriveLetters).toEqual(['D', 'E']);

    const again = await vms('site', 'import', EXAMPLE_SITE);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('0 servers added, 6 updated, 0 cameras added');
  });

  test('a bad file is reported at the line and column of the bad field, and nothing is written', async () => {
    const file = writeFile('bad.yaml', [
      'servers:',
      '  - id: master',
      '    role: master',
      '    drives: [C]',
      '  - id: rec-01',
      '    role: slave',
      '    drives:',
      '      - { letter: C, material: false }',
      '      - DD',
    ]);
    const result = await vms('site', 'import', file);
    expect(result.code).toBe(2);
    expect(errorLine(result.stderr)).toBe(
      `vms: error: ${file}:9:9: servers[1].drives[1]: "DD" is not a drive letter (A to Z)`,
    );
    expect(await listServers(world.current.db)).toEqual([]);
  });

  test('a JSON syntax error is reported with its line', async () => {
    const file = writeFile('broken.json', [
      '{',
      '  "servers": [',
      '    { "id": "m",, "role": "master" }',
      '  ]',
      '}',
    ]);
    const result = await vms('site', 'import', file);
    expect(result.code).toBe(2);
    expect(errorLine(result.stderr)).toMatch(new RegExp(`^vms: error: ${file}:3:\\d+: syntax error: `));
  });

  test('a file that conflicts with the stored site is refused as a whole, at the conflicting line', async () => {
    const { db, seed } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '30s' })));
    const file = writeFile('conflict.yaml', [
      'servers:',
      '  - id: master',
      '    hostname: renamed-master.site.local',
      '    role: master',
      '    drives: [C]',
      '  - id: rec-09',
      '    role: slave',
      '    drives: [C, D, E]',
      '  - id: rec-10',
      '    role: slave',
      '    drives: [C, D, E]',
      '    cameras:',
      '      - id: rec-01-ip-1',
    ]);

    const result = await vms('site', 'import', file);

    expect(result.code).toBe(2);
    expect(errorLine(result.stderr)).toBe(
      `vms: error: ${file}:13:13: servers[2].cameras[0].id: camera "rec-01-ip-1" records on "rec-01" now (moved by a failover?); the file binds it to "rec-10"`,
    );
    expect(await findServer(db, 'rec-09')).toBeUndefined();
    expect((await findServer(db, 'master'))?.hostname).toBe(master.hostname);
  });

  test('a missing file is bad input', async () => {
    const result = await vms('site', 'import', join(workDir, 'no-such-site.yaml'));
    expect(result.code).toBe(2);
    expect(errorLine(result.stderr)).toMatch(
      /^vms: error: cannot read the site file .*no-such-site\.yaml: no such file$/,
    );
  });
});

describe('vms monitor', () => {
  test('start is idempotent, --all starts every protected active Slave, stop ends monitoring', async () => {
    const { seed, withWorker, fleet } = world.current;
    await seed(
      site(
        slave({ id: 'rec-01', timeout: '1h' }),
        slave({ id: 'rec-02', timeout: '1h' }),
        slave({ id: 'rec-03', timeout: '1h', protected: false }),
        standby('fo-01'),
      ),
    );

    await withWorker(async () => {
      const started = await vms('monitor', 'start', 'rec-01');
      expect(started.code).toBe(0);
      expect(started.stdout).toBe(`rec-01: monitoring started (vms-${world.current.site}-monitor-rec-01)\n`);
      await monitorReaches(world.current, 'rec-01', (state) => state.phase === 'monitoring');

      const again = await vms('monitor', 'start', 'rec-01');
      expect(again).toMatchObject({ code: 0, stdout: 'rec-01: already monitored\n', stderr: '' });

      const all = await vms('monitor', 'start', '--all');
      expect(all.code).toBe(0);
      expect(all.stdout).toBe(
        `rec-01: already monitored\nrec-02: monitoring started (vms-${world.current.site}-monitor-rec-02)\n`,
      );
      expect(await fleet.isMonitorRunning('rec-03')).toBe(false);

      const stopped = await vms('monitor', 'stop', 'rec-01', 'rec-02');
      expect(stopped).toMatchObject({
        code: 0,
        stdout: 'rec-01: monitor stopped\nrec-02: monitor stopped\n',
      });
      await expect(
        world.current.client.workflow.getHandle(`vms-${world.current.site}-monitor-rec-01`).result(),
      ).resolves.toMatchObject({ outcome: 'stopped', reason: 'operator' });
      const stoppedAgain = await vms('monitor', 'stop', 'rec-01');
      expect(stoppedAgain).toMatchObject({ code: 0, stdout: 'rec-01: not monitored\n' });
    });
  });

  test('the Master, a standby, an unprotected Slave or an unknown server cannot be monitored', async () => {
    await world.current.seed(site(slave({ id: 'rec-01', protected: false }), standby('fo-01')));

    const cases: [string, RegExp][] = [
      ['master', /"master" is the Master: only Slave servers can be placed under failover protection/],
      ['fo-01', /"fo-01" is a standby failover server, not a recording Slave/],
      ['rec-01', /"rec-01" is not under failover protection/],
      ['rec-99', /unknown server "rec-99"/],
      ['bad id!', /server id "bad id!" is invalid/],
    ];
    for (const [serverId, message] of cases) {
      const result = await vms('monitor', 'start', serverId);
      expect(result.code).toBe(2);
      expect(errorLine(result.stderr)).toMatch(new RegExp(`^vms: error: .*${message.source}`));
    }
    expect((await vms('monitor', 'start')).code).toBe(2);
    expect((await vms('monitor', 'start', '--all', 'rec-01')).code).toBe(2);
  });
});

describe('vms status', () => {
  test('lists the servers by folder with roles, cameras and monitor states, as text and JSON', async () => {
    const { seed, withWorker } = world.current;
    await seed(
      site(
        slave({ id: 'rec-01', timeout: '1h', ipCameras: 3, analogCameras: 1 }),
        slave({ id: 'rec-02', timeout: '1h', protected: false }),
        standby('fo-01'),
      ),
    );

    const { text, json } = await withWorker(async () => {
      await vms('monitor', 'start', 'rec-01');
      await heartbeat(world.current.agents, 'rec-01');
      // vms status reads the heartbeat from the lease the gateway wrote to PostgreSQL.
      await eventually(
        'the heartbeat of rec-01 in its lease',
        async () => (await readLeases(world.current.db, ['rec-01']))[0],
      );
      return { text: await vms('status'), json: await vms('status', '--json') };
    });

    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    const folderTitles = lines.filter((line) =>
      ['Servers', 'Failover servers', 'Broken recorders'].includes(line),
    );
    expect(folderTitles).toEqual(['Servers', 'Failover servers', 'Broken recorders']);
    expect(lines.find((line) => line.includes('rec-01'))).toMatch(
      /rec-01\s+Slave\s+active\s+[\d.]+m?s ago\s+3\/1\s+monitoring\s+1h/,
    );
    expect(lines.find((line) => line.includes('rec-02'))).toMatch(
      /rec-02\s+Slave\s+active\s+-\s+2\/0\s+not monitored/,
    );
    expect(lines.find((line) => line.includes('fo-01'))).toMatch(/fo-01\s+Failover\s+standby/);

    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as { site: string; workerAnswering: boolean; servers: object[] };
    expect(status).toMatchObject({ site: world.current.site, workerAnswering: true });
    expect(status.servers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: 'rec-01',
          folder: 'Servers',
          role: 'slave',
          state: 'active',
          cameras: { ip: 3, analog: 1 },
          monitor: 'monitoring',
          lastHeartbeatAt: expect.stringMatching(/^\d{4}-/) as unknown,
          maintenanceUntil: null,
        }),
        expect.objectContaining({ id: 'fo-01', folder: 'FailoverServers', monitor: 'not monitored' }),
        expect.objectContaining({ id: 'master', role: 'master', cameras: { ip: 0, analog: 0 } }),
      ]),
    );
  });

  test('answers without a worker, saying the worker does not answer', async () => {
    const { seed, withWorker } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1h' })));
    await withWorker(() => vms('monitor', 'start', 'rec-01'));

    const startedAt = Date.now();
    const result = await vms('status', '--json');

    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toMatchObject({
      workerAnswering: false,
      servers: expect.arrayContaining([
        expect.objectContaining({ id: 'rec-01', monitor: 'worker not answering' }),
      ]) as unknown,
    });
    const text = await vms('status');
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toContain('worker not answering');
  });

  test('tells a monitor whose workflow task keeps failing from a worker not answering', async () => {
    const { seed, withWorker, client, fleet, taskQueue } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1h' })));
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('./support/stuck-monitor'),
      logger: undefined,
    });
    await client.workflow.start('slaveMonitorWorkflow', {
      workflowId: monitorWorkflowId(world.current.site, 'rec-01'),
      taskQueue,
      args: [],
    });

    const [json, text] = await withWorker(
      async () => {
        await eventually('a failed workflow task of the monitor', async () => {
          const record = await fleet.monitorRecord('rec-01');
          return record.running && (record.taskAttempt ?? 0) > 1;
        });
        return [await vms('status', '--json'), await vms('status')];
      },
      { workflowBundle: { code } },
    );

    expect(json).toMatchObject({ code: 0, stderr: '' });
    const status = JSON.parse(json.stdout) as { workerAnswering: boolean; servers: object[] };
    expect(status.workerAnswering).toBe(true);
    expect(status.servers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: 'rec-01',
          monitor: 'monitor stuck',
          monitorTaskAttempt: expect.any(Number) as unknown,
        }),
      ]),
    );
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/rec-01\s+Slave\s+active.*monitor stuck/);
    expect(text.stdout).toContain("monitor stuck: the workflow task of rec-01's monitor failed");
    expect(text.stdout).not.toContain('worker not answering');
    await client.workflow.getHandle(monitorWorkflowId(world.current.site, 'rec-01')).terminate();
  });
});

describe('vms settings and vms maintenance', () => {
  test('settings change through the running monitor; options not given keep their value', async () => {
    const { seed, withWorker, db } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1h' })));

    const state = await withWorker(async () => {
      await vms('monitor', 'start', 'rec-01');
      const changed = await vms('settings', 'rec-01', '--timeout', '45s');
      expect(changed).toMatchObject({
        code: 0,
        stdout: 'rec-01: protected, failover after 45s without a heartbeat, heard through its agent\n',
      });
      const shown = await vms('settings', 'rec-01');
      expect(shown.stdout).toBe(
        'rec-01: protected, failover after 45s without a heartbeat, heard through its agent\n',
      );
      return monitorReaches(world.current, 'rec-01', (candidate) => candidate.settings.timeoutMs === 45_000);
    });

    expect(state.settings).toEqual({ protected: true, timeoutMs: 45_000 });
    expect((await findServer(db, 'rec-01'))?.settings).toEqual({ protected: true, timeoutMs: 45_000 });
  });

  test('protecting an unmonitored Slave starts its monitor; unprotecting stops it', async () => {
    const { seed, withWorker, fleet } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1h', protected: false })));

    await withWorker(async () => {
      const protectedNow = await vms('settings', 'rec-01', '--protect');
      expect(protectedNow.code).toBe(0);
      expect(protectedNow.stdout).toContain('rec-01: monitoring started');
      expect(await fleet.isMonitorRunning('rec-01')).toBe(true);

      const unprotected = await vms('settings', 'rec-01', '--no-protect');
      // The whole result at once: a failure shows the error on stderr and the exit code, not only stdout.
      expect(unprotected).toMatchObject({
        code: 0,
        stdout: expect.stringContaining('rec-01: not protected, failover after 1h without a heartbeat'),
        stderr: '',
      });
      await expect(
        world.current.client.workflow.getHandle(`vms-${world.current.site}-monitor-rec-01`).result(),
      ).resolves.toMatchObject({ outcome: 'unprotected' });
    });
  });

  test('unprotecting while a liveness report reaches the monitor still stops it', async () => {
    const { seed, withWorker, db } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1h', protected: false })));

    const outcome = await withWorker(async () => {
      expect(await vms('settings', 'rec-01', '--protect')).toMatchObject({ code: 0, stderr: '' });
      const monitor = monitorHandle(world.current, 'rec-01');
      await eventually('the monitor to enter the Slave in the liveness roster', async () => {
        const { rows } = await db.query(
          `SELECT 1 FROM servers WHERE id = 'rec-01' AND monitored_since IS NOT NULL`,
        );
        return rows.length > 0;
      });
      // The Slave's row held: the monitor's save of the new settings waits inside the workflow task that ends
      // the monitor, while a report of the detector (its checkpoint, at a random moment) arrives.
      const holder = await db.connect();
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM servers WHERE id = 'rec-01' FOR UPDATE`);
      const unprotecting = vms('settings', 'rec-01', '--no-protect');
      try {
        await eventually('the monitor to wait for the Slave row', async () => {
          const { rows } = await db.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return rows.length > 0;
        });
        await monitor.signal(livenessSignal, { kind: 'checkpoint', term: 1, lastSeenMs: null, disks: [] });
      } finally {
        await holder.query('COMMIT');
        holder.release();
      }
      expect(await unprotecting).toMatchObject({
        code: 0,
        stdout: expect.stringContaining('rec-01: not protected, failover after 1h without a heartbeat'),
        stderr: '',
      });
      return monitor.result();
    });

    expect(outcome).toMatchObject({ outcome: 'unprotected', state: { settings: { protected: false } } });
    expect((await findServer(db, 'rec-01'))?.settings.protected).toBe(false);
    // The race happened: the task that was to end the monitor failed for the report that came in meanwhile.
    const { events } = await monitorHandle(world.current, 'rec-01').fetchHistory();
    expect(events?.map((event) => event.workflowTaskFailedEventAttributes?.cause)).toContain(
      temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    );
  });

  test('a bad duration, Master protection or an unknown server is refused with one line and changes nothing', async () => {
    const { seed, db } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1h' })));

    const badDuration = await vms('settings', 'rec-01', '--timeout', 'soon');
    expect(badDuration.code).toBe(2);
    expect(errorLine(badDuration.stderr)).toBe(
      `vms: error: option '--timeout <duration>' argument 'soon' is invalid. "soon" is not a duration: write it like 500ms, 30s, 20m or 1h30m`,
    );
    const tooShort = await vms('settings', 'rec-01', '--timeout', '10ms');
    expect(tooShort.code).toBe(2);
    expect(errorLine(tooShort.stderr)).toMatch(/^vms: error: failover timeout 10ms is out of range/);

    const masterProtected = await vms('settings', 'master', '--protect');
    expect(masterProtected.code).toBe(2);
    expect(errorLine(masterProtected.stderr)).toBe(
      'vms: error: "master" is the Master: only Slave servers can be placed under failover protection',
    );

    const unknown = await vms('settings', 'rec-99', '--timeout', '30s');
    expect(unknown.code).toBe(2);
    expect(errorLine(unknown.stderr)).toBe('vms: error: unknown server "rec-99"');

    expect((await findServer(db, 'rec-01'))?.settings).toEqual({ protected: true, timeoutMs: 3_600_000 });
    expect((await findServer(db, 'master'))?.settings.protected).toBe(false);
  });

  test('a maintenance window holds off failover until it ends; --for 0 ends it', async () => {
    const { seed, withWorker, db, agents } = world.current;
    // A short timeout: without the window, the silence below would fail the Slave over several times over.
    await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));

    const { silentFromMs, during, endedAtMs, result } = await withWorker(async () => {
      const agent = keepHeartbeating(agents, ['rec-01'], 300, healthy('D', 'E'));
      await vms('monitor', 'start', 'rec-01');
      const before = Date.now();
      const started = await vms('maintenance', 'rec-01', '--for', '20m');
      expect(started.code).toBe(0);
      expect(started.stdout).toMatch(/^rec-01: in maintenance until .*Z, no failover until then\n$/);
      const inMaintenance = await monitorReaches(
        world.current,
        'rec-01',
        (state) => state.maintenanceUntilMs !== null,
      );
      expect(inMaintenance.maintenanceUntilMs).toBeGreaterThanOrEqual(before + 20 * 60_000);

      // The agent stops (the Slave reboots): silent for three timeouts, inside the window.
      await agent.stop();
      const lastHeard = agent.lastDeliveredAt('rec-01') ?? before;
      await eventually('three timeouts of silence', () =>
        Promise.resolve(Date.now() > lastHeard + 3 * 2_000 ? true : undefined),
      );
      expect((await vms('status')).stdout).toMatch(/rec-01 .* until \d{4}-/);
      const whileInWindow = {
        state: await world.current.fleet.monitorState('rec-01'),
        failovers: await failoverRows(db),
      };

      const endedAt = Date.now();
      const ended = await vms('maintenance', 'rec-01', '--for', '0');
      expect(ended.stdout).toBe('rec-01: maintenance ended, failover protection applies again\n');
      // Still silent, and no window any more: the failover follows.
      return {
        silentFromMs: lastHeard,
        during: whileInWindow,
        endedAtMs: endedAt,
        result: await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true }),
      };
    });

    expect(during.state).toMatchObject({ phase: 'monitoring', broken: null });
    expect(during.failovers).toEqual([]);
    expect(result).toMatchObject({ slaveId: 'rec-01', failoverServerId: 'fo-01' });
    const failover = await findFailover(db, result.failoverId);
    expect(failover?.startedAt.getTime()).toBeGreaterThanOrEqual(endedAtMs);
    expect(failover?.startedAt.getTime()).toBeGreaterThan(silentFromMs + 3 * 2_000);

    const badLength = await vms('maintenance', 'rec-01', '--for', '8d');
    expect(badLength.code).toBe(2);
    expect(errorLine(badLength.stderr)).toBe('vms: error: maintenance window must be between 0 and 7 days');
    const missing = await vms('maintenance', 'rec-01');
    expect(missing.code).toBe(2);
    expect(errorLine(missing.stderr)).toBe("vms: error: required option '--for <duration>' not specified");
  });
});

describe('after a failover: vms restore and vms history', () => {
  test('a failed-over Slave is restored as a standby, and the history shows the failover with its timings', async () => {
    const { seed, withWorker, db } = world.current;
    await seed(site(slave({ id: 'rec-01', timeout: '1s', analogCameras: 1 }), standby('fo-01')));

    await withWorker(async () => {
      await vms('monitor', 'start', 'rec-01');
      await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });

      const status = JSON.parse((await vms('status', '--json')).stdout) as { servers: object[] };
      expect(status.servers).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: 'rec-01', folder: 'BrokenRecorders', monitor: 'failed over' }),
          expect.objectContaining({ id: 'fo-01', folder: 'Servers', role: 'slave', replaces: 'rec-01' }),
        ]),
      );

      const wrongDrives = await vms('restore', 'rec-01', '--drives', 'C,D');
      expect(wrongDrives.code).toBe(2);
      expect(errorLine(wrongDrives.stderr)).toBe(
        'vms: error: "rec-01" was recorded with drives C,D,E, not C,D',
      );
      const notBroken = await vms('restore', 'fo-01');
      expect(notBroken.code).toBe(2);
      expect(errorLine(notBroken.stderr)).toMatch(
        /not in Broken recorders: only a broken server can be restored/,
      );

      const restored = await vms('restore', 'rec-01', '--drives', 'C,D,E');
      expect(restored.code).toBe(0);
      expect(restored.stdout).toBe(
        'rec-01: restored as a standby failover server (drives C,D,E)\n  analog cameras still wired to it: rec-01-analog-1\n',
      );
    });

    expect(await serverRow(db, 'rec-01')).toMatchObject({ role: 'failover', status: 'standby' });
    expect(await eventsOf(db, 'rec-01')).toContain('restored-as-standby');

    const history = await vms('history', 'rec-01', '--json');
    expect(history.code).toBe(0);
    const { failovers, events } = JSON.parse(history.stdout) as {
      failovers: {
        slaveId: string;
        failoverServerId: string;
        status: string;
        timings: Record<string, number>;
      }[];
      events: { event: string }[];
    };
    expect(failovers).toHaveLength(1);
    expect(failovers[0]).toMatchObject({ slaveId: 'rec-01', failoverServerId: 'fo-01', status: 'completed' });
    const timings = failovers[0]?.timings ?? {};
    expect(timings.detectionToCamerasCommittedMs).toBeGreaterThanOrEqual(0);
    expect(timings.detectionToCompletedMs).toBeGreaterThanOrEqual(timings.detectionToCamerasCommittedMs ?? 0);
    expect(events.map((event) => event.event)).toEqual(
      expect.arrayContaining([
        'moved-to-broken-recorders',
        'cameras-rebound',
        'failover-completed',
        'restored-as-standby',
      ]),
    );

    const text = await vms('history');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /rec-01\s+heartbeat-timeout\s+fo-01\s+completed\s+\S+ \S+Z\s+\+\S+\s+\+\S+\s+2\s+1/,
    );
    expect(text.stdout).toMatch(/rec-01\s+restored-as-standby/);

    const unknown = await vms('history', 'rec-99');
    expect(unknown.code).toBe(2);
    expect(errorLine(unknown.stderr)).toBe('vms: error: unknown server "rec-99"');
  });
});

describe('unreachable services', () => {
  test('PostgreSQL down: exit 3 with a clear message', async () => {
    const port = await closedPort();
    const result = await vmsWithEnv({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/vms` }, 'history');
    expect(result.code).toBe(3);
    expect(errorLine(result.stderr)).toBe(
      `vms: error: PostgreSQL at 127.0.0.1:${port}/vms is unreachable: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  test('Temporal down: exit 3 within the connection bound', async () => {
    await world.current.seed(site(slave({ id: 'rec-01', timeout: '1h' })));
    const port = await closedPort();
    const startedAt = Date.now();
    const result = await vmsWithEnv({ TEMPORAL_ADDRESS: `127.0.0.1:${port}` }, 'monitor', 'start', 'rec-01');
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(result.code).toBe(3);
    expect(errorLine(result.stderr)).toMatch(
      new RegExp(`^vms: error: Temporal at 127\\.0\\.0\\.1:${port} is unreachable: `),
    );
  });

  test('a bad configuration is bad input', async () => {
    const result = await vmsWithEnv({ VMS_SITE: 'Not A Site' }, 'status');
    expect(result.code).toBe(2);
    expect(errorLine(result.stderr)).toMatch(/^vms: error: configuration: VMS_SITE="Not A Site" must be/);
  });
});

test('every command has --help', async () => {
  const commands = [
    [],
    ['site'],
    ['site', 'import'],
    ['monitor', 'start'],
    ['monitor', 'stop'],
    ['status'],
    ['settings'],
    ['maintenance'],
    ['restore'],
    ['history'],
    ['agent'],
  ];
  for (const command of commands) {
    const result = await vms(...command, '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: vms/);
  }
});
