/** What `vms status` shows of a monitor, from one describe, PostgreSQL's record and the queries it asked. */
import type { MonitorEvidence } from '../app/site-status';
import { monitorStatusOf } from '../app/site-status';

const monitoring: MonitorEvidence = {
  record: { running: true, folder: 'Servers', taskAttempt: 1 },
  answered: undefined,
  workerAnswers: true,
  held: false,
  latestFailover: undefined,
};

const statusOf = (changes: Partial<MonitorEvidence>) => monitorStatusOf({ ...monitoring, ...changes });

describe('monitorStatusOf', () => {
  test('a running monitor keeping its Slave in Servers is monitoring, with no query of its own', () => {
    expect(statusOf({})).toEqual({ status: 'monitoring', taskAttempt: null });
    expect(statusOf({ record: { running: true, folder: 'Servers', taskAttempt: undefined } }).status).toBe(
      'monitoring',
    );
  });

  test('a Slave of the open mass-failure hold is failover held', () => {
    expect(statusOf({ held: true }).status).toBe('failover held');
  });

  test('a monitor that moved its Slave to Broken recorders is failing over until recording is restored', () => {
    const broken = { record: { running: true, folder: 'BrokenRecorders', taskAttempt: 1 } } as const;
    expect(statusOf({ ...broken }).status).toBe('failing over');
    expect(statusOf({ ...broken, latestFailover: 'standby-claimed' }).status).toBe('failing over');
    expect(statusOf({ ...broken, latestFailover: 'waiting-for-standby' }).status).toBe('failing over');
    expect(statusOf({ ...broken, latestFailover: 'recording-restored' }).status).toBe('failed over');
    expect(statusOf({ ...broken, latestFailover: 'completed', held: true }).status).toBe('failed over');
  });

  test('no monitor running, or no Slave, is not monitored', () => {
    expect(statusOf({ record: { running: false } }).status).toBe('not monitored');
    expect(statusOf({ record: undefined }).status).toBe('not monitored');
  });

  test('no worker answering leaves the state unknown, however Temporal records the monitor', () => {
    expect(statusOf({ workerAnswers: false })).toEqual({ status: 'worker not answering', taskAttempt: null });
    expect(statusOf({ record: 'unanswered' }).status).toBe('worker not answering');
    // The monitor asked on the worker's behalf is the one that answered.
    expect(statusOf({ workerAnswers: false, answered: true }).status).toBe('monitoring');
  });

  test('a failed workflow task with no answer is a stuck monitor; one that answers since is not', () => {
    const retried = { record: { running: true, folder: 'Servers', taskAttempt: 4 } } as const;
    expect(statusOf({ ...retried, answered: false })).toEqual({ status: 'monitor stuck', taskAttempt: 4 });
    expect(statusOf({ ...retried, answered: false, workerAnswers: false }).status).toBe('monitor stuck');
    expect(statusOf({ ...retried, answered: true }).status).toBe('monitoring');
  });
});
