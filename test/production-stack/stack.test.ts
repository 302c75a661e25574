/**
 * The production stack itself (scripts/production-stack.sh), run by `npm run test:production-stack` only:
 * the Temporal server on PostgreSQL with more than one history shard, its frontend reachable over TLS only
 * and with a client certificate only (mTLS), the Web UI reaching it, and the worker service running as the
 * least-privilege database role with the settings the script hands to an operator.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Pool } from 'pg';
import { ALL_SEARCH_ATTRIBUTES } from '../../domain/search-attributes';
import { projectRoot } from '../../infra/paths';
import { connectClient } from '../../infra/temporal';
import { temporalConfig, testServerUrl } from '../support/environment';
import { buildService, killAllServices, startService } from '../support/service-process';

const stackPort = Number(process.env.PRODUCTION_STACK_PORT ?? '7633');
const webUi = `http://127.0.0.1:${stackPort + 1000}`;

/** `production-stack.sh env ...` as variables: the lines an operator evaluates. */
const stackEnv = (who: 'worker' | 'owner'): Record<string, string> =>
  Object.fromEntries(
    execFileSync('bash', ['scripts/production-stack.sh', 'env', who], {
      cwd: projectRoot(),
      encoding: 'utf8',
    })
      .split('\n')
      .flatMap((line) => {
        const match = /^export ([A-Z_]+)=(.*)$/.exec(line);
        return match ? [[match[1] as string, match[2] as string]] : [];
      }),
  );

/** Connects with the stack's settings except those given, and asks the server something. */
const connectWith = async (tls: Parameters<typeof Connection.connect>[0]): Promise<unknown> => {
  const connection = await Connection.connect({ connectTimeout: '3s', ...tls });
  try {
    return await connection.workflowService.getSystemInfo({});
  } finally {
    await connection.close();
  }
};

afterEach(killAllServices);

describe('the production stack', () => {
  test('runs Temporal 1.29.1 on 4 history shards with the search attributes the workflows set', async () => {
    const client = await connectClient(temporalConfig());
    try {
      const cluster = await client.workflowService.getClusterInfo({});
      expect(cluster).toMatchObject({ serverVersion: '1.29.1', historyShardCount: 4 });
      const { customAttributes } = await client.connection.operatorService.listSearchAttributes({
        namespace: temporalConfig().namespace,
      });
      for (const key of ALL_SEARCH_ATTRIBUTES) {
        expect([key.name, customAttributes?.[key.name]]).toEqual([
          key.name,
          temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        ]);
      }
    } finally {
      await client.connection.close();
    }
  });

  test('the frontend refuses plain TCP, a client without a certificate and a server name its certificate lacks', async () => {
    const { address, tls = {} } = temporalConfig();
    expect(tls.clientCertPair).toBeDefined();
    const withoutCertificate = {
      serverNameOverride: tls.serverNameOverride,
      serverRootCACertificate: tls.serverRootCACertificate,
    };

    await expect(connectWith({ address, tls })).resolves.toBeDefined();
    await expect(connectWith({ address })).rejects.toThrow();
    await expect(connectWith({ address, tls: withoutCertificate })).rejects.toThrow();
    await expect(
      connectWith({ address, tls: { ...tls, serverNameOverride: 'not-the-server.example' } }),
    ).rejects.toThrow();
  });

  test('the Web UI serves its page and reads the namespace through the frontend over mTLS', async () => {
    const page = await fetch(`${webUi}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');

    const namespaces = (await (await fetch(`${webUi}/api/v1/namespaces`)).json()) as {
      namespaces: { namespaceInfo: { name: string } }[];
    };
    expect(namespaces.namespaces.map((namespace) => namespace.namespaceInfo.name)).toContain(
      temporalConfig().namespace,
    );
  });

  describe('the worker service with the settings of production-stack.sh env', () => {
    beforeAll(buildService, 180_000);

    test('connects over mTLS, and to PostgreSQL as the least-privilege role only', async () => {
      const env = stackEnv('worker');
      expect(env).toMatchObject({
        TEMPORAL_TLS_CERT_PATH: expect.stringMatching(/vms\.pem$/),
        DATABASE_URL_FILE: expect.stringMatching(/worker-database-url$/),
      });
      const database = new URL(readFileSync(env.DATABASE_URL_FILE ?? '', 'utf8').trim()).pathname.slice(1);

      const worker = startService({ ...env, WORKER_DATABASE_CONNECTIONS: '2' });
      await worker.ready();

      // The worker keeps its connections open: every session on the service's database is one of its.
      const admin = new Pool({ connectionString: testServerUrl('postgres'), max: 1 });
      try {
        const { rows } = await admin.query<{ rolname: string; rolsuper: boolean; rolcreaterole: boolean }>(
          `SELECT DISTINCT r.rolname, r.rolsuper, r.rolcreaterole
             FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
            WHERE a.datname = $1`,
          [database],
        );
        expect(rows).toEqual([
          { rolname: expect.stringMatching(/^vms_worker/), rolsuper: false, rolcreaterole: false },
        ]);
      } finally {
        await admin.end();
      }
    });
  });
});
