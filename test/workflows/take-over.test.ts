/**
 * The monitor and failover workflows on the real Temporal server, with stub activities typed after the real
 * ones: what the failover workflow does itself depends on what the monitor's take-over did. Each test has its
 * own task queue and workflow ids.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type {
  CameraMove,
  ClaimResult,
  FailoverPlan,
  FailoverResult,
  FailoverStart,
  FailoverTuning,
  MonitoredSlave,
  TakeOver,
} from '../../domain/contracts';
import { monitorWorkflowId } from '../../domain/names';
import type { LivenessReport } from '../../domain/liveness';
import { livenessSignal, monitorStateQuery } from '../../workflows/definitions';
import type { slaveMonitorWorkflow } from '../../workflows/monitor';
import { terminateRunningWorkflows } from '../support/cleanup';
import { WORKFLOW_BUNDLE_PATH, temporalAddress, temporalNamespace } from '../support/environment';
import { eventually, failoverResult } from '../support/wait';

/** The activities a failover runs, from the monitor's first read of its Slave to the failover completed. */
type FailoverActivities = Pick<
  Activities,
  | 'startMonitoring'
  | 'takeOverRecording'
  | 'beginFailover'
  | 'claimMatchedStandby'
  | 'promoteStandby'
  | 'fenceBrokenSlave'
  | 'rebindIpCameras'
  | 'ensureMonitoring'
  | 'waitUntilServerUp'
  | 'reinstallPlugin'
  | 'completeFailover'
>;

const TUNING: FailoverTuning = {
  standbyRecheckMs: 30_000,
  pluginRetryInitialMs: 50,
  pluginRetryMaxIntervalMs: 200,
  pluginRetryMaxAttempts: 4,
  serverUpTimeoutMs: 3_000,
  standbyBudgetMs: 10_000,
};

/** A protected Slave with a one-second timeout. */
const SLAVE: MonitoredSlave = {
  settings: { protected: true, timeoutMs: 1_000 },
  materialDriveLetters: ['D', 'E'],
  maintenanceUntilMs: null,
};

const CAMERAS: CameraMove = { ipCameraIds: ['rec-01-ip-1', 'rec-01-ip-2'], analogCameraIds: [] };

const planFor = (failoverId: string): FailoverPlan => ({
  failoverId,
  slaveId: 'rec-01',
  driveLetters: ['C', 'D', 'E'],
  plugins: ['ANPR+'],
});

/**
 * Stub activities that record each call with its input and answer as the real ones would for a Slave with a
 * matched standby free; the take-over answers as given.
 */
const stubActivities = (takeOverRecording: (input: FailoverStart) => Promise<TakeOver>) => {
  const calls: { activity: keyof FailoverActivities; input: unknown }[] = [];
  const record =
    <I, O>(activity: keyof FailoverActivities, answer: (input: I) => O | Promise<O>) =>
    async (input: I): Promise<O> => {
      calls.push({ activity, input });
      return answer(input);
    };
  const activities: FailoverActivities = {
    startMonitoring: record('startMonitoring', () => SLAVE),
    takeOverRecording: record('takeOverRecording', takeOverRecording),
    beginFailover: record('beginFailover', (input: FailoverStart) => planFor(input.failoverId)),
    claimMatchedStandby: record('claimMatchedStandby', (): ClaimResult => ({
      claimed: true,
      serverId: 'fo-01',
    })),
    promoteStandby: record('promoteStandby', () => undefined),
    fenceBrokenSlave: record('fenceBrokenSlave', () => 'fenced' as const),
    rebindIpCameras: record('rebindIpCameras', () => CAMERAS),
    ensureMonitoring: record('ensureMonitoring', () => ({ started: true })),
    waitUntilServerUp: record('waitUntilServerUp', () => undefined),
    reinstallPlugin: record('reinstallPlugin', () => ({ status: 'installed' as const })),
    completeFailover: record('completeFailover', () => []),
  };
  return { activities, calls };
};

let environment: TestWorkflowEnvironment;

beforeAll(async () => {
  // The shared dev server: createLocal and createTimeSkipping would download a server of their own.
  environment = await TestWorkflowEnvironment.createFromExistingServer({
    address: temporalAddress(),
    namespace: temporalNamespace(),
  });
});

