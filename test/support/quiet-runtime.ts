/** Routes the Temporal SDK's own logs of each test file to pino at warn level, instead of the console. */
import { installTemporalRuntime } from '../../infra/runtime';
import { createLogger } from '../../infra/logger';

installTemporalRuntime(createLogger({ log: { level: process.env.LOG_LEVEL ?? 'warn', format: 'json' } }), 0);
