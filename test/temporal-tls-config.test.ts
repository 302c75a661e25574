/**
 * The TEMPORAL_TLS_* settings reach the SDK under the names it reads (serverNameOverride,
 * serverRootCACertificate, clientCertPair): a misspelt field is dropped without a word and the connection
 * then fails or, worse, trusts the system roots instead of the cluster's CA. The production-stack tests
 * (npm run test:production-stack) connect with these settings for real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../infra/config';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vms-tls-config-'));
  for (const name of ['ca.pem', 'client.pem', 'client-key.pem']) writeFileSync(join(dir, name), `${name}\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('CA, client certificate, key and server name become the SDK TLS options', () => {
  const { temporal } = loadConfig({
    LOG_FORMAT: 'json',
    TEMPORAL_ADDRESS: '127.0.0.1:7633',
    TEMPORAL_TLS_CA_PATH: join(dir, 'ca.pem'),
    TEMPORAL_TLS_CERT_PATH: join(dir, 'client.pem'),
    TEMPORAL_TLS_KEY_PATH: join(dir, 'client-key.pem'),
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
  });

  expect(temporal.tls).toEqual({
    serverNameOverride: 'localhost',
    serverRootCACertificate: Buffer.from('ca.pem\n'),
    clientCertPair: { crt: Buffer.from('client.pem\n'), key: Buffer.from('client-key.pem\n') },
  });
});

test('TEMPORAL_TLS=true alone turns TLS on with the system roots; nothing set means plain TCP', () => {
  expect(loadConfig({ LOG_FORMAT: 'json', TEMPORAL_TLS: 'true' }).temporal.tls).toEqual({});
  expect(loadConfig({ LOG_FORMAT: 'json' }).temporal.tls).toBeUndefined();
});

test('a certificate without its key, or an unreadable CA file, is refused naming the variable', () => {
  expect(() => loadConfig({ LOG_FORMAT: 'json', TEMPORAL_TLS_CERT_PATH: join(dir, 'client.pem') })).toThrow(
    new ConfigError('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together'),
  );
  expect(() => loadConfig({ LOG_FORMAT: 'json', TEMPORAL_TLS_CA_PATH: join(dir, 'missing.pem') })).toThrow(
    `TEMPORAL_TLS_CA_PATH="${join(dir, 'missing.pem')}" cannot be read`,
  );
});
