/** The Temporal SDK runtime of a worker process: its logs routed to pino, its metrics to Prometheus. */
import { Runtime } from '@temporalio/worker';
import type { Logger } from './logger';
import { TemporalPinoLogger } from './logger';

export const installTemporalRuntime = (logger: Logger, metricsPort: number): Runtime =>
  Runtime.install({
    logger: new TemporalPinoLogger(logger.child({ component: 'temporal-sdk' })),
    telemetryOptions: {
      logging: { forward: {}, filter: { core: 'WARN', other: 'WARN' } },
      ...(metricsPort > 0 && { metrics: { prometheus: { bindAddress: `0.0.0.0:${metricsPort}` } } }),
    },
  });
