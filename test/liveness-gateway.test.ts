/**
 * The heartbeat gateway over real HTTP, with credentials in PostgreSQL: a heartbeat is accepted only with a
 * credential of its own server, and whatever else arrives is refused, counted, and changes nothing.
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { issueAgentCredential, revokeAgentCredentials } from '../app/agent-credentials';
import { CredentialCache } from '../liveness/credential-cache';
import { HeartbeatGateway } from '../liveness/gateway';
import { LeaseTable } from '../liveness/lease-table';
import { LeaseWriter } from '../liveness/lease-writer';
import { readLeases } from '../store/leases';
import { site, slave, standby } from './support/site';
import { useTestWorld } from './support/world';

const world = useTestWorld();

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; serverId?: string };
  closed: boolean;
}

const post = (
  address: AddressInfo,
  options: { path?: string; token?: string; body?: unknown; raw?: string | Buffer; method?: string },
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const payload = options.raw ?? JSON.stringify(options.body ?? {});
    const sent = request(
      {
        host: '127.0.0.1',
        port: address.port,
        method: options.method ?? 'POST',
        path: options.path ?? '/v1/heartbeat',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
        },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: text === '' ? {} : (JSON.parse(text) as Answer['body']),
            closed: response.headers.connection === 'close',
          }),
        );
      },
    );
    sent.on('error', reject);
    sent.end(payload);
  });

const heartbeat = (serverId: string, disks = [{ letter: 'D', healthy: true }]) => ({
  serverId,
  sentAtMs: Date.now(),
  disks,
});

const startGateway = async () => {
  const { db, logger } = world.current;
  const credentials = new CredentialCache(db);
  await credentials.reload();
  const leases = new LeaseTable('gateway-test');
  const gateway = new HeartbeatGateway(
    { host: '127.0.0.1', port: 0, perCredentialRate: { perSecond: 2, burst: 3 } },
    credentials,
    leases,
    logger,
  );
  const address = await gateway.listen();
  return { credentials, leases, gateway, address };
};

test("a heartbeat with its own server's credential is recorded, and written to PostgreSQL in a batch", async () => {
  const { db, seed } = world.current;
  await seed(site(slave({ id: 'rec-01' }), standby('fo-01')));
  const rec01 = await issueAgentCredential(db, 'rec-01');
  const fo01 = await issueAgentCredential(db, 'fo-01');
  const { leases, gateway, address } = await startGateway();
  const writer = new LeaseWriter(db, leases, 60_000, world.current.logger);
  try {
    const answer = await post(address, {
      token: rec01.token,
      body: heartbeat('rec-01', [{ letter: 'E', healthy: false }]),
    });
    // A standby's agent heartbeats too: a promoted server is covered from its first second.
    expect((await post(address, { token: fo01.token, body: heartbeat('fo-01') })).status).toBe(200);

    expect(answer).toMatchObject({ status: 200, body: { serverId: 'rec-01' } });
    expect(leases.get('rec-01')).toMatchObject({ disks: [{ letter: 'E', healthy: false }] });
    expect(await readLeases(db)).toEqual([]);
    await writer.writeOnce();
    expect(await readLeases(db)).toMatchObject([
      { serverId: 'fo-01', heardBy: 'gateway-test' },
      { serverId: 'rec-01', disks: [{ letter: 'E', healthy: false }], heardBy: 'gateway-test' },
    ]);
    expect(gateway.stats.accepted).toBe(2);
  } finally {
    await gateway.close();
  }
});

test('refusals: no, unknown, foreign or revoked credentials, oversized or malformed bodies, floods, other paths', async () => {
  const { db, seed } = world.current;
  await seed(site(slave({ id: 'rec-01' }), slave({ id: 'rec-02' })));
  const rec01 = await issueAgentCredential(db, 'rec-01');
  const rec02 = await issueAgentCredential(db, 'rec-02');
  const { credentials, leases, gateway, address } = await startGateway();
  try {
    const cases: [string, Parameters<typeof post>[1], number, string][] = [
      ['no credential', { body: heartbeat('rec-01') }, 401, 'unauthenticated'],
      [
        'a token of no agent',
        { token: 'vmsa_abcdefghij_' + 'x'.repeat(43), body: heartbeat('rec-01') },
        401,
        'unauthenticated',
      ],
      ['not a token at all', { token: "' OR 1=1 --", body: heartbeat('rec-01') }, 401, 'unauthenticated'],
      ["another server's credential", { token: rec02.token, body: heartbeat('rec-01') }, 403, 'forbidden'],
      ['a 1 MB body', { token: rec01.token, raw: Buffer.alloc(1_000_000, 'a') }, 413, 'too-large'],
      ['not JSON', { token: rec01.token, raw: '{"serverId": "rec-01",' }, 400, 'malformed'],
      [
        'bad fields',
        { token: rec01.token, body: { serverId: 'rec-01', sentAtMs: 'now', disks: [] } },
        400,
        'malformed',
      ],
      [
        '27 disks',
        {
          token: rec01.token,
          body: heartbeat(
            'rec-01',
            Array.from({ length: 27 }, () => ({ letter: 'D', healthy: true })),
          ),
        },
        400,
        'malformed',
      ],
      [
        'another path',
        { token: rec01.token, path: '/v1/heartbeats', body: heartbeat('rec-01') },
        404,
        'not-found',
      ],
      ['a GET', { token: rec01.token, method: 'GET', body: heartbeat('rec-01') }, 404, 'not-found'],
    ];
    for (const [name, options, status, code] of cases) {
      const answer = await post(address, options);
      expect({ name, status: answer.status, code: answer.body.error?.code }).toEqual({ name, status, code });
    }
    expect(leases.size).toBe(0);

    await revokeAgentCredentials(db, 'rec-02');
    await credentials.reload();
    expect((await post(address, { token: rec02.token, body: heartbeat('rec-02') })).status).toBe(401);

    // Three in a burst, then two a second: a fourth at once is refused, and not recorded.
    const statuses = [];
    for (let beat = 0; beat < 4; beat += 1) {
      statuses.push((await post(address, { token: rec01.token, body: heartbeat('rec-01') })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(gateway.stats.accepted).toBe(3);
    expect(gateway.stats.refused).toMatchObject({
      unauthenticated: 4,
      forbidden: 1,
      'too-large': 1,
      malformed: 3,
      'not-found': 2,
      'rate-limited': 1,
    });
    expect(await readLeases(db)).toEqual([]);
  } finally {
    await gateway.close();
  }
});

test('an address that keeps failing is cut off for a while; agents elsewhere are not', async () => {
  const { db, seed, logger } = world.current;
  await seed(site(slave({ id: 'rec-01' })));
  const rec01 = await issueAgentCredential(db, 'rec-01');
  const credentials = new CredentialCache(db);
  await credentials.reload();
  const gateway = new HeartbeatGateway(
    { host: '0.0.0.0', port: 0, failuresPerAddress: { perSecond: 5, penaltyMs: 60_000 } },
    credentials,
    new LeaseTable('gateway-test'),
    logger,
  );
  const address = await gateway.listen();
  const from = (localAddress: string, token?: string) =>
    new Promise<number | 'reset'>((resolve) => {
      const payload = JSON.stringify(heartbeat('rec-01'));
      const sent = request(
        {
          host: '127.0.0.1',
          localAddress,
          port: address.port,
          method: 'POST',
          path: '/v1/heartbeat',
          agent: false,
          headers: {
            'content-length': Buffer.byteLength(payload),
            ...(token && { authorization: `Bearer ${token}` }),
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      sent.on('error', () => resolve('reset'));
      sent.end(payload);
    });
  try {
    const attacker = [];
    for (let attempt = 0; attempt < 10; attempt += 1) attacker.push(await from('127.0.0.2'));
    expect(attacker.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(attacker.slice(7)).toEqual(['reset', 'reset', 'reset']);
    expect(await from('127.0.0.1', rec01.token)).toBe(200);
    // Connections closed before any HTTP was read: the client saw a reset, the gateway counted each.
    expect(gateway.stats.refused.penalized).toBeGreaterThanOrEqual(3);
  } finally {
    await gateway.close();
  }
});
