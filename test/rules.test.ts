/**
 * The site's rules (domain/rules.ts), shared by the CLI, the activities and the store: which server may be
 * monitored, protected or restored, and the typed refusal otherwise.
 */
import { checkProtectable, checkRestorable, isMonitorable, monitorRefusal } from '../domain/rules';
import type { ServerStanding } from '../domain/rules';

/** What `check` threw, or undefined. */
const refusalOf = (check: () => void): unknown => {
  try {
    check();
    return undefined;
  } catch (error) {
    return error;
  }
};

const server = (standing: Partial<ServerStanding> = {}): ServerStanding => ({
  id: 'rec-01',
  role: 'slave',
  status: 'active',
  folder: 'Servers',
  settings: { protected: true, timeoutMs: 60_000 },
  ...standing,
});

test.each<[string, string, Partial<ServerStanding>, RegExp]>([
  [
    'the Master',
    'MasterCannotBeProtected',
    { id: 'master', role: 'master' },
    /^"master" is the Master: only Slave servers can be placed under failover protection$/,
  ],
  [
    'a standby',
    'NotASlave',
    { id: 'fo-01', role: 'failover', status: 'standby', folder: 'FailoverServers' },
    /^"fo-01" is a standby failover server, not a recording Slave$/,
  ],
  [
    'a Slave in Broken recorders',
    'ServerNotActive',
    { status: 'broken', folder: 'BrokenRecorders' },
    /restore it first/,
  ],
  [
    'an unprotected Slave',
    'ServerNotProtected',
    { settings: { protected: false, timeoutMs: 60_000 } },
    /enable it in its settings first/,
  ],
])('%s cannot be monitored: %s', (_server, type, standing, message) => {
  expect(isMonitorable(server(standing))).toBe(false);
  expect(monitorRefusal(server(standing))).toMatchObject({ type, message: expect.stringMatching(message) });
});

test('an active, protected Slave can be monitored', () => {
  expect(isMonitorable(server())).toBe(true);
  expect(monitorRefusal(server())).toBeUndefined();
});

test('only Slaves can be protected; any server can be left unprotected', () => {
  const master = server({ id: 'master', role: 'master' });
  const standby = server({ id: 'fo-01', role: 'failover', status: 'standby', folder: 'FailoverServers' });
  const protect = { protected: true, timeoutMs: 30_000 };
  expect(refusalOf(() => checkProtectable(master, protect))).toMatchObject({
    type: 'MasterCannotBeProtected',
  });
  expect(refusalOf(() => checkProtectable(standby, protect))).toMatchObject({ type: 'NotASlave' });
  expect(refusalOf(() => checkProtectable(master, { ...protect, protected: false }))).toBeUndefined();
  expect(refusalOf(() => checkProtectable(server(), protect))).toBeUndefined();
});

test('only a server in Broken recorders can be restored', () => {
  expect(
    refusalOf(() => checkRestorable(server({ status: 'broken', folder: 'BrokenRecorders' }))),
  ).toBeUndefined();
  expect(refusalOf(() => checkRestorable(server()))).toMatchObject({
    type: 'ServerNotBroken',
    message: '"rec-01" is in Servers, not in Broken recorders: only a broken server can be restored',
  });
});
