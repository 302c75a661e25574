/**
 * The container deployment, checked without a Docker engine: docker-compose.yml, the Dockerfile and
 * .env.example agree with each other, with package.json, with what infra/config.ts reads and with the
 * native production stack (scripts/production-stack.sh: same config files, versions, TLS and roles).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import { loadConfig } from '../infra/config';
import { projectRoot } from '../infra/paths';

const root = projectRoot();
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  restart?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  entrypoint?: string[];
  command?: string[];
  stop_grace_period?: string;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const service = (name: string): Service => {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
};

/** The values an operator puts in .env, for the `${NAME:?...}` that docker compose requires. */
const OPERATOR_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: 'postgres-secret',
  TEMPORAL_DB_PASSWORD: 'temporal-secret',
  VMS_DB_PASSWORD: 'vms-secret',
  VMS_WORKER_DB_PASSWORD: 'worker-secret',
};

/** Where the compose services see the certificates of scripts/tls-certificates.sh. */
const TLS_MOUNT = '/etc/vms-tls';

/** docker compose's interpolation: ${NAME}, ${NAME:-default}, ${NAME:?error}. */
const interpolate = (value: string, env: Record<string, string>): string =>
  value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, kind?: string, rest?: string) => {
    const set = env[name];
    if (set !== undefined && set !== '') return set;
    if (kind === '-') return rest ?? '';
    throw new Error(`docker compose needs ${name}: ${rest ?? 'not set'}`);
  });

