/**
 * Several mutating calls in one request (`POST /v1/calls`, docs/vms-bridge.md), over real HTTP: the simulator
 * answers each call as it would answer it alone (its validation, fault, hold and call log), in order; the
 * HTTP client sends the calls asked at once in one request and a lone call as itself, reads each answer as it
 * reads a plain call's, falls back to one call at a time with a bridge written before it, and rejects each
 * call of a request that got no answer; the conformance check checks it, and skips it on a bridge without it.
 */
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import { checkBridge } from '../vms/bridge-check';
import { BridgePaths, MAX_CALLS } from '../vms/bridge-protocol';
import type { CallAnswer } from '../vms/bridge-protocol';
import { BridgeTransport } from '../vms/bridge-transport';
import type { BridgeExchange } from '../vms/bridge-transport';
import type { VmsOutcome } from '../vms/control-plane';
import { HttpVmsBridge } from '../vms/http-bridge';
import type { HttpBridgeOptions } from '../vms/http-bridge';
import { listen, stopServer } from '../vms/simulator-server';
import { SIMULATOR_TOKEN, startSimulatorService, stopSimulatorServices } from './support/simulator-service';
import type { SimulatorService } from './support/simulator-service';
import { site, slave, standby } from './support/site';
import { eventually, rejectionOf } from './support/wait';
import { useTestWorld } from './support/world';

const world = useTestWorld();
const closing: { close(): void }[] = [];
const servers: Server[] = [];

afterEach(async () => {
  closing.splice(0).forEach((client) => client.close());
  for (const server of servers.splice(0)) await stopServer(server);
  await stopSimulatorServices();
});

const SITE = site(
  slave({ id: 'rec-01', ipCameras: 2, analogCameras: 1 }),
  slave({ id: 'rec-02', ipCameras: 2 }),
  standby('fo-01'),
  standby('fo-02'),
);

const bridgeTo = (url: string, options: Partial<HttpBridgeOptions> = {}): HttpVmsBridge => {
  const bridge = new HttpVmsBridge({
    url,
    token: SIMULATOR_TOKEN,
    timeoutMs: 5_000,
    installTimeoutMs: 5_000,
    ...options,
  });
  closing.push(bridge);
  return bridge;
};

/** A seeded simulator, the requests it gets (`METHOD path`), and a transport to send it raw requests. */
const seededSimulator = async (): Promise<{
  service: SimulatorService;
  requests: string[];
  send: (exchange: Omit<BridgeExchange, 'timeoutMs'>) => Promise<CallAnswer>;
}> => {
  const service = await startSimulatorService(world.current);
  await service.seed(SITE);
  const requests: string[] = [];
  service.server.on('request', (request: { method?: string; url?: string }) =>
    requests.push(`${request.method} ${request.url}`),
  );
  const transport = new BridgeTransport({ url: service.url, token: SIMULATOR_TOKEN });
  closing.push(transport);
  const send = async (exchange: Omit<BridgeExchange, 'timeoutMs'>): Promise<CallAnswer> => {
    const { status, body } = await transport.exchange({ ...exchange, timeoutMs: 10_000 });
    return { status, body };
  };
  return { service, requests, send };
};

const call = (path: string, body: unknown) => ({ method: 'POST' as const, path, body });

const callsOf = (calls: unknown[]) => ({ method: 'POST' as const, path: BridgePaths.calls, body: { calls } });

/** The simulator's call log, in an order that does not depend on the order the calls ran in. */
const callLog = async (service: SimulatorService) =>
  (await service.simulator.calls()).map((entry) => JSON.stringify(entry)).sort();

const MALFORMED = {
  status: 400,
  body: { error: { code: 'malformed-request', message: expect.any(String) } },
};

