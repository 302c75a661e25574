/**
 * The activity boundary: a request the store or the application layer refuses (a DomainError) fails its
 * activity for good, as an ApplicationFailure of the same type that workflows and clients act on, and so
 * does a call the VMS refuses (VmsRejected, a 4xx: it can never succeed as it stands); any other error is
 * left for Temporal to retry. Activities run in a mocked activity context, on real PostgreSQL and the
 * simulated VMS.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parseSite } from '../domain/site-file';
import { createPool } from '../infra/database';
import { closedPort } from './support/cli';
import { site, slave } from './support/site';
import { activitiesOf } from './support/activities';
import { useTestWorld } from './support/world';

const world = useTestWorld();

test('a refused request fails its activity with a non-retryable failure of the same type', async () => {
  const { seed } = world.current;
  await seed(site(slave({ id: 'rec-01' })));
  const activities = activitiesOf(world.current);
  const environment = new MockActivityEnvironment();

  const restoring = environment.run(activities.restoreAsStandby, { serverId: 'rec-01' });
  await expect(restoring).rejects.toBeInstanceOf(ApplicationFailure);
  await expect(restoring).rejects.toMatchObject({
    type: 'ServerNotBroken',
    nonRetryable: true,
    message: '"rec-01" is in Servers, not in Broken recorders: only a broken server can be restored',
  });
  await expect(environment.run(activities.loadMonitoredSlave, 'master')).rejects.toMatchObject({
    type: 'MasterCannotBeProtected',
    nonRetryable: true,
  });
  await expect(environment.run(activities.ensureMonitoring, 'rec-99')).rejects.toMatchObject({
    type: 'UnknownServer',
    nonRetryable: true,
  });
});

test("a call the VMS refuses fails its activity for good, as VmsRejected with the VMS's code", async () => {
  const { seed, vms } = world.current;
  const description = site(slave({ id: 'rec-01' }));
  await seed(description);
  await vms.putSite(parseSite(description));
  const activities = activitiesOf(world.current);

  // The VMS holds the site and knows no rec-99: a 404 unknown-server, which no retry can change.
  const waiting = new MockActivityEnvironment().run(activities.waitUntilServerUp, 'rec-99');
  await expect(waiting).rejects.toBeInstanceOf(ApplicationFailure);
  await expect(waiting).rejects.toMatchObject({
    type: 'VmsRejected',
    nonRetryable: true,
    message: 'the VMS has no server rec-99',
    details: [{ code: 'unknown-server' }],
  });
});

test('an unreachable PostgreSQL is not a refusal: the activity fails as it is, to be retried', async () => {
  const { logger } = world.current;
  const unreachable = createPool(`postgres://postgres@127.0.0.1:${await closedPort()}/vms`, logger);
  try {
    const activities = activitiesOf(world.current, unreachable);
    const loading = new MockActivityEnvironment().run(activities.loadMonitoredSlave, 'rec-01');
    await expect(loading).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(loading).rejects.not.toBeInstanceOf(ApplicationFailure);
  } finally {
    await unreachable.end();
  }
});
