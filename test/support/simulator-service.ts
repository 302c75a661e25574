/**
 * The simulator as a service for one test: its HTTP server on a port the system picked (listen(0)), over the
 * test's own database, stopped after the test.
 */
import type { Server } from 'node:http';
import { parseSite } from '../../domain/site-file';
import { VmsSimulator } from '../../vms/simulator';
import { SimulatorClient } from '../../vms/simulator-client';
import { createSimulatorServer, listen, stopServer } from '../../vms/simulator-server';
import type { TestContext } from './world';

export const SIMULATOR_TOKEN = 'simulator-test-token';

export interface SimulatorService {
  url: string;
  server: Server;
  /** The same state, in-process: for assertions and faults that need no HTTP. */
  simulator: VmsSimulator;
  /** The simulator's own API over HTTP, with the token. */
  client: SimulatorClient;
  /** Loads a site description (as `vms simulator seed` does). */
  seed(site: unknown): Promise<void>;
}

const running: { server: Server; client: SimulatorClient }[] = [];

export const startSimulatorService = async (
  world: TestContext,
  options: { token?: string | null } = {},
): Promise<SimulatorService> => {
  const token = options.token === undefined ? SIMULATOR_TOKEN : options.token;
  const simulator = new VmsSimulator(world.db);
  const server = createSimulatorServer({
    simulator,
    logger: world.logger,
    ...(token !== null && { token }),
  });
  const port = await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const client = new SimulatorClient({ url, timeoutMs: 10_000, ...(token !== null && { token }) });
  running.push({ server, client });
  return {
    url,
    server,
    simulator,
    client,
    seed: async (site) => {
      await simulator.putSite(parseSite(site));
    },
  };
};

/** Stops every simulator service a test started (call from afterEach). */
export const stopSimulatorServices = async (): Promise<void> => {
  for (const { server, client } of running.splice(0)) {
    client.close();
    await stopServer(server);
  }
};
