/**
 * The VMS the worker drives: the site's bridge at VMS_BRIDGE_URL, or, for demonstrations and development, the
 * simulated site served as a bridge by this process (over HTTP on the loopback, like any bridge). In
 * production (NODE_ENV=production) a missing bridge stops the worker with a message saying what to set.
 */
import type { Server } from 'node:http';
import type { Pool } from 'pg';
import { ConfigError } from '../infra/config';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import type { VmsControlPlane } from '../vms/control-plane';
import { HttpVmsBridge } from '../vms/http-bridge';
import { VmsSimulator } from '../vms/simulator';
import { createSimulatorServer, listen, stopServer } from '../vms/simulator-server';

export interface VmsConnection {
  controlPlane: VmsControlPlane;
  /** The bridge's base URL (the embedded simulator's, when it is one). */
  url: string;
  embeddedSimulator: boolean;
  close(): Promise<void>;
}

export const connectVms = async (
  config: Pick<AppConfig, 'vmsBridge'>,
  db: Pool,
  logger: Logger,
): Promise<VmsConnection> => {
  const { vmsBridge } = config;
  const bridgeOptions = {
    timeoutMs: vmsBridge.timeoutMs,
    installTimeoutMs: vmsBridge.installTimeoutMs,
    ...(vmsBridge.token !== undefined && { token: vmsBridge.token }),
    ...(vmsBridge.tls !== undefined && { tls: vmsBridge.tls }),
  };
  if (vmsBridge.url !== undefined) {
    const bridge = new HttpVmsBridge({ ...bridgeOptions, url: vmsBridge.url });
    return {
      controlPlane: bridge,
      url: vmsBridge.url,
      embeddedSimulator: false,
      close: () => Promise.resolve(bridge.close()),
    };
  }
  if (!vmsBridge.embeddedSimulator.enabled) {
    throw new ConfigError(
      "no VMS bridge configured: set VMS_BRIDGE_URL to your site's bridge (docs/vms-bridge.md), " +
        'or VMS_SIMULATOR=embedded to drive the simulated site',
    );
  }
  const simulator = new VmsSimulator(db);
  await simulator.install();
  const server: Server = createSimulatorServer({
    simulator,
    logger: logger.child({ component: 'vms-simulator' }),
    ...(vmsBridge.token !== undefined && { token: vmsBridge.token }),
  });
  const port = await listen(server, vmsBridge.embeddedSimulator.port, '127.0.0.1').catch((error: unknown) => {
    throw new ConfigError(
      `VMS_SIMULATOR_PORT=${vmsBridge.embeddedSimulator.port} cannot serve the simulated site: ${(error as Error).message}`,
    );
  });
  const url = `http://127.0.0.1:${port}`;
  const bridge = new HttpVmsBridge({
    url,
    timeoutMs: vmsBridge.timeoutMs,
    installTimeoutMs: vmsBridge.installTimeoutMs,
    ...(vmsBridge.token !== undefined && { token: vmsBridge.token }),
  });
  return {
    controlPlane: bridge,
    url,
    embeddedSimulator: true,
    close: async () => {
      bridge.close();
      await stopServer(server);
    },
  };
};
