/** The Temporal SDK runtime of a worker process: its logs routed to pino, its metrics to Prometheus. */
import { Runtime } from '@temporalio/worker';
import { ConfigError } from './config';
import type { Logger } from './logger';
import { TemporalPinoLogger } from './logger';

/**
 * Installs the process-wide runtime. With `metricsPort` > 0 it serves Prometheus metrics (names prefixed
 * `temporal_`) at http://0.0.0.0:<port>/metrics. It also owns the SIGINT/SIGTERM handlers that stop the
 * workers gracefully; a process with a runtime and no worker yet is stopped once its worker exists.
 */
export const installTemporalRuntime = (
  logger: Logger,
  metricsPort: number,
  histogramBuckets: Record<string, number[]> = {},
): Runtime => {
  try {
    return Runtime.install({
      logger: new TemporalPinoLogger(logger.child({ component: 'temporal-sdk' })),
      telemetryOptions: {
        logging: { forward: {}, filter: { core: 'WARN', other: 'WARN' } },
        ...(metricsPort > 0 && {
          metrics: {
            prometheus: {
              bindAddress: `0.0.0.0:${metricsPort}`,
              histogramBucketOverrides: histogramBuckets,
            },
          },
        }),
      },
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (metricsPort > 0 && /prometheus|address/i.test(message)) {
      throw new ConfigError(`METRICS_PORT=${metricsPort} cannot serve Prometheus metrics: ${message}`);
    }
    throw error;
  }
};