describe('the simulator', () => {
  test('answers each call of POST /v1/calls in order, with the status and body it answers that call alone', async () => {
    const { service, send } = await seededSimulator();
    const calls = [
      call(BridgePaths.promote('fo-01'), { requestId: 'r1', replacesServerId: 'rec-01' }),
      call(BridgePaths.promote('master'), { requestId: 'r1', replacesServerId: 'rec-02' }),
      call(BridgePaths.fence('fo-02'), { requestId: 'r1' }),
      call(BridgePaths.rebindCameras('rec-02'), { requestId: 'r1', cameraIds: ['no-such-camera'] }),
      call(BridgePaths.demote('fo-02'), { requestId: 'r1' }),
      call(BridgePaths.promote('nowhere'), { requestId: 'r1', replacesServerId: 'rec-01' }),
      call(BridgePaths.rebindCameras('rec-01'), { requestId: 'r1', cameraIds: [] }),
      call('/v1/servers/%E0/fence', { requestId: 'r1' }),
    ];
    const alone: CallAnswer[] = [];
    for (const each of calls) alone.push(await send(each));
    const aloneLog = await callLog(service);
    const aloneState = await service.client.state();
    await service.seed(SITE);

    const together = await send(callsOf(calls));

    expect(together).toEqual({ status: 200, body: { answers: alone } });
    expect(alone.map((answer) => answer.status)).toEqual([200, 409, 409, 404, 200, 404, 400, 400]);
    expect(await callLog(service)).toEqual(aloneLog);
    expect(await service.client.state()).toEqual(aloneState);
  });

  test('a malformed POST /v1/calls is refused as a whole and runs nothing; a malformed call in it is its own 400', async () => {
    const { service, send } = await seededSimulator();
    const demote = (index: number) => call(BridgePaths.demote('fo-02'), { requestId: `d${index}` });

    const refusals = await Promise.all([
      send({ method: 'POST', path: BridgePaths.calls, rawBody: '{"calls": [' }),
      send({ method: 'POST', path: BridgePaths.calls, body: { promote: [] } }),
      send({ method: 'POST', path: BridgePaths.calls, body: [demote(0)] }),
      send(callsOf([])),
      send(callsOf(Array.from({ length: MAX_CALLS + 1 }, (_, index) => demote(index)))),
    ]);

    for (const refusal of refusals) expect(refusal).toEqual(MALFORMED);
    expect(await service.simulator.calls()).toEqual([]);

    const mixed = await send(
      callsOf([
        call(BridgePaths.promote('fo-01'), { requestId: 'r1', replacesServerId: 'rec-01' }),
        { method: 'GET', path: BridgePaths.serverStatus('fo-01') },
        call(BridgePaths.pluginInstalls('fo-01'), { requestId: 'r1', plugin: 'ANPR+' }),
        call(BridgePaths.calls, { calls: [demote(0)] }),
        call(`${BridgePaths.fence('rec-02')}?now=1`, { requestId: 'r1' }),
        'fence rec-02',
        call(BridgePaths.fence('rec-02'), { requestId: '' }),
      ]),
    );

    expect(mixed).toEqual({
      status: 200,
      body: { answers: [{ status: 200, body: { outcome: 'applied' } }, ...Array(6).fill(MALFORMED)] },
    });
    expect((await service.simulator.calls()).map(({ operation, outcome }) => [operation, outcome])).toEqual([
      ['promote', 'applied'],
    ]);
  });

  test(`POST /v1/calls carries up to ${MAX_CALLS} calls, each applied once`, async () => {
    const { service, send } = await seededSimulator();
    const promote = call(BridgePaths.promote('fo-01'), { requestId: 'r1', replacesServerId: 'rec-01' });
    const demotes = Array.from({ length: MAX_CALLS - 2 }, (_, index) =>
      call(BridgePaths.demote('fo-02'), { requestId: `d${index}` }),
    );

    const answer = await send(callsOf([promote, ...demotes, promote]));

    const outcomes = (answer.body as { answers: CallAnswer[] }).answers.map(
      ({ body }) => (body as { outcome: VmsOutcome }).outcome,
    );
    expect(outcomes).toHaveLength(MAX_CALLS);
    // The two twins ran side by side: one applied, the other found it applied.
    expect([outcomes[0], outcomes.at(-1)].sort()).toEqual(['already-applied', 'applied']);
    expect(outcomes.slice(1, -1).every((outcome) => outcome === 'already-applied')).toBe(true);
    expect(await service.simulator.calls()).toHaveLength(MAX_CALLS);
  });

  test('each call of POST /v1/calls waits out its own fault and hold: one held holds the answer, not the others', async () => {
    const { service, send } = await seededSimulator();
    await service.client.setCallFault('fence', { delayMs: 300 });
    const hold = await service.simulator.hold('promote', 'fo-01');
    let answered = false;
    const startedAt = Date.now();
    const answer = send(
      callsOf([
        call(BridgePaths.promote('fo-01'), { requestId: 'r1', replacesServerId: 'rec-01' }),
        call(BridgePaths.fence('rec-01'), { requestId: 'r1' }),
        call(BridgePaths.rebindCameras('rec-02'), { requestId: 'r1', cameraIds: ['rec-02-ip-1'] }),
      ]),
    ).finally(() => {
      answered = true;
    });
    try {
      await eventually('the promotion to be held', () => hold.reached());
      await eventually('the fence to be applied after its delay', async () =>
        (await service.simulator.calls('fence')).length === 1 ? true : undefined,
      );

      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
      expect((await service.simulator.calls()).map(({ operation }) => operation).sort()).toEqual([
        'fence',
        'promote',
        'rebind',
      ]);
      expect(answered).toBe(false);
    } finally {
      await hold.release();
    }
    expect((await answer).body).toEqual({
      answers: [
        { status: 200, body: { outcome: 'applied' } },
        { status: 200, body: { outcome: 'applied' } },
        { status: 200, body: { outcome: 'already-applied' } },
      ],
    });
  });

  test('the token of POST /v1/calls is checked once, for the whole request', async () => {
    const { service } = await seededSimulator();
    const anonymous = new BridgeTransport({ url: service.url });
    closing.push(anonymous);

    const refusal = await anonymous.exchange({
      ...callsOf([call(BridgePaths.fence('rec-01'), { requestId: 'r1' })]),
      timeoutMs: 5_000,
    });

    expect(refusal.status).toBe(401);
    expect(refusal.body).toMatchObject({ error: { code: 'unauthorized' } });
    expect(await service.simulator.calls()).toEqual([]);
  });
});

