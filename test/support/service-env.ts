/** The environment of a worker service process that serves the current test's site. */
import type { TestContext } from './world';

/** The same test-speed tuning as the in-process workers of test/support/world.ts. */
export const serviceEnv = (world: TestContext): Record<string, string> => ({
  DATABASE_URL: world.databaseUrl,
  VMS_SITE: world.site,
  TEMPORAL_TASK_QUEUE: world.taskQueue,
  PLUGIN_RETRY_INITIAL: '50ms',
  PLUGIN_RETRY_MAX_INTERVAL: '200ms',
  PLUGIN_RETRY_MAX_ATTEMPTS: '4',
  PROMOTED_SERVER_UP_TIMEOUT: '3s',
  FAILOVER_STANDBY_RECHECK: '30s',
  // The simulated site the service serves itself, and its gateway: free ports, so services run side by side.
  VMS_SIMULATOR_PORT: '0',
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
});
