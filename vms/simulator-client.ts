/**
 * The simulator's own API (/v1/simulator/...) over HTTP: load a site, inject and lift faults, read the
 * simulated truth back. Used by `vms simulator ...` and by tests that drive the simulator as a service.
 */
import type { DiskHealth } from '../domain/site';
import { BridgeTransport } from './bridge-transport';
import type { BridgeConnection, HttpMethod } from './bridge-transport';
import type { CallFault, CallRecord, FaultableCall, SimulatorState } from './simulator-site';
import type { ServerState } from './simulator-sql';

export class SimulatorClient {
  private readonly http: BridgeTransport;

  constructor(private readonly connection: BridgeConnection & { timeoutMs: number }) {
    this.http = new BridgeTransport(connection);
  }

  /** Replaces the simulated site with a site description (the content of a site file). */
  putSite(site: unknown): Promise<{ servers: number; cameras: number }> {
    return this.send('PUT', '/v1/simulator/site', site) as Promise<{ servers: number; cameras: number }>;
  }

  async setServerState(serverId: string, state: ServerState): Promise<void> {
    await this.send('PUT', `/v1/simulator/servers/${encodeURIComponent(serverId)}/state`, { state });
  }

  async setDisks(serverId: string, disks: DiskHealth[]): Promise<void> {
    await this.send('PUT', `/v1/simulator/servers/${encodeURIComponent(serverId)}/disks`, { disks });
  }

  async setCallFault(call: FaultableCall, fault: CallFault | null): Promise<void> {
    const path = `/v1/simulator/faults/calls/${encodeURIComponent(call)}`;
    await (fault === null ? this.send('DELETE', path) : this.send('PUT', path, fault));
  }

  async failPluginInstalls(serverId: string, plugin: string, times: number): Promise<void> {
    await this.send('PUT', '/v1/simulator/faults/plugin-installs', { serverId, plugin, times });
  }

  async resetFaults(): Promise<void> {
    await this.send('DELETE', '/v1/simulator/faults');
  }

  state(): Promise<SimulatorState> {
    return this.send('GET', '/v1/simulator/state') as Promise<SimulatorState>;
  }

  async calls(): Promise<CallRecord[]> {
    return ((await this.send('GET', '/v1/simulator/calls')) as { calls: CallRecord[] }).calls;
  }

  close(): void {
    this.http.close();
  }

  private send(method: HttpMethod, path: string, body?: unknown): Promise<unknown> {
    return this.http.call({
      method,
      path,
      ...(body !== undefined && { body }),
      timeoutMs: this.connection.timeoutMs,
    });
  }
}