type Reply = { status: number; body?: unknown } | 'hang' | 'reset';

/**
 * A bridge that replies to `POST /v1/calls` with `replyToCalls`, and to each other call with `replyTo` (as
 * the answers inside `POST /v1/calls` too, when `replyToCalls` is not given). The requests it got: `METHOD path`.
 */
const fakeBridge = async (
  replyTo: (path: string) => { status: number; body?: unknown },
  replyToCalls?: () => Reply,
): Promise<{ url: string; requests: string[] }> => {
  const requests: string[] = [];
  const server = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '';
      requests.push(`${request.method} ${path}`);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = (text === '' ? undefined : JSON.parse(text)) as { calls: { path: string }[] } | undefined;
      const reply: Reply =
        path !== BridgePaths.calls
          ? replyTo(path)
          : (replyToCalls?.() ?? {
              status: 200,
              body: { answers: body?.calls.map((each) => replyTo(each.path)) },
            });
      if (reply === 'hang') return;
      if (reply === 'reset') {
        request.socket.destroy();
        return;
      }
      response
        .writeHead(reply.status, { 'content-type': 'application/json' })
        .end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  });
  servers.push(server);
  return { url: `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`, requests };
};

const APPLIED = { status: 200, body: { outcome: 'applied' } };
const applied = () => APPLIED;

/** What a call came to: its outcome, or its error's type, code and message. */
const settled = (call: Promise<VmsOutcome>): Promise<unknown> =>
  call.then(
    (outcome) => outcome,
    (error: Error & { code?: string }) => ({ error: error.name, code: error.code, message: error.message }),
  );

