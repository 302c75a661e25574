/**
 * The detector opens the failovers it decides together in one batch: those asked in one turn of the event loop
 * go in one call, those asked while it is in flight in the next, and a batch that fails leaves each of its
 * failovers to its monitor (every one rejected), never one answered for another.
 */
import type { FailoverStart } from '../domain/contracts';
import { DomainError, ErrorType } from '../domain/errors';
import { FailoverOpenings } from '../liveness/failover-openings';
import type { FailoverOpening } from '../store/failovers';

const start = (slaveId: string): FailoverStart => ({
  failoverId: `f-${slaveId}`,
  slaveId,
  reason: 'heartbeat-timeout',
  deadlineMs: 0,
});

const opened = (input: FailoverStart): FailoverOpening => ({
  plan: { failoverId: input.failoverId, slaveId: input.slaveId, driveLetters: [], plugins: [] },
  openedNow: true,
});

test('openings asked together go in one batch, those asked meanwhile in the next, each answered its own', async () => {
  const batches: string[][] = [];
  let releaseFirst: () => void = () => {};
  const firstInFlight = new Promise<void>((resolve) => (releaseFirst = resolve));
  const openings = new FailoverOpenings(async (inputs) => {
    batches.push(inputs.map((input) => input.slaveId));
    if (batches.length === 1) await firstInFlight;
    return inputs.map((input) =>
      input.slaveId === 'rec-02'
        ? { refused: new DomainError(ErrorType.FailoverNotConfirmed, 'heard before its deadline') }
        : opened(input),
    );
  });

  const first = ['rec-01', 'rec-02', 'rec-03'].map((id) => openings.open(start(id)));
  await new Promise((resolve) => setImmediate(resolve));
  const meanwhile = ['rec-04', 'rec-05'].map((id) => openings.open(start(id)));
  releaseFirst();

  const answers = await Promise.all([...first, ...meanwhile]);
  expect(batches).toEqual([
    ['rec-01', 'rec-02', 'rec-03'],
    ['rec-04', 'rec-05'],
  ]);
  expect(answers.map((answer) => ('refused' in answer ? answer.refused.type : answer.plan.slaveId))).toEqual([
    'rec-01',
    'FailoverNotConfirmed',
    'rec-03',
    'rec-04',
    'rec-05',
  ]);
});

test('a batch that fails rejects each of its openings, and the next batch goes on', async () => {
  let calls = 0;
  const openings = new FailoverOpenings((inputs) => {
    calls += 1;
    if (calls === 1) return Promise.reject(new Error('Connection terminated unexpectedly'));
    return Promise.resolve(inputs.map(opened));
  });

  const failed = await Promise.allSettled([openings.open(start('rec-01')), openings.open(start('rec-02'))]);
  expect(failed.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
  expect(await openings.open(start('rec-03'))).toMatchObject({
    plan: { slaveId: 'rec-03' },
    openedNow: true,
  });
  expect(calls).toBe(2);
});
