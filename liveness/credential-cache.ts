/**
 * The credentials a gateway accepts, in memory: a heartbeat is checked without a database round trip, and
 * keeps being accepted while PostgreSQL is out. Reloaded when an operator issues or revokes one (a
 * PostgreSQL notification) and every minute besides.
 */
import type { Pool } from 'pg';
import { credentialsInForce } from '../store/credentials';
import { hashToken, looksLikeAgentToken } from './agent-token';

export class CredentialCache {
  private serverByHash = new Map<string, string>();
  private loadedAtMs: number | null = null;

  constructor(private readonly db: Pool) {}

  /** Whether the credentials were read at least once: before that, nobody can be told apart. */
  get ready(): boolean {
    return this.loadedAtMs !== null;
  }

  get size(): number {
    return this.serverByHash.size;
  }

  async reload(): Promise<void> {
    const credentials = await credentialsInForce(this.db);
    this.serverByHash = new Map(
      credentials.map((credential) => [credential.tokenHash.toString('hex'), credential.serverId]),
    );
    this.loadedAtMs = Date.now();
  }

  /** The server a token is for; undefined when it is unknown, revoked or not a token at all. */
  serverOf(token: string): string | undefined {
    if (!looksLikeAgentToken(token)) return undefined;
    return this.serverByHash.get(hashToken(token).toString('hex'));
  }
}