describe('the HTTP client', () => {
  test('mutating calls asked at once go in one request; a call asked alone goes as itself', async () => {
    const { service, requests } = await seededSimulator();
    const bridge = bridgeTo(service.url);

    const promotions = await Promise.all([
      bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
      bridge.promoteToRecorder({ requestId: 'f2', serverId: 'fo-02', replacesServerId: 'rec-02' }),
    ]);
    const fence = await bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' });
    const rebinds = await Promise.all([
      bridge.rebindCameras({
        requestId: 'f1',
        cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
        toServerId: 'fo-01',
      }),
      bridge.rebindCameras({
        requestId: 'f2',
        cameraIds: ['rec-02-ip-1', 'rec-02-ip-2'],
        toServerId: 'fo-02',
      }),
      bridge.fenceRecorder({ requestId: 'f2', serverId: 'rec-02' }),
      bridge.demoteToStandby({ requestId: 'f1', serverId: 'rec-01' }),
    ]);

    expect([...promotions, fence, ...rebinds]).toEqual(Array(7).fill('applied'));
    expect(requests).toEqual([
      `POST ${BridgePaths.calls}`,
      `POST ${BridgePaths.fence('rec-01')}`,
      `POST ${BridgePaths.calls}`,
    ]);
    expect(await service.simulator.camerasRecordedTwice()).toEqual([]);
    const { servers: state } = await service.client.state();
    expect(
      state.map(({ serverId, role, fenced, recordedCameras }) => ({
        serverId,
        role,
        fenced,
        recordedCameras,
      })),
    ).toEqual([
      { serverId: 'fo-01', role: 'recorder', fenced: false, recordedCameras: ['rec-01-ip-1', 'rec-01-ip-2'] },
      { serverId: 'fo-02', role: 'recorder', fenced: false, recordedCameras: ['rec-02-ip-1', 'rec-02-ip-2'] },
      expect.objectContaining({ serverId: 'master' }),
      { serverId: 'rec-01', role: 'standby', fenced: false, recordedCameras: [] },
      { serverId: 'rec-02', role: 'recorder', fenced: true, recordedCameras: [] },
    ]);
  });

  test(`more calls than one request carries (${MAX_CALLS}) are split; a call left over goes as itself`, async () => {
    const { service, requests } = await seededSimulator();
    const bridge = bridgeTo(service.url);

    const outcomes = await Promise.all(
      Array.from({ length: 2 * MAX_CALLS + 1 }, (_, index) =>
        bridge.demoteToStandby({ requestId: `d${index}`, serverId: 'fo-02' }),
      ),
    );

    expect(new Set(outcomes)).toEqual(new Set(['already-applied']));
    expect(requests.sort()).toEqual([
      `POST ${BridgePaths.calls}`,
      `POST ${BridgePaths.calls}`,
      `POST ${BridgePaths.demote('fo-02')}`,
    ]);
    expect(await service.simulator.calls('demote')).toHaveLength(2 * MAX_CALLS + 1);
  });

  test('each answer in POST /v1/calls comes to its caller as the same call sent alone does', async () => {
    const replies: Record<string, { status: number; body?: unknown }> = {
      [BridgePaths.promote('fo-01')]: APPLIED,
      [BridgePaths.promote('fo-02')]: { status: 200, body: { outcome: 'already-applied' } },
      [BridgePaths.promote('master')]: {
        status: 409,
        body: { error: { code: 'not-a-standby', message: 'master is the Master' } },
      },
      [BridgePaths.fence('rec-01')]: {
        status: 503,
        body: { error: { code: 'server-unreachable', message: 'rec-01 does not answer' } },
      },
      [BridgePaths.fence('rec-02')]: { status: 500 },
      [BridgePaths.demote('rec-01')]: { status: 200, body: { outcome: 'maybe' } },
      [BridgePaths.demote('rec-02')]: {
        status: 400,
        body: { error: { code: 'malformed-request', message: 'requestId is missing' } },
      },
      [BridgePaths.rebindCameras('fo-01')]: {
        status: 404,
        body: { error: { code: 'unknown-camera', message: 'no camera cam-9' } },
      },
    };
    const { url, requests } = await fakeBridge((path) => replies[path] ?? { status: 418 });
    const calls = (bridge: HttpVmsBridge) => [
      () => bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
      () => bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-02', replacesServerId: 'rec-01' }),
      () => bridge.promoteToRecorder({ requestId: 'f1', serverId: 'master', replacesServerId: 'rec-01' }),
      () => bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' }),
      () => bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-02' }),
      () => bridge.demoteToStandby({ requestId: 'f1', serverId: 'rec-01' }),
      () => bridge.demoteToStandby({ requestId: 'f1', serverId: 'rec-02' }),
      () => bridge.rebindCameras({ requestId: 'f1', cameraIds: ['cam-9'], toServerId: 'fo-01' }),
    ];

    const alone: unknown[] = [];
    for (const each of calls(bridgeTo(url))) alone.push(await settled(each()));
    const sentAlone = requests.splice(0);
    const together = await Promise.all(calls(bridgeTo(url)).map((each) => settled(each())));

    expect(together).toEqual(alone);
    expect(requests).toEqual([`POST ${BridgePaths.calls}`]);
    expect(sentAlone).not.toContain(`POST ${BridgePaths.calls}`);
    expect(alone).toEqual([
      'applied',
      'already-applied',
      {
        error: 'VmsRejected',
        code: 'not-a-standby',
        message: expect.stringContaining('master is the Master'),
      },
      { error: 'VmsUnavailable', code: 'server-unreachable', message: expect.any(String) },
      { error: 'VmsUnavailable', code: 'http-500', message: expect.any(String) },
      { error: 'VmsUnavailable', code: 'invalid-answer', message: expect.stringContaining('outcome') },
      { error: 'VmsRejected', code: 'malformed-request', message: expect.any(String) },
      { error: 'VmsRejected', code: 'unknown-camera', message: expect.any(String) },
    ]);
  });

  test.each([
    [404, 'not-found'],
    [405, 'method-not-allowed'],
  ])(
    'a bridge answering POST /v1/calls with %i gets those calls one by one, and every later call',
    async (status, code) => {
      const { url, requests } = await fakeBridge(applied, () => ({
        status,
        body: { error: { code, message: `no ${BridgePaths.calls}` } },
      }));
      const bridge = bridgeTo(url);

      const promotions = await Promise.all([
        bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
        bridge.promoteToRecorder({ requestId: 'f2', serverId: 'fo-02', replacesServerId: 'rec-02' }),
      ]);
      const rebinds = await Promise.all([
        bridge.rebindCameras({ requestId: 'f1', cameraIds: ['rec-01-ip-1'], toServerId: 'fo-01' }),
        bridge.rebindCameras({ requestId: 'f2', cameraIds: ['rec-02-ip-1'], toServerId: 'fo-02' }),
      ]);

      expect([...promotions, ...rebinds]).toEqual(Array(4).fill('applied'));
      expect(requests[0]).toBe(`POST ${BridgePaths.calls}`);
      expect(requests.slice(1, 3).sort()).toEqual(
        [BridgePaths.promote('fo-01'), BridgePaths.promote('fo-02')].map((path) => `POST ${path}`),
      );
      expect(requests.slice(3).sort()).toEqual(
        [BridgePaths.rebindCameras('fo-01'), BridgePaths.rebindCameras('fo-02')].map(
          (path) => `POST ${path}`,
        ),
      );
    },
  );

  test('a bridge refusing one POST /v1/calls as a whole (400) gets its calls one by one, and the next calls together', async () => {
    let refusals = 1;
    const { url, requests } = await fakeBridge(applied, () =>
      refusals-- > 0
        ? { status: 400, body: { error: { code: 'malformed-request', message: 'too large' } } }
        : { status: 200, body: { answers: [APPLIED, APPLIED] } },
    );
    const bridge = bridgeTo(url);
    const fences = () =>
      Promise.all([
        bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' }),
        bridge.fenceRecorder({ requestId: 'f2', serverId: 'rec-02' }),
      ]);

    expect(await fences()).toEqual(['applied', 'applied']);
    expect(await fences()).toEqual(['applied', 'applied']);

    expect(requests).toEqual([
      `POST ${BridgePaths.calls}`,
      ...[BridgePaths.fence('rec-01'), BridgePaths.fence('rec-02')].map((path) => `POST ${path}`),
      `POST ${BridgePaths.calls}`,
    ]);
  });

  test.each([
    ['a reset connection', 'reset' as const, 'connection-reset'],
    [
      '503',
      { status: 503, body: { error: { code: 'unavailable', message: 'the VMS is down' } } },
      'unavailable',
    ],
    ['an answer of another shape', { status: 200, body: { answers: [APPLIED] } }, 'invalid-answer'],
    ['an answer that is not JSON', { status: 200 }, 'invalid-answer'],
  ])(
    'POST /v1/calls failing with %s rejects each of its calls with VmsUnavailable',
    async (_, reply, code) => {
      const { url } = await fakeBridge(applied, () => reply);
      const bridge = bridgeTo(url, { timeoutMs: 300 });

      const errors = await Promise.all([
        rejectionOf(
          bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
        ),
        rejectionOf(bridge.fenceRecorder({ requestId: 'f1', serverId: 'rec-01' })),
      ]);

      expect(errors).toEqual([expect.any(Error), expect.any(Error)]);
      for (const [index, path] of [BridgePaths.promote('fo-01'), BridgePaths.fence('rec-01')].entries()) {
        expect(errors[index]).toMatchObject({ name: 'VmsUnavailable', code });
        expect((errors[index] as Error).message).toContain(path);
      }
    },
  );

  test('a call held at the VMS holds the calls sent with it about a second at most: they are sent alone and answered, the held one once released', async () => {
    const { service, requests } = await seededSimulator();
    const bridge = bridgeTo(service.url, { timeoutMs: 10_000 });
    const hold = await service.simulator.hold('promote', 'fo-01');
    const startedAt = Date.now();
    const held = settled(
      bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' }),
    );
    const fence = bridge.fenceRecorder({ requestId: 'f2', serverId: 'rec-02' });
    try {
      // Applied by the request that carried both; its repeat alone answers so.
      expect(await fence).toBe('already-applied');
      const fencedAfterMs = Date.now() - startedAt;
      expect(fencedAfterMs).toBeGreaterThanOrEqual(1_000);
      expect(fencedAfterMs).toBeLessThan(5_000);
      expect(await hold.reached()).toBe(true);
      expect(requests).toEqual(
        expect.arrayContaining([
          `POST ${BridgePaths.calls}`,
          `POST ${BridgePaths.promote('fo-01')}`,
          `POST ${BridgePaths.fence('rec-02')}`,
        ]),
      );
    } finally {
      await hold.release();
    }
    expect(await held).toBe('already-applied');
    // Each applied once, by the request that carried both; the repeats alone change nothing.
    for (const operation of ['promote', 'fence'] as const) {
      expect((await service.simulator.calls(operation)).map(({ outcome }) => outcome)).toEqual([
        'applied',
        'already-applied',
      ]);
    }
  });

  test('calls whose POST /v1/calls is not answered in time are each sent alone at once, and answered as themselves', async () => {
    let hangs = 1;
    const { url, requests } = await fakeBridge(applied, () => (hangs-- > 0 ? 'hang' : { status: 500 }));
    const bridge = bridgeTo(url, { timeoutMs: 300 });
    const promotions = () =>
      Promise.all([
        settled(bridge.promoteToRecorder({ requestId: 'f1', serverId: 'fo-01', replacesServerId: 'rec-01' })),
        settled(bridge.promoteToRecorder({ requestId: 'f2', serverId: 'fo-02', replacesServerId: 'rec-02' })),
      ]);

    expect(await promotions()).toEqual(['applied', 'applied']);
    expect(requests[0]).toBe(`POST ${BridgePaths.calls}`);
    expect(requests.slice(1).sort()).toEqual(
      [BridgePaths.promote('fo-01'), BridgePaths.promote('fo-02')].map((path) => `POST ${path}`),
    );
    // The next calls asked together go together again.
    expect(await promotions()).toEqual([
      expect.objectContaining({ code: 'http-500' }),
      expect.objectContaining({ code: 'http-500' }),
    ]);
    expect(requests.slice(3)).toEqual([`POST ${BridgePaths.calls}`]);
  });
});

