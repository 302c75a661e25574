/** Connections to the Temporal cluster, from the one typed config. */
import { Client, Connection } from '@temporalio/client';
import type { ConnectionOptions } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { TemporalConfig } from './config';

const connectionOptions = (config: TemporalConfig): ConnectionOptions & NativeConnectionOptions => ({
  address: config.address,
  ...(config.tls !== undefined && { tls: config.tls }),
  ...(config.apiKey !== undefined && { apiKey: config.apiKey }),
});

export const connectClient = async (config: TemporalConfig): Promise<Client> => {
  const connection = await Connection.connect({ ...connectionOptions(config), connectTimeout: '10s' });
  return new Client({ connection, namespace: config.namespace });
};

export const connectWorkerConnection = (config: TemporalConfig): Promise<NativeConnection> =>
  NativeConnection.connect(connectionOptions(config));
