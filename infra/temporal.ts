/**
 * Client connections to the Temporal cluster, from the one typed config. The worker's native connection is in
 * worker-connection.ts: the CLI and the heartbeat agent never load the worker SDK.
 */
import { Client, Connection } from '@temporalio/client';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { TemporalConfig } from './config';

/** Address, TLS and API key: the same for the client and the worker connections. */
export const connectionOptions = (config: TemporalConfig): ConnectionOptions & NativeConnectionOptions => ({
  address: config.address,
  ...(config.tls !== undefined && { tls: config.tls }),
  ...(config.apiKey !== undefined && { apiKey: config.apiKey }),
});

export const connectClient = async (config: TemporalConfig): Promise<Client> => {
  const connection = await Connection.connect({ ...connectionOptions(config), connectTimeout: '10s' });
  return new Client({ connection, namespace: config.namespace });
};
