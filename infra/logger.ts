/** One pino root logger for the process, and the adapter that routes Temporal's runtime logs into it. */
import pino from 'pino';
import type { Logger as PinoLogger } from 'pino';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { AppConfig } from './config';

export type Logger = PinoLogger;

/** Field paths that may carry secrets; pino replaces their values before anything is written. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'databaseUrl',
  '*.databaseUrl',
  'connectionString',
  '*.connectionString',
  'key',
  '*.key',
  'tls.clientCertPair',
  '*.tls.clientCertPair',
  'authorization',
  '*.authorization',
  'token',
  '*.token',
  // A whole config object logged under a key ({ config }) nests the secrets one level deeper.
  '*.*.password',
  '*.*.apiKey',
  '*.*.databaseUrl',
  '*.*.connectionString',
  '*.*.tls.clientCertPair',
  '*.*.authorization',
  '*.*.token',
];

export const createLogger = (
  config: Pick<AppConfig, 'log'>,
  destination?: pino.DestinationStream,
): PinoLogger => {
  const options: pino.LoggerOptions = {
    level: config.log.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // The Temporal SDK logs failures under `error`; without this, pino drops their message and stack.
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    base: { pid: process.pid },
  };
  if (destination !== undefined) return pino(options, destination);
  if (config.log.format === 'pretty') {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino(options);
};

const PINO_LEVEL: Record<LogLevel, pino.Level> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Temporal's Logger takes (message, meta); pino takes (meta, message). */
export class TemporalPinoLogger implements TemporalLogger {
  constructor(private readonly pinoLogger: PinoLogger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.pinoLogger[PINO_LEVEL[level]](meta ?? {}, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