afterAll(() => environment.teardown());

/** Starts the monitor of rec-01 and runs a worker with `activities` until its failover workflow completes. */
const failOverWith = async (activities: FailoverActivities): Promise<FailoverResult> => {
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  const site = `t${id}`;
  const taskQueue = `test-${id}`;
  const { client } = environment;
  const worker = await Worker.create({
    connection: environment.nativeConnection,
    namespace: temporalNamespace(),
    taskQueue,
    workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    activities,
  });
  try {
    return await worker.runUntil(async () => {
      const monitor = await client.workflow.start<typeof slaveMonitorWorkflow>('slaveMonitorWorkflow', {
        workflowId: monitorWorkflowId(site, 'rec-01'),
        taskQueue,
        args: [{ site, serverId: 'rec-01', slave: SLAVE, tuning: TUNING }],
      });
      // The detector's report that rec-01's deadline passed, as the liveness layer sends it.
      const deadline: LivenessReport = {
        kind: 'deadline',
        term: 1,
        lastSeenMs: null,
        deadlineMs: Date.now(),
      };
      await monitor.signal(livenessSignal, deadline);
      const failoverId = await eventually('the monitor to deem rec-01 broken', async () => {
        const state = await monitor.query(monitorStateQuery);
        return state.broken?.failoverId;
      });
      return failoverResult(client, failoverId);
    });
  } finally {
    await terminateRunningWorkflows(client, taskQueue);
  }
};

test('when the take-over fails, the failover workflow takes every step itself, once each and in order', async () => {
  const { activities, calls } = stubActivities(() =>
    Promise.reject(
      ApplicationFailure.create({
        type: 'VmsUnavailable',
        message: 'the VMS control plane did not answer',
        nonRetryable: true,
      }),
    ),
  );

  const result = await failOverWith(activities);

  expect(result).toMatchObject({
    slaveId: 'rec-01',
    failoverServerId: 'fo-01',
    ipCameraIds: CAMERAS.ipCameraIds,
    plugins: [{ plugin: 'ANPR+', status: 'installed' }],
  });
  const failoverId = result.failoverId;
  expect(calls).toEqual([
    { activity: 'startMonitoring', input: { serverId: 'rec-01', failedOver: false } },
    { activity: 'takeOverRecording', input: expect.objectContaining({ failoverId, slaveId: 'rec-01' }) },
    {
      activity: 'beginFailover',
      input: {
        failoverId,
        slaveId: 'rec-01',
        reason: 'heartbeat-timeout',
        deadlineMs: expect.any(Number),
        claim: { term: 1, lastSeenMs: null, deadlineMs: expect.any(Number) },
      },
    },
    { activity: 'claimMatchedStandby', input: failoverId },
    { activity: 'promoteStandby', input: { failoverId, slaveId: 'rec-01', serverId: 'fo-01' } },
    { activity: 'fenceBrokenSlave', input: failoverId },
    { activity: 'rebindIpCameras', input: failoverId },
    { activity: 'ensureMonitoring', input: 'fo-01' },
    { activity: 'waitUntilServerUp', input: 'fo-01' },
    { activity: 'reinstallPlugin', input: { failoverId, serverId: 'fo-01', plugin: 'ANPR+' } },
    // Again before completing: a no-op once fenced, a second chance for a Slave the VMS did not reach.
    { activity: 'fenceBrokenSlave', input: failoverId },
    { activity: 'completeFailover', input: failoverId },
  ]);
});

test('when the take-over restored recording, the failover workflow only protects and reinstalls', async () => {
  const { activities, calls } = stubActivities((input) =>
    Promise.resolve({
      plan: planFor(input.failoverId),
      claim: { claimed: true, serverId: 'fo-01' },
      cameras: CAMERAS,
    }),
  );

  const result = await failOverWith(activities);

  expect(result).toMatchObject({ failoverServerId: 'fo-01', ipCameraIds: CAMERAS.ipCameraIds });
  expect(calls.map((call) => call.activity)).toEqual([
    'startMonitoring',
    'takeOverRecording',
    'ensureMonitoring',
    'waitUntilServerUp',
    'reinstallPlugin',
    'fenceBrokenSlave',
    'completeFailover',
  ]);
});
