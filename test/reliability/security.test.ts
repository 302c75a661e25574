/**
 * Secrets stay secret and access is as narrow as it can be: secrets come from the environment or files and
 * never reach a log line; SQL takes values only as parameters; the worker (liveness layer included) runs a
 * whole failover as the least-privilege role of deploy/least-privilege.sql and can do nothing else; a
 * recorder's agent credential heartbeats for its own server only (more refusals: test/liveness-gateway.test.ts).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import ts from 'typescript';
import { loadConfig } from '../../infra/config';
import { createPool } from '../../infra/database';
import { createLogger } from '../../infra/logger';
import { projectRoot } from '../../infra/paths';
import { connectWorkerConnection } from '../../infra/worker-connection';
import { VmsSimulator } from '../../vms/simulator';
import { createFleet } from '../../app/fleet';
import { createVmsWorker } from '../../workers/worker';
import type { DiskHealth } from '../../domain/site';
import { GatewayClient, GatewayRefusal } from '../../liveness/gateway-client';
import { signalReporter } from '../../liveness/reporter';
import { LivenessService } from '../../liveness/service';
import { currentTerm } from '../../store/detector-term';
import { readLeases } from '../../store/leases';
import { TestAgents } from '../support/agents';
import { camerasOf, eventsOf, failoverRows, serverRow } from '../support/db';
import { WORKFLOW_BUNDLE_PATH, temporalConfig } from '../support/environment';
import { breakAllDisks, broken, healthy, heartbeat } from '../support/heartbeats';
import { closedPort } from '../support/cli';
import { buildService, killAllServices, startService } from '../support/service-process';
import { serviceEnv } from '../support/service-env';
import { site, slave, standby } from '../support/site';
import { failoverOf, monitorReaches } from '../support/wait';
import { useTestWorld } from '../support/world';
import { terminateRunningWorkflows } from '../support/cleanup';

const world = useTestWorld();

describe('secrets never reach the log', () => {
  const DATABASE_PASSWORD = 'Db-Pa55word-7f3';
  const API_KEY = 'temporal-api-key-9c1e5';
  const KEY_MATERIAL = 'MIIEsecretKeyMaterial42';
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vms-secrets-'));
    writeFileSync(
      join(dir, 'client.key'),
      `-----BEGIN PRIVATE KEY-----\n${KEY_MATERIAL}\n-----END PRIVATE KEY-----\n`,
    );
    writeFileSync(
      join(dir, 'client.crt'),
      '-----BEGIN CERTIFICATE-----\nMIIBpublicCert\n-----END CERTIFICATE-----\n',
    );
    writeFileSync(join(dir, 'api-key'), `${API_KEY}\n`);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('config objects and connection errors logged every usual way carry no password, API key or TLS key', async () => {
    const unreachablePort = await closedPort();
    const config = loadConfig({
      DATABASE_URL: `postgres://vms:${DATABASE_PASSWORD}@127.0.0.1:${unreachablePort}/vms_failover`,
      TEMPORAL_API_KEY_FILE: join(dir, 'api-key'),
      TEMPORAL_TLS_CERT_PATH: join(dir, 'client.crt'),
      TEMPORAL_TLS_KEY_PATH: join(dir, 'client.key'),
      LOG_FORMAT: 'json',
    });
    expect(config.temporal.apiKey).toBe(API_KEY);
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ log: { level: 'trace', format: 'json' } }, destination);

    logger.info(config, 'Configuration loaded');
    logger.info({ config }, 'Configuration loaded');
    logger.info({ temporal: config.temporal }, 'Temporal settings');
    logger.info(config.temporal, 'Temporal settings');
    logger.info({ tls: config.temporal.tls }, 'TLS settings');
    logger.child({ databaseUrl: config.databaseUrl }).info('Child logger with the database URL');
    const pool = createPool(config.databaseUrl, logger, { connectionTimeoutMillis: 2_000 });
    const databaseError = await pool.query('SELECT 1').catch((error: unknown) => error);
    await pool.end();
    logger.error({ err: databaseError, databaseUrl: config.databaseUrl }, 'PostgreSQL unreachable');
    const temporalError = await Connection.connect({
      address: `127.0.0.1:${unreachablePort}`,
      apiKey: API_KEY,
      connectTimeout: '1s',
    }).catch((error: unknown) => error);
    logger.error({ err: temporalError, apiKey: API_KEY }, 'Temporal unreachable');

    const output = lines.join('');
    expect(lines).toHaveLength(8);
    expect(databaseError).toMatchObject({ code: 'ECONNREFUSED' });
    expect(temporalError).toMatchObject({ message: expect.any(String) });
    const keyBytes = JSON.stringify([...Buffer.from(KEY_MATERIAL)]).slice(1, -1);
    for (const secret of [
      DATABASE_PASSWORD,
      API_KEY,
      KEY_MATERIAL,
      keyBytes,
      Buffer.from(KEY_MATERIAL).toString('base64'),
    ]) {
      expect(output).not.toContain(secret);
    }
    // Redaction hides the secret, not the fact that the setting is there.
    expect(output).toContain('[redacted]');
    expect(output).toContain('127.0.0.1:7233');
  });
});

describe('SQL takes values only as parameters', () => {
  /** A literal, an UPPER_CASE constant, or a choice between such (`down ? 'INSERT ...' : 'DELETE ...'`). */
  const isConstantSql = (node: ts.Expression): boolean =>
    ts.isStringLiteral(node) ||
    ts.isNoSubstitutionTemplateLiteral(node) ||
    (ts.isIdentifier(node) && /^[A-Z][A-Z0-9_]*$/.test(node.text)) ||
    (ts.isConditionalExpression(node) && isConstantSql(node.whenTrue) && isConstantSql(node.whenFalse));

  /** The SQL argument of a call: of `.query(sql, …)`, and of `preparedStatement(name, sql)`. */
  const sqlArgument = (node: ts.Node): ts.Expression | undefined => {
    if (!ts.isCallExpression(node)) return undefined;
    const callee = node.expression;
    if (ts.isPropertyAccessExpression(callee) && callee.name.text === 'query') return node.arguments[0];
    if (ts.isIdentifier(callee) && callee.text === 'preparedStatement') return node.arguments[1];
    return undefined;
  };

  /** SQL passed to `.query(...)` or prepared that is built from anything but literals and UPPER_CASE constants. */
  const interpolatedSql = (fileName: string, source: string): string[] => {
    const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true);
    const problems: string[] = [];
    const visit = (node: ts.Node): void => {
      const sql = sqlArgument(node);
      if (sql !== undefined) {
        const where = `${fileName}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
        if (ts.isTemplateExpression(sql)) {
          for (const span of sql.templateSpans) {
            if (!(ts.isIdentifier(span.expression) && /^[A-Z][A-Z0-9_]*$/.test(span.expression.text))) {
              problems.push(`${where}: \${${span.expression.getText(file)}}`);
            }
          }
        } else if (!isConstantSql(sql)) {
          problems.push(`${where}: ${sql.getText(file)}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
    return problems;
  };

  test('the check itself spots interpolated and concatenated values', () => {
    const unsafe = [
      'db.query(`SELECT * FROM servers WHERE id = ${serverId}`);',
      "db.query('SELECT * FROM servers WHERE id = ' + serverId);",
      'db.query(`${SELECT_SERVERS} WHERE s.id = $1`, [serverId]);',
      "const SELECT_ONE = preparedStatement('select-one', `SELECT * FROM servers WHERE id = ${serverId}`);",
      "const SELECT_TWO = preparedStatement('select-two', SELECT_TWO_SQL);",
    ].join('\n');
    expect(interpolatedSql('sample.ts', unsafe)).toEqual([
      'sample.ts:1: ${serverId}',
      "sample.ts:2: 'SELECT * FROM servers WHERE id = ' + serverId",
      'sample.ts:4: ${serverId}',
    ]);
  });

  test('no SQL in store/ and vms/ is built from values', () => {
    const files = ['store', 'vms'].flatMap((dir) =>
      readdirSync(join(projectRoot(), dir))
        .filter((name) => name.endsWith('.ts'))
        .map((name) => join(dir, name)),
    );
    expect(files.length).toBeGreaterThan(5);
    const problems = files.flatMap((path) =>
      interpolatedSql(path, readFileSync(join(projectRoot(), path), 'utf8')),
    );
    expect(problems).toEqual([]);
  });
});

