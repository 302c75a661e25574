/**
 * Routes the Temporal SDK's own logs of each test file to pino at error level (expected failures of the specs stay quiet), instead of the console, and
 * shuts that runtime down after the file so the jest worker can exit.
 */
import { Runtime } from '@temporalio/worker';
import { createLogger } from '../../infra/logger';
import { installTemporalRuntime } from '../../infra/runtime';

installTemporalRuntime(createLogger({ log: { level: process.env.LOG_LEVEL ?? 'error', format: 'json' } }), 0);

afterAll(() => Runtime.instance().shutdown());
