/**
 * The Slaves' heartbeat agents, as a test plays them: each server gets a credential of its own on its first
 * heartbeat, and heartbeats go over HTTP to a heartbeat gateway (the test's own, or a worker service's).
 */
import type { Pool } from 'pg';
import { issueAgentCredential } from '../../app/agent-credentials';
import type { DiskHealth } from '../../domain/site';
import { GatewayClient } from '../../liveness/gateway-client';

export class TestAgents {
  private readonly clients = new Map<string, Promise<GatewayClient>>();

  constructor(
    private readonly db: Pool,
    /** Gateway URLs, asked at each heartbeat: a gateway may come and go during a test. */
    private readonly gateways: () => string[],
  ) {}

  /** A heartbeat of `serverId` sent now; resolves once a gateway took it (rejects on a refusal). */
  async heartbeat(serverId: string, disks: DiskHealth[] = []): Promise<void> {
    const client = await this.clientOf(serverId);
    await client.send({ serverId, sentAtMs: Date.now(), disks });
  }

  /** The token of a server's agent (issued on first use). */
  async tokenOf(serverId: string): Promise<string> {
    return (await this.credentialOf(serverId)).token;
  }

  close(): void {
    for (const client of this.clients.values()) void client.then((opened) => opened.close());
    this.clients.clear();
  }

  private readonly credentials = new Map<string, Promise<{ token: string }>>();

  private credentialOf(serverId: string): Promise<{ token: string }> {
    let credential = this.credentials.get(serverId);
    if (credential === undefined) {
      credential = issueAgentCredential(this.db, serverId);
      this.credentials.set(serverId, credential);
    }
    return credential;
  }

  private clientOf(serverId: string): Promise<GatewayClient> {
    const gateways = this.gateways();
    const key = `${serverId} ${gateways.join(',')}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      client = this.credentialOf(serverId).then(
        ({ token }) => new GatewayClient({ gateways, token, timeoutMs: 5_000 }),
      );
      this.clients.set(key, client);
    }
    return client;
  }
}