/** The simulator behind a bridge written before `POST /v1/calls`: 404 not-found for it, every other call passed on. */
const olderBridge = async (target: string): Promise<string> => {
  const server = createHttpServer((request, response) => {
    if (request.url === BridgePaths.calls) {
      request.resume();
      response
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'not-found', message: `no such path: ${request.url}` } }));
      return;
    }
    const passed = httpRequest(
      `${target}${request.url ?? '/'}`,
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    request.pipe(passed);
  });
  servers.push(server);
  return `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
};

describe('the conformance check', () => {
  const CHECK = 'several calls in one request, answered in order';
  const check = (url: string) =>
    checkBridge({
      connection: { url, token: SIMULATOR_TOKEN },
      timeoutMs: 5_000,
      installTimeoutMs: 30_000,
      pollIntervalMs: 20,
      standbyId: 'fo-01',
      slaveId: 'rec-01',
      cameraIds: ['rec-01-ip-1', 'rec-01-ip-2'],
      plugin: 'vms-bridge-check',
    });

  test('checks POST /v1/calls on a bridge that serves it, and skips it, failing nothing, on one that does not', async () => {
    const { service } = await seededSimulator();

    const served = await check(service.url);
    await service.seed(SITE);
    const older = await check(await olderBridge(service.url));

    expect(served.filter((result) => result.verdict !== 'pass')).toEqual([]);
    expect(served.find((result) => result.check === CHECK)?.seen).toMatch(
      /^200 \{"answers":\[\{"status":200,"body":\{"outcome":"already-applied"\}\},\{"status":404,/,
    );
    expect(older.filter((result) => result.verdict !== 'pass')).toEqual([
      expect.objectContaining({
        check: CHECK,
        verdict: 'skip',
        seen: expect.stringMatching(/^not served, optional: 404 /),
      }),
    ]);
  });
});
