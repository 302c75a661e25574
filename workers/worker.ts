/** Builds the worker that runs the failover workflows and activities: used by the service and the tests. */
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createActivities } from '../activities';
import type { TakeOversHere } from '../failover/take-over';
import { createFleet } from '../app/fleet';
import type { AppConfig } from '../infra/config';
import type { VmsControlPlane } from '../vms/control-plane';

export interface VmsWorkerDeps {
  config: Pick<AppConfig, 'site' | 'temporal' | 'failover' | 'worker' | 'monitor' | 'liveness' | 'alerts'>;
  connection: NativeConnection;
  client: Client;
  db: Pool;
  vms: VmsControlPlane;
  /** A prebuilt workflow bundle (tests build it once); otherwise the workflows are bundled at start. */
  workflowBundle?: { codePath: string };
  taskQueue?: string;
  options?: Partial<WorkerOptions>;
  /** The take-overs the detector of this process runs, which the take-over activity awaits. */
  takeOversHere?: TakeOversHere;
}

export const createVmsWorker = async (deps: VmsWorkerDeps): Promise<Worker> => {
  // The failover workflow starts the promoted server's monitor through the same operations as the CLI.
  const fleet = createFleet(deps);
  return Worker.create({
    connection: deps.connection,
    namespace: deps.config.temporal.namespace,
    taskQueue: deps.taskQueue ?? deps.config.temporal.taskQueue,
    identity: deps.config.worker.identity,
    ...(deps.workflowBundle !== undefined
      ? { workflowBundle: deps.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({
      ...(deps.takeOversHere !== undefined && { takeOversHere: deps.takeOversHere }),
      db: deps.db,
      vms: deps.vms,
      monitors: fleet,
      tuning: deps.config.failover,
      site: deps.config.site,
      alerts: deps.config.alerts,
    }),
    maxCachedWorkflows: deps.config.worker.maxCachedWorkflows,
    ...(deps.config.worker.workflowTaskPollers !== undefined && {
      maxConcurrentWorkflowTaskPolls: deps.config.worker.workflowTaskPollers,
    }),
    ...(deps.config.worker.workflowTaskSlots !== undefined && {
      maxConcurrentWorkflowTaskExecutions: deps.config.worker.workflowTaskSlots,
    }),
    ...(deps.config.worker.workflowThreads !== undefined && {
      workflowThreadPoolSize: deps.config.worker.workflowThreads,
    }),
    // In-flight activities get this long to finish on SIGTERM before they are cancelled and retried elsewhere.
    shutdownGraceTime: '20s',
    ...deps.options,
  });
};
