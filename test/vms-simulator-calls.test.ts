/**
 * The mutating calls of the simulated VMS, served over HTTP: each in two statements (its request id claimed
 * with its fault read and its server locked; its effect with its log entry and hold), and what that keeps:
 * calls on one server decided one after the other, a twin of a call under way answered once it is done, a held
 * call committed before its hold is reached, a faulted call applied only after its fault, a malformed one as
 * late as any, a failed call logged with its code and claiming nothing.
 */
import type { Server } from 'node:http';
import type { Pool, PoolClient } from 'pg';
import { parseSite } from '../domain/site-file';
import { createPool } from '../infra/database';
import { VmsRejected, VmsUnavailable } from '../vms/control-plane';
import { HttpVmsBridge } from '../vms/http-bridge';
import { VmsSimulator } from '../vms/simulator';
import { createSimulatorServer, listen, stopServer } from '../vms/simulator-server';
import { site, slave, standby } from './support/site';
import { eventually, rejectionOf } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();

let pool: Pool;
let server: Server;
let url: string;
let bridge: HttpVmsBridge;
/** The simulator over the service's own database connections: for faults, holds and the simulated truth. */
let simulator: VmsSimulator;
/** Each statement the service sent to PostgreSQL, in order. */
let statements: string[];

/** The service's connections, each statement they send written down. */
const countingPool = (databaseUrl: string): Pool => {
  const counted = createPool(databaseUrl, world.current.logger, { max: 4 });
  counted.on('connect', (client: PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    Object.assign(client, {
      query: (...args: unknown[]) => {
        const [config] = args;
        statements.push(typeof config === 'string' ? config : (config as { text: string }).text);
        return query(...args);
      },
    });
  });
  return counted;
};

beforeEach(async () => {
  statements = [];
  pool = countingPool(world.current.databaseUrl);
  simulator = new VmsSimulator(pool);
  server = createSimulatorServer({ simulator, logger: world.current.logger });
  url = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  bridge = new HttpVmsBridge({ url, timeoutMs: 5_000, installTimeoutMs: 5_000 });
  await simulator.putSite(
    parseSite(site(slave({ id: 'rec-01', ipCameras: 2, analogCameras: 1 }), standby('fo-01'))),
  );
});

afterEach(async () => {
  bridge.close();
  await stopServer(server);
  await pool.end();
});

const IP_CAMERAS = ['rec-01-ip-1', 'rec-01-ip-2'];

/** The statements `call` sends, and its outcome. */
const counted = async (call: () => Promise<unknown>): Promise<{ outcome: unknown; sent: string[] }> => {
  statements = [];
  const outcome = await call();
  return { outcome, sent: statements.map((text) => text.replace(/\s+/g, ' ').trim()) };
};

