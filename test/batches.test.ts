/**
 * Calls made one by one run in batches (the detector's failover openings, the take-over's steps): those asked
 * in one turn of the event loop go in one batch, those asked while it is in flight in the next; an answer that
 * is an error rejects its own caller only, and a batch that fails rejects each of its callers, never one
 * answered for another.
 */
import { DomainError, ErrorType } from '../domain/errors';
import { Batches } from '../infra/batches';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('calls asked together go in one batch, those asked meanwhile in the next, each answered its own', async () => {
  const batches: string[][] = [];
  let releaseFirst: () => void = () => {};
  const firstInFlight = new Promise<void>((resolve) => (releaseFirst = resolve));
  const opened = new Batches<string, string>(async (slaveIds) => {
    batches.push(slaveIds);
    if (batches.length === 1) await firstInFlight;
    return slaveIds.map((slaveId) =>
      slaveId === 'rec-02'
        ? new DomainError(ErrorType.FailoverNotConfirmed, 'heard before its deadline')
        : `opened ${slaveId}`,
    );
  });

  const first = ['rec-01', 'rec-02', 'rec-03'].map((id) => opened.run(id));
  await nextTurn();
  const meanwhile = ['rec-04', 'rec-05'].map((id) => opened.run(id));
  releaseFirst();

  const answers = await Promise.allSettled([...first, ...meanwhile]);
  expect(batches).toEqual([
    ['rec-01', 'rec-02', 'rec-03'],
    ['rec-04', 'rec-05'],
  ]);
  expect(
    answers.map((answer) =>
      answer.status === 'fulfilled' ? answer.value : (answer.reason as DomainError).type,
    ),
  ).toEqual(['opened rec-01', 'FailoverNotConfirmed', 'opened rec-03', 'opened rec-04', 'opened rec-05']);
});

test('a batch that fails rejects each of its calls, and the next batch goes on', async () => {
  let calls = 0;
  const opened = new Batches<string, string>((slaveIds) => {
    calls += 1;
    if (calls === 1) return Promise.reject(new Error('Connection terminated unexpectedly'));
    return Promise.resolve(slaveIds.map((slaveId) => `opened ${slaveId}`));
  });

  const failed = await Promise.allSettled([opened.run('rec-01'), opened.run('rec-02')]);
  expect(failed.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
  expect(await opened.run('rec-03')).toBe('opened rec-03');
  expect(calls).toBe(2);
});

test('a batch answering fewer calls than asked rejects those left unanswered', async () => {
  const opened = new Batches<string, string>((slaveIds) => Promise.resolve([`opened ${slaveIds[0]}`]));

  const answers = await Promise.allSettled([opened.run('rec-01'), opened.run('rec-02')]);
  expect(answers[0]).toEqual({ status: 'fulfilled', value: 'opened rec-01' });
  expect(answers[1]).toMatchObject({
    status: 'rejected',
    reason: { message: 'batch call 1 of 2 not answered' },
  });
});
