/**
 * A monitor whose every workflow task fails, as a defect in workflow code makes it (a nondeterministic
 * change, a throw): the worker retries the task and the workflow acts on nothing.
 */
export async function slaveMonitorWorkflow(): Promise<never> {
  await Promise.resolve();
  throw new Error('this workflow task fails on purpose');
}
