/**
 * A failover that waits long for a matched standby keeps its history short: its workflow continues as new
 * after a count of its checks (FAILOVER_STANDBY_CHECKS_PER_RUN), and the run that follows goes on waiting and
 * takes the standby that appears.
 */
import { failoverStateQuery } from '../workflows/definitions';
import { failoverRows } from './support/db';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf } from './support/wait';
import { useTestWorld } from './support/world';

const CHECKS_PER_RUN = 3;
const world = useTestWorld({
  FAILOVER_STANDBY_RECHECK: '100ms',
  FAILOVER_STANDBY_CHECKS_PER_RUN: String(CHECKS_PER_RUN),
});

test('a failover waiting for a standby continues as new after its checks, and goes on when one appears', async () => {
  const { fleet, db, client, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1s' })));

  await withWorker(async () => {
    await fleet.startMonitor('rec-01');
    const waiting = await eventually('the failover of rec-01 to wait for a standby', async () =>
      (await failoverRows(db)).find((row) => row.status === 'waiting-for-standby'),
    );
    // Two runs later it is still waiting, each run on a history of a few checks. (The take-over records the
    // failover before its workflow starts; visibility shows a run's end a moment after the next run.)
    const ended = await eventually('the waiting failover to have continued as new twice', async () => {
      const runs = [];
      for await (const run of client.workflow.list({ query: `WorkflowId = '${waiting.id}'` })) runs.push(run);
      const continued = runs.filter((run) => run.status.name === 'CONTINUED_AS_NEW');
      return continued.length >= 2 ? continued : undefined;
    });
    for (const run of ended) {
      const { events } = await client.workflow.getHandle(waiting.id, run.runId).fetchHistory();
      const checks = (events ?? []).filter((event) => event.timerStartedEventAttributes).length;
      expect(checks).toBe(CHECKS_PER_RUN);
    }
    const failover = client.workflow.getHandle(waiting.id);
    const state = await failover.query(failoverStateQuery);
    expect(state.step).toBe('waiting for a matched standby');

    await seed(site(standby('fo-01')));
    expect(await fleet.notifyStandbyAvailable()).toEqual([waiting.id]);
    const result = await failoverOf(world.current, 'rec-01', { stopPromotedMonitor: true });
    expect(result.failoverServerId).toBe('fo-01');
  });
  expect((await failoverRows(db)).map((row) => row.status)).toEqual(['completed']);
});