test('promote, rebind, fence and demote each take one transaction of four statements, their fault read with their request id', async () => {
  const calls = [
    () => bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
    () => bridge.rebindCameras({ requestId: 'f1', cameraIds: IP_CAMERAS, toServerId: 'fo-01' }),
    () => bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' }),
    () => bridge.demoteToStandby({ requestId: 'f1', serverId: 'rec-01' }),
  ];

  for (const call of calls) {
    const { outcome, sent } = await counted(call);

    expect(outcome).toBe('applied');
    // BEGIN, the request id claimed with the fault read and the server locked, the effect with the log entry
    // and the hold reached, COMMIT.
    expect(sent).toHaveLength(4);
    expect(sent[1]).toMatch(/INSERT INTO vms_sim\.requests .* FOR UPDATE\b.* vms_sim\.call_faults/);
    expect(sent[2]).toMatch(/INSERT INTO vms_sim\.calls .*\bUPDATE vms_sim\.holds/);
  }
  // Repeated: the request id found taken, with the same body, in the first statement; the call logged.
  for (const call of calls) {
    const { outcome, sent } = await counted(call);

    expect(outcome).toBe('already-applied');
    expect(sent).toHaveLength(4);
    expect(sent[2]).toMatch(/^WITH logged AS \(INSERT INTO vms_sim\.calls/);
  }
  expect((await simulator.calls()).map((call) => call.outcome)).toEqual([
    ...calls.map(() => 'applied'),
    ...calls.map(() => 'already-applied'),
  ]);
});

test('a refused call rolls back after its first statement and is logged as failed', async () => {
  const { outcome, sent } = await counted(() =>
    rejectionOf(bridge.fenceRecorder({ requestId: 'f1', serverId: 'fo-01' })),
  );

  expect(outcome).toMatchObject({ code: 'not-a-recorder' });
  expect(sent).toHaveLength(4);
  expect(sent.slice(2)).toEqual([
    'ROLLBACK',
    expect.stringMatching(/^INSERT INTO vms_sim\.calls .* error_code/),
  ]);
  expect(await simulator.calls('fence')).toEqual([
    { operation: 'fence', requestId: 'f1', subject: 'fo-01', outcome: 'failed', code: 'not-a-recorder' },
  ]);
});

/** Waits until a statement of the service waits for a row lock another transaction holds. */
const waitingForLock = () =>
  eventually('a call to wait for a lock', async () => {
    const { rowCount } = await world.current.db.query(
      `SELECT 1 FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event <> 'advisory'`,
    );
    return rowCount !== 0;
  });

test('a call on a server another transaction holds waits, and decides on the server as that transaction left it', async () => {
  const other = await world.current.db.connect();
  try {
    await other.query('BEGIN');
    await other.query("UPDATE vms_sim.servers SET fenced = true WHERE server_id = 'rec-01'");
    const fence = bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' });
    await waitingForLock();
    await other.query('COMMIT');

    // Read after the lock: fenced already (read as the call's statement began, it was not).
    expect(await fence).toBe('already-applied');
  } finally {
    other.release();
  }
  expect(await simulator.calls('fence')).toEqual([
    { operation: 'fence', requestId: 'f1', subject: 'rec-01', outcome: 'already-applied', code: null },
  ]);
});

test('a twin of a call under way waits for it, then answers already applied, or a conflict for another body', async () => {
  const other = await world.current.db.connect();
  try {
    await other.query('BEGIN');
    await other.query(
      `INSERT INTO vms_sim.requests (call, request_id, subject, body) VALUES
         ('rebind', 'f1', 'rec-01', $1), ('rebind', 'f2', 'rec-01', $1)`,
      [{ cameraIds: ['rec-01-ip-1'] }],
    );
    statements = [];
    const twins = Promise.all([
      bridge.rebindCameras({ requestId: 'f1', cameraIds: ['rec-01-ip-1'], toServerId: 'rec-01' }),
      rejectionOf(bridge.rebindCameras({ requestId: 'f2', cameraIds: IP_CAMERAS, toServerId: 'rec-01' })),
    ]);
    await eventually('both twins to wait', async () => {
      const { rows } = await world.current.db.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event <> 'advisory'`,
      );
      return rows[0]?.count === 2;
    });
    await other.query('COMMIT');

    const [repeated, conflict] = await twins;
    expect(repeated).toBe('already-applied');
    expect(conflict).toBeInstanceOf(VmsRejected);
    expect(conflict).toMatchObject({ code: 'request-id-conflict' });
  } finally {
    other.release();
  }
  // Committed while the claim waited: the body is read again, in a statement of its own.
  expect(statements.filter((text) => text.includes('SELECT body = $4::jsonb AS same'))).toHaveLength(2);
  expect(
    (await simulator.calls('rebind'))
      .map(({ requestId, outcome, code }) => [requestId, outcome, code])
      .sort(),
  ).toEqual([
    ['f1', 'already-applied', null],
    ['f2', 'failed', 'request-id-conflict'],
  ]);
});

test('a held call has its effect and its log entry committed once its hold is reached, and answers when released', async () => {
  const hold = await simulator.hold('fence', 'rec-01');
  let answered = false;
  const fence = bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' }).finally(() => {
    answered = true;
  });
  try {
    await eventually('the fence to be held', () => hold.reached());

    const { servers } = await simulator.state();
    expect(servers.find((server) => server.serverId === 'rec-01')).toMatchObject({
      fenced: true,
      recordedCameras: [],
    });
    expect(await simulator.calls('fence')).toEqual([
      { operation: 'fence', requestId: 'f1', subject: 'rec-01', outcome: 'applied', code: null },
    ]);
    expect(answered).toBe(false);
  } finally {
    await hold.release();
  }
  expect(await fence).toBe('applied');
});

test('a hung call takes effect only once its hang is lifted', async () => {
  await simulator.setCallFault('promote', { hang: true });
  statements = [];
  const promote = bridge.promoteToRecorder({
    requestId: 'f1',
    serverId: 'fo-01',
    replacesServerId: 'rec-01',
  });
  // Read once as the call came, then again as it looks whether its hang was lifted.
  const faultReads = () => statements.filter((text) => text.includes('vms_sim.call_faults')).length;
  await eventually('the promotion to wait in its hang', () => Promise.resolve(faultReads() >= 2));

  expect(await simulator.calls('promote')).toEqual([]);
  expect((await simulator.state()).servers.find((server) => server.serverId === 'fo-01')).toMatchObject({
    role: 'standby',
  });
  await simulator.setCallFault('promote', null);

  expect(await promote).toBe('applied');
  expect((await simulator.calls('promote')).map((call) => call.outcome)).toEqual(['applied']);
});

test('a slowed call whose caller goes away is dropped: not applied, not logged', async () => {
  await simulator.setCallFault('promote', { delayMs: 10_000 });
  const impatient = new HttpVmsBridge({ url, timeoutMs: 300, installTimeoutMs: 300 });
  try {
    const error = await rejectionOf(
      impatient.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
    );

    expect(error).toBeInstanceOf(VmsUnavailable);
    expect(error).toMatchObject({ code: 'timeout' });
  } finally {
    impatient.close();
  }
  expect(await simulator.calls('promote')).toEqual([]);
  expect((await simulator.state()).servers.find((server) => server.serverId === 'fo-01')).toMatchObject({
    role: 'standby',
  });
});

test('a malformed mutating call answers after its fault, as any call of its kind', async () => {
  await simulator.setCallFault('fence', { delayMs: 300 });
  const startedAt = Date.now();

  const response = await fetch(`${url}/v1/servers/rec-01/fence`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ requestId: '' }),
  });

  expect(response.status).toBe(400);
  expect(await response.json()).toMatchObject({ error: { code: 'malformed-request' } });
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
});

test('a failed call is logged with its code and claims nothing: its request id applies once the cause is gone', async () => {
  const before = await simulator.state();
  const refusals = await Promise.all([
    rejectionOf(
      bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'nowhere' }),
    ),
    rejectionOf(
      bridge.rebindCameras({
        requestId: 'f1',
        cameraIds: ['rec-01-analog-1', 'no-such-camera'],
        toServerId: 'rec-01',
      }),
    ),
  ]);

  expect(refusals.map((error) => [error instanceof VmsRejected, (error as VmsRejected).code])).toEqual([
    [true, 'unknown-server'],
    [true, 'unknown-camera'],
  ]);
  expect(await simulator.state()).toEqual(before);
  expect(
    await bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
  ).toBe('applied');
  expect(
    (await simulator.calls()).map(({ operation, outcome, code }) => [operation, outcome, code]).sort(),
  ).toEqual([
    ['promote', 'applied', null],
    ['promote', 'failed', 'unknown-server'],
    ['rebind', 'failed', 'unknown-camera'],
  ]);
});
