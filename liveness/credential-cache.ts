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
  private nextReload: Promise<void> | undefined;

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
   * token not in the cache may have been issued a moment ago: it waits for the next read of the cache, which
   * happens once a second at most whatever peers send (a flood of unknown tokens is slowed, not served).
   */
  async serverOf(token: string): Promise<string | undefined> {
    if (!looksLikeAgentToken(token)) return undefined;
    const hash = hashToken(token).toString('hex');
    const known = this.serverByHash.get(hash);
    if (known !== undefined) return known;
    await this.reloadSoon().catch(() => undefined);
    return this.serverByHash.get(hash);
  }

  /** The next read: now if the last was a second ago or more, else a second after it (shared by every caller). */
  private reloadSoon(): Promise<void> {
    if (this.reloading !== undefined) return this.reloading;
    this.nextReload ??= new Promise<void>((resolve) => {
      setTimeout(resolve, Math.max(0, (this.loadedAtMs ?? 0) + MISS_RELOAD_MS - Date.now()));
    })
      .then(() => this.reload())
      .finally(() => {
        this.nextReload = undefined;
      });
    return this.nextReload;
  }
}
