/**
 * The credentials a gateway accepts, in memory: a heartbeat is checked without a database round trip, and
 * keeps being accepted while PostgreSQL is out. Reloaded when an operator issues or revokes one (a
 * PostgreSQL notification) and every minute besides.
 */
import type { Pool } from 'pg';
import { credentialsInForce } from '../store/credentials';
import { hashToken, looksLikeAgentToken } from './agent-token';

/** An unknown token makes the cache read PostgreSQL again, at most this often (a token just issued). */
const MISS_RELOAD_MS = 1_000;

export class CredentialCache {
  private serverByHash = new Map<string, string>();
  private loadedAtMs: number | null = null;
  private reloading: Promise<void> | undefined;

  constructor(private readonly db: Pool) {}

  /** Whether the credentials were read at least once: before that, nobody can be told apart. */
  get ready(): boolean {
    return this.loadedAtMs !== null;
  }

  get size(): number {
    return this.serverByHash.size;
  }

  /** Reads every credential in force; concurrent calls share one read. */
  reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        const credentials = await credentialsInForce(this.db);
        this.serverByHash = new Map(
          credentials.map((credential) => [credential.tokenHash.toString('hex'), credential.serverId]),
        );
        this.loadedAtMs = Date.now();
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /**
   * The server a token is for; undefined when it is unknown, revoked or not a token at all. A well-formed
   * token not in the cache may have been issued a moment ago: the cache is read again first (once a second at
   * most, whatever a peer sends; not at all while PostgreSQL is out).
   */
  async serverOf(token: string): Promise<string | undefined> {
    if (!looksLikeAgentToken(token)) return undefined;
    const hash = hashToken(token).toString('hex');
    const known = this.serverByHash.get(hash);
    if (known !== undefined || Date.now() - (this.loadedAtMs ?? 0) < MISS_RELOAD_MS) return known;
    await this.reload().catch(() => undefined);
    return this.serverByHash.get(hash);
  }
}