describe('the least-privilege role of the worker', () => {
  let role: string;

  /** deploy/least-privilege.sql as psql runs it with -v worker_role=<role>. */
  const grantScript = (roleName: string): string =>
    readFileSync(join(projectRoot(), 'deploy', 'least-privilege.sql'), 'utf8').replaceAll(
      ':"worker_role"',
      `"${roleName}"`,
    );

  const roleUrl = (): string => {
    const url = new URL(world.current.databaseUrl);
    url.username = role;
    url.password = 'worker-password';
    return url.toString();
  };

  beforeAll(buildService, 180_000);

  beforeEach(async () => {
    role = `vms_worker_${world.current.site}`;
    await world.current.db.query(grantScript(role));
    await world.current.db.query(`ALTER ROLE "${role}" PASSWORD 'worker-password'`);
  });

  afterEach(async () => {
    await killAllServices();
    await terminateRunningWorkflows(world.current.client, world.current.taskQueue);
    await world.current.db.query(`DROP OWNED BY "${role}"`);
    await world.current.db.query(`DROP ROLE "${role}"`);
  });

  test('a whole failover and restore run as the restricted role, liveness layer included; DDL, history deletes, new servers and credentials are refused', async () => {
    const w = world.current;
    await w.seed(
      site(slave({ id: 'rec-01', timeout: '1h', analogCameras: 1, plugins: ['ANPR+'] }), standby('fo-01')),
    );
    const restricted: Pool = createPool(roleUrl(), w.logger);
    const connection = await connectWorkerConnection(temporalConfig());
    // Gateway, lease writer and detector as the worker service runs them: as the restricted role too.
    const liveness = new LivenessService(
      {
        site: w.site,
        db: restricted,
        databaseUrl: roleUrl(),
        reporter: signalReporter(w.client, w.config),
        vms: new VmsSimulator(restricted),
        failover: w.config.failover,
        identity: 'restricted-worker',
        logger: w.logger,
      },
      w.config.liveness,
    );
    // Credentials are the operator's to issue (as owner); the agents present them to the gateway.
    const agents = new TestAgents(w.db, () => [`http://127.0.0.1:${liveness.gateway.address()?.port}`]);
    try {
      await liveness.start();
      const fleet = createFleet({ config: w.config, client: w.client, db: restricted });
      const worker = await createVmsWorker({
        config: w.config,
        connection,
        client: w.client,
        db: restricted,
        vms: new VmsSimulator(restricted),
        workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
      });
      const result = await worker.runUntil(async () => {
        await fleet.startMonitor('rec-01');
        await breakAllDisks(agents, 'rec-01');
        const failover = await failoverOf(w, 'rec-01', { stopPromotedMonitor: true });
        await heartbeat(agents, 'rec-01');
        await monitorReaches(w, 'rec-01', (state) => state.lateHeartbeats === 1);
        await fleet.restore('rec-01', ['C', 'D', 'E']);
        return failover;
      });

      expect(result).toMatchObject({
        failoverServerId: 'fo-01',
        plugins: [{ plugin: 'ANPR+', status: 'installed' }],
      });
      expect((await currentTerm(w.db))?.leader).toMatch(/^restricted-worker#/);
      expect(await readLeases(w.db, ['rec-01'])).toMatchObject([
        { heardBy: expect.stringMatching(/^restricted-worker#/) },
      ]);
      expect(await failoverRows(w.db)).toMatchObject([{ status: 'completed' }]);
      expect(await camerasOf(w.db, 'fo-01')).toEqual(['rec-01-ip-1', 'rec-01-ip-2']);
      expect(await serverRow(w.db, 'rec-01')).toMatchObject({ folder: 'FailoverServers' });
      expect(await eventsOf(w.db, 'rec-01')).toEqual(
        expect.arrayContaining(['late-heartbeat', 'restored-as-standby']),
      );

      for (const forbidden of [
        'DROP TABLE servers',
        'CREATE TABLE stolen (id int)',
        'DELETE FROM failover_events',
        'TRUNCATE failovers',
        "INSERT INTO servers (id, hostname, role, status) VALUES ('rogue', 'rogue', 'slave', 'active')",
        "UPDATE servers SET hostname = 'renamed'",
        "UPDATE cameras SET kind = 'analog'",
        'DELETE FROM cameras',
        // Agents' credentials: the worker reads them, only the operator issues or revokes them.
        "INSERT INTO agent_credentials (id, server_id, token_hash) VALUES ('rogue123', 'rec-01', sha256('x'))",
        'UPDATE agent_credentials SET revoked_at = now()',
        'DELETE FROM agent_credentials',
        'DELETE FROM server_leases',
      ]) {
        await expect(restricted.query(forbidden)).rejects.toMatchObject({
          code: expect.stringMatching(/^42501$|^42P01$/),
        });
      }
    } finally {
      agents.close();
      await liveness.stop();
      await restricted.end();
      await connection.close();
    }
  });

  /*
   * migrate() creates schema_migrations only when it is missing: PostgreSQL checks the CREATE privilege even
   * for IF NOT EXISTS, and the restricted role has none.
   */
  test('the worker service starts as the restricted role once the owner has migrated', async () => {
    const worker = startService({ ...serviceEnv(world.current), DATABASE_URL: roleUrl() });
    await worker.ready();
  });
});

describe("a recorder's agent credential", () => {
  test('heartbeats only for its own server: refused (403) for another, whose monitor it can neither fail over nor keep in service', async () => {
    const { fleet, agents, db, seed, withWorker, liveness } = world.current;
    await seed(
      site(slave({ id: 'rec-01', timeout: '2s' }), slave({ id: 'rec-02', timeout: '1h' }), standby('fo-01')),
    );
    const forged: { status: number }[] = [];

    const { result, rec02 } = await withWorker(async () => {
      await fleet.startMonitor('rec-01');
      await fleet.startMonitor('rec-02');
      const address = liveness.gateway.address();
      // rec-02's agent, with its own credential, tries to fail rec-01 over, then to keep it alive.
      const forger = new GatewayClient({
        gateways: [`http://127.0.0.1:${address?.port}`],
        token: await agents.tokenOf('rec-02'),
        timeoutMs: 2_000,
      });
      const forge = async (disks: DiskHealth[]) => {
        const refusal = await forger
          .send({ serverId: 'rec-01', sentAtMs: Date.now(), disks })
          .then(() => ({ status: 200 }))
          .catch((error: unknown) => ({ status: error instanceof GatewayRefusal ? error.status : -1 }));
        forged.push(refusal);
      };
      try {
        await forge(broken('D', 'E'));
        await heartbeat(agents, 'rec-02');
        const failover = failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
        let failedOver = false;
        void failover.finally(() => (failedOver = true)).catch(() => undefined);
        while (!failedOver) {
          await forge(healthy('D', 'E'));
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
        return {
          result: await failover,
          rec02: await monitorReaches(world.current, 'rec-02', (state) => state.phase === 'monitoring'),
        };
      } finally {
        forger.close();
      }
    });

    expect(forged.length).toBeGreaterThan(2);
    expect(forged.every((answer) => answer.status === 403)).toBe(true);
    expect(liveness.gateway.stats.refused.forbidden).toBe(forged.length);
    // rec-01 was never heard: it failed over for its silence, not for the disks rec-02 claimed broken.
    expect(await failoverRows(db)).toMatchObject([{ slave_id: 'rec-01', reason: 'heartbeat-timeout' }]);
    expect(result.slaveId).toBe('rec-01');
    expect((await readLeases(db)).map((lease) => lease.serverId)).toEqual(['rec-02']);
    expect(rec02).toMatchObject({ phase: 'monitoring', broken: null });
  });
});