const interpolatedNames = (text: string): string[] =>
  [...text.matchAll(/\$\{([A-Z0-9_]+)/g)].map((match) => match[1] as string);

/** Every variable loadConfig reads, from its source: text(env, 'X'), secret(env, 'X') (also X_FILE)... */
const configVariables = (): string[] => {
  const source = read('infra/config.ts');
  const names = [
    ...source.matchAll(
      /\b(text|durationMs|integer|optionalInteger|fraction|flag|secret|fileContents)\(\s*env,\s*'([A-Z0-9_]+)'/g,
    ),
  ];
  return [
    ...new Set(
      names.flatMap(([, reader, name]) =>
        reader === 'secret' ? [name, `${name}_FILE`] : [name],
      ) as string[],
    ),
  ].sort();
};

const envExampleVariables = (): string[] =>
  [...read('.env.example').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1] as string);

const environmentOf = (name: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(service(name).environment ?? {}).map(([variable, value]) => [
      variable,
      interpolate(String(value), OPERATOR_ENV),
    ]),
  );
const workerEnvironment = (): Record<string, string> => environmentOf('worker');

/** The variable assignments of a shell script, e.g. TEMPORAL_SERVER_VERSION=v1.29.1. */
const shellSetting = (path: string, name: string): string | undefined =>
  new RegExp(`^${name}=(\\S+)$`, 'm').exec(read(path))?.[1];

describe('docker-compose.yml', () => {
  test('runs PostgreSQL, Temporal with its databases, schema and namespace set up, the Web UI and the worker after its migration and role', () => {
    const completed = { condition: 'service_completed_successfully' };
    expect(Object.keys(compose.services).sort()).toEqual([
      'database-setup',
      'postgres',
      'temporal',
      'temporal-schema',
      'temporal-setup',
      'temporal-ui',
      'vms-migrate',
      'worker',
      'worker-role',
    ]);
    expect(service('database-setup').depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(service('temporal-schema').depends_on).toEqual({ 'database-setup': completed });
    expect(service('temporal').depends_on).toEqual({ 'temporal-schema': completed });
    expect(service('temporal-setup').depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
    expect(service('vms-migrate').depends_on).toEqual({ 'database-setup': completed });
    expect(service('worker-role').depends_on).toEqual({ 'vms-migrate': completed });
    expect(service('worker').depends_on).toEqual({ 'worker-role': completed, 'temporal-setup': completed });
  });

  test('keeps PostgreSQL data in a named volume and runs Temporal on that PostgreSQL', () => {
    expect(service('postgres').volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(Object.keys(compose.volumes)).toEqual(['postgres-data']);
    expect(service('temporal').environment).toMatchObject({ TEMPORAL_SERVER_DB_HOST: 'postgres' });
  });

  test('publishes the TLS frontend, and the Web UI and worker metrics on the host loopback only; PostgreSQL not at all', () => {
    expect(service('temporal').ports).toEqual(['7633:7633']);
    expect(service('temporal-ui').ports).toEqual(['127.0.0.1:8633:8080']);
    expect(service('worker').ports).toEqual([`127.0.0.1:9464:${workerEnvironment().METRICS_PORT}`]);
    const published = Object.entries(compose.services).filter(([, each]) => each.ports !== undefined);
    expect(published.map(([name]) => name).sort()).toEqual(['temporal', 'temporal-ui', 'worker']);
  });

  test('runs the Temporal server from the config file and versions of the native stack', () => {
    const temporal = service('temporal');
    expect(temporal.volumes).toContain('./deploy/temporal:/etc/temporal/vms:ro');
    expect(temporal.entrypoint?.join(' ')).toBe(
      'temporal-server --root /etc/temporal/vms --config config --env production --allow-no-auth start',
    );
    // Every setting given is one the config file reads, the ones it cannot do without included.
    const template = read('deploy/temporal/config/production.yaml');
    const templateVariables = new Set([...template.matchAll(/env "([A-Z_]+)"/g)].map((match) => match[1]));
    expect(Object.keys(temporal.environment ?? {}).filter((name) => !templateVariables.has(name))).toEqual(
      [],
    );
    expect(temporal.environment).toMatchObject({
      TEMPORAL_SERVER_PORT: '7633',
      TEMPORAL_SERVER_TLS_DIR: TLS_MOUNT,
      TEMPORAL_SERVER_DYNAMIC_CONFIG: '/etc/temporal/vms/dynamicconfig/production.yaml',
    });
    expect(template).toMatch(/^ {2}numHistoryShards: 4$/m);

    const nativeServer = shellSetting('scripts/production-stack.sh', 'TEMPORAL_SERVER_VERSION');
    const nativeUi = shellSetting('scripts/production-stack.sh', 'TEMPORAL_UI_SERVER_VERSION');
    expect(interpolate(temporal.image ?? '', {})).toBe(`temporalio/server:${nativeServer?.slice(1)}`);
    expect(interpolate(service('temporal-ui').image ?? '', {})).toBe(`temporalio/ui:${nativeUi?.slice(1)}`);
    expect(interpolate(service('temporal-schema').image ?? '', {})).toMatch(
      new RegExp(`^temporalio/admin-tools:${nativeServer?.slice(1)}-`),
    );
  });

  test('the worker connects as the least-privilege role once the owner has migrated; Temporal has a role of its own', () => {
    const setup = environmentOf('database-setup');
    const role = environmentOf('worker-role');
    expect(new URL(environmentOf('vms-migrate').DATABASE_URL ?? '').username).toBe(setup.VMS_DB_OWNER);
    expect(service('vms-migrate').command).toEqual(['node', 'dist/workers/migrate.js']);
    expect(new URL(workerEnvironment().DATABASE_URL ?? '').username).toBe(role.WORKER_ROLE);
    expect(role.WORKER_ROLE).not.toBe(setup.VMS_DB_OWNER);
    expect(service('worker-role').volumes).toContain(
      './deploy/least-privilege.sql:/deploy/least-privilege.sql:ro',
    );
    expect(environmentOf('temporal')).toMatchObject({
      TEMPORAL_SERVER_DB_USER: 'temporal',
      TEMPORAL_SERVER_DB_PASSWORD: OPERATOR_ENV.TEMPORAL_DB_PASSWORD,
    });
    expect(setup.TEMPORAL_SERVER_DB_USER).toBe('temporal');
  });

  test('long-running services have health checks and restart policies, one-shot setups retry a few times', () => {
    for (const name of ['postgres', 'temporal', 'temporal-ui', 'worker']) {
      expect([name, service(name).healthcheck?.test[0]]).toEqual([name, 'CMD']);
      expect([name, service(name).restart]).toEqual([name, 'unless-stopped']);
    }
    for (const name of [
      'database-setup',
      'temporal-schema',
      'temporal-setup',
      'vms-migrate',
      'worker-role',
    ]) {
      expect([name, service(name).restart]).toEqual([name, 'on-failure:5']);
    }
  });

  describe('with the certificates of scripts/tls-certificates.sh where the services mount them', () => {
    let tlsDir: string;
    /** The environment as the container sees it, the mounted directory standing for TLS_MOUNT. */
    const mounted = (environment: Record<string, string>): Record<string, string> =>
      Object.fromEntries(
        Object.entries(environment).map(([name, value]) => [name, value.replace(TLS_MOUNT, tlsDir)]),
      );

    beforeAll(() => {
      tlsDir = mkdtempSync(join(tmpdir(), 'vms-compose-tls-'));
      execFileSync('bash', ['scripts/tls-certificates.sh', tlsDir], { cwd: root, stdio: 'pipe' });
    });

    afterAll(() => rmSync(tlsDir, { recursive: true, force: true }));

    test('every variable the worker service sets is read by infra/config.ts and loads without error', () => {
      const environment = mounted(workerEnvironment());
      const known = configVariables();

      expect(Object.keys(environment).filter((name) => !known.includes(name))).toEqual([]);
      const config = loadConfig(environment);
      expect(config).toMatchObject({
        site: 'main',
        databaseUrl: 'postgres://vms_worker:worker-secret@postgres:5432/vms_failover',
        temporal: {
          address: 'temporal:7633',
          namespace: 'default',
          taskQueue: 'vms-failover',
          tls: { serverNameOverride: 'temporal' },
        },
        log: { format: 'json' },
        worker: { identity: 'vms-worker@master', metricsPort: 9464, readyFile: '/tmp/vms-worker.ready' },
      });
      expect(config.temporal.tls?.clientCertPair).toBeDefined();
      expect(config.temporal.tls?.serverRootCACertificate).toBeDefined();
    });

    test('the worker health check asks the readiness endpoint on the port the worker is told to serve it', () => {
      const { worker } = compose.services;
      const config = loadConfig(mounted(workerEnvironment()));
      expect(config.worker.healthPort).toBeGreaterThan(0);
      expect(worker?.healthcheck?.test.join(' ')).toContain(
        `http://127.0.0.1:${config.worker.healthPort}/readyz`,
      );
      // Longer than the worker's 20 s shutdown grace time, so in-flight activities finish before a SIGKILL.
      expect(worker?.stop_grace_period).toBe('30s');
    });

    test('every certificate and key a service names is one the script makes, and every service using them mounts them', () => {
      const named = Object.entries(compose.services).flatMap(([name, each]) =>
        Object.values(each.environment ?? {})
          .map(String)
          .filter((value) => value.startsWith(`${TLS_MOUNT}/`))
          .map((value) => [name, value] as const),
      );
      expect(named.length).toBeGreaterThan(5);
      for (const [name, path] of named) {
        expect([name, existsSync(path.replace(TLS_MOUNT, tlsDir))]).toEqual([name, true]);
        expect(service(name).volumes?.some((volume) => volume.endsWith(`:${TLS_MOUNT}:ro`))).toBe(true);
      }
      expect(existsSync(join(tlsDir, 'server.pem'))).toBe(true);
    });
  });

  test('a missing password stops docker compose with a message instead of starting with an empty one', () => {
    expect(() => interpolate(String(service('worker').environment?.DATABASE_URL), {})).toThrow(
      'docker compose needs VMS_WORKER_DB_PASSWORD: set VMS_WORKER_DB_PASSWORD in .env',
    );
  });

  test('the Temporal setup registers exactly the search attributes the workflows set', () => {
    const script = read('deploy/temporal/setup-namespace.sh');
    const registered = /for name in ([A-Za-z ]+); do/.exec(script)?.[1]?.split(' ');
    expect(registered).toEqual(ALL_SEARCH_ATTRIBUTES.map((key) => key.name));
    expect(script).toContain('--type Keyword');
  });

  test('every file mounted from the repository exists', () => {
    const mounts = Object.values(compose.services)
      .flatMap((each) => each.volumes ?? [])
      .filter((volume) => volume.startsWith('./'))
      .map((volume) => volume.split(':')[0] as string);
    expect(mounts.length).toBeGreaterThan(0);
    expect(mounts.filter((path) => !existsSync(join(root, path)))).toEqual([]);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const stage = (name: string): string => {
    const found = stages.find((text) => text.split('\n')[0]?.endsWith(` AS ${name}`));
    if (found === undefined) throw new Error(`Dockerfile has no stage "${name}"`);
    return found;
  };

  test('the worker service is built from this Dockerfile', () => {
    expect(service('worker').build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
  });

  test('the build stage installs exactly the locked dependencies and runs the build script', () => {
    expect(packageJson.scripts.build).toBe('tsc -p tsconfig.build.json');
    expect(stage('build')).toContain('RUN npm ci ');
    expect(stage('build')).toContain('RUN npm run build');
  });

  test('the runtime image holds production dependencies, dist and migrations, and runs the worker script', () => {
    expect(stage('production-dependencies')).toContain('RUN npm ci --omit=dev');
    const runtime = stage('runtime');
    expect(runtime).toContain('COPY --from=production-dependencies /app/node_modules ./node_modules');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(runtime).toContain('COPY migrations ./migrations');
    // The project root is found by its package.json, and migrations are read next to it.
    expect(runtime).toContain('COPY package.json ./');
    expect(runtime).toContain('USER node');
    const command = /^CMD (.*)$/m.exec(runtime)?.[1];
    expect(JSON.parse(command ?? '[]')).toEqual(packageJson.scripts.worker?.split(' '));
  });

  test('the image environment is read by infra/config.ts and serves the health check port', () => {
    const env: Record<string, string> = Object.fromEntries(
      [...stage('runtime').matchAll(/([A-Z_]+)=(\S+)/g)]
        .map((match): [string, string] => [match[1] as string, match[2] as string])
        .filter(([name]) => name !== 'NODE_ENV'),
    );
    expect(Object.keys(env).filter((name) => !configVariables().includes(name))).toEqual([]);
    expect(loadConfig(env).worker.healthPort).toBe(8080);
    expect(stage('runtime')).toMatch(/^HEALTHCHECK [^]*\/readyz/m);
  });

  test('.dockerignore keeps local state and secrets out but everything the build compiles in', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.git', '.data', '.env', 'node_modules', 'dist']));
    const built = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
    expect(
      [...built, 'migrations', 'package.json', 'package-lock.json'].filter((path) => ignored.includes(path)),
    ).toEqual([]);
  });
});

describe('.env.example', () => {
  test('documents every variable infra/config.ts reads, and nothing else but docker compose settings', () => {
    const documented = envExampleVariables();
    const composeOnly = interpolatedNames(read('docker-compose.yml'));

    expect(configVariables().filter((name) => !documented.includes(name))).toEqual([]);
    expect(
      documented.filter((name) => !configVariables().includes(name) && !composeOnly.includes(name)),
    ).toEqual([]);
  });

  test('its values load without error', () => {
    const values = Object.fromEntries(
      [...read('.env.example').matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((match) => [
        match[1] as string,
        match[2] as string,
      ]),
    );
    expect(() => loadConfig(values)).not.toThrow();
  });
});
