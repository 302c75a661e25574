/**
 * Work of lower priority waits until no work counted as under way is left, or until its time limit: a
 * detector's finished take-over tells its monitor once the other take-overs have ended.
 */
import { UnderWay } from '../infra/limit';

afterEach(() => jest.useRealTimers());

/** Whether the promise has settled by now (after the callbacks already queued). */
const settled = async (promise: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void promise.then(() => (done = true));
  await Promise.resolve();
  await Promise.resolve();
  return done;
};

test('idle answers at once when nothing is under way, and once the last work ends otherwise', async () => {
  const underWay = new UnderWay();
  expect(await settled(underWay.idle(60_000))).toBe(true);

  const first = underWay.begin();
  const second = underWay.begin();
  const idle = underWay.idle(60_000);
  first();
  // Ending one piece of work twice ends it once.
  first();
  expect(await settled(idle)).toBe(false);
  second();
  expect(await settled(idle)).toBe(true);

  // Counted again from nothing: a new wait waits for the new work.
  const third = underWay.begin();
  const again = underWay.idle(60_000);
  expect(await settled(again)).toBe(false);
  third();
  expect(await settled(again)).toBe(true);
});

test('idle gives up waiting after its time limit, with work still under way', async () => {
  jest.useFakeTimers();
  const underWay = new UnderWay();
  const work = underWay.begin();
  const idle = underWay.idle(3_000);
  jest.advanceTimersByTime(2_999);
  expect(await settled(idle)).toBe(false);
  jest.advanceTimersByTime(1);
  expect(await settled(idle)).toBe(true);
  // The work ending later wakes no one twice, and a new wait still waits for it.
  const next = underWay.idle(3_000);
  work();
  expect(await settled(next)).toBe(true);
});
