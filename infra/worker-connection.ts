/** The worker's native connection to the Temporal cluster, with the clients' connection options. */
import { NativeConnection } from '@temporalio/worker';
import type { TemporalConfig } from './config';
import { connectionOptions } from './temporal';

export const connectWorkerConnection = (config: TemporalConfig): Promise<NativeConnection> =>
  NativeConnection.connect(connectionOptions(config));
