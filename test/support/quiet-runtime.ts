/**
 * Routes the Temporal SDK's own logs of each test file to pino at warn level, instead of the console, and
 * shuts that runtime down after the file so the jest worker can exit.
 */
import { Runtime } from '@temporalio/worker';
import { createLogger } from '../../infra/logger';
import { installTemporalRuntime } from '../../infra/runtime';

installTemporalRuntime(createLogger({ log: { level: process.env.LOG_LEVEL ?? 'warn', format: 'json' } }), 0);

afterAll(() => Runtime.instance().shutdown());
