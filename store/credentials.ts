/** Agent credentials: one per agent, issued and revoked by operators, read by every gateway. */
import type { Pool } from 'pg';
import { getServer } from './servers';

export interface CredentialRecord {
  id: string;
  serverId: string;
  issuedAt: Date;
  revokedAt: Date | null;
}

export const insertCredential = async (
  db: Pool,
  credential: { id: string; serverId: string; tokenHash: Buffer },
): Promise<CredentialRecord> => {
  await getServer(db, credential.serverId);
  const { rows } = await db.query<CredentialRecord>(
    `INSERT INTO agent_credentials (id, server_id, token_hash) VALUES ($1, $2, $3)
     RETURNING id, server_id AS "serverId", issued_at AS "issuedAt", revoked_at AS "revokedAt"`,
    [credential.id, credential.serverId, credential.tokenHash],
  );
  return rows[0] as CredentialRecord;
};

/** Revokes the server's credentials (or the one named): returns the ids revoked now. */
export const revokeCredentials = async (
  db: Pool,
  serverId: string,
  credentialId?: string,
): Promise<string[]> => {
  await getServer(db, serverId);
  const { rows } = await db.query<{ id: string }>(
    `UPDATE agent_credentials SET revoked_at = now()
      WHERE server_id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR id = $2) RETURNING id`,
    [serverId, credentialId ?? null],
  );
  return rows.map((row) => row.id).sort();
};

export const listCredentials = async (db: Pool, serverId?: string): Promise<CredentialRecord[]> => {
  const { rows } = await db.query<CredentialRecord>(
    `SELECT id, server_id AS "serverId", issued_at AS "issuedAt", revoked_at AS "revokedAt"
       FROM agent_credentials WHERE $1::text IS NULL OR server_id = $1 ORDER BY server_id, issued_at, id`,
    [serverId ?? null],
  );
  return rows;
};

/** Every credential in force, by token hash: what a gateway accepts. */
export const credentialsInForce = async (db: Pool): Promise<{ tokenHash: Buffer; serverId: string }[]> => {
  const { rows } = await db.query<{ tokenHash: Buffer; serverId: string }>(
    'SELECT token_hash AS "tokenHash", server_id AS "serverId" FROM agent_credentials WHERE revoked_at IS NULL',
  );
  return rows;
};
