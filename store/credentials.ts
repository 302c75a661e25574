/** Agent credentials: one per agent, issued and revoked by operators, read by every gateway. */
import type { Queryable } from '../infra/database';
import { getServer } from './servers';

export interface CredentialRecord {
  id: string;
  serverId: string;
  issuedAt: Date;
  revokedAt: Date | null;
}

interface CredentialRow {
  id: string;
  server_id: string;
  issued_at: Date;
  revoked_at: Date | null;
}

const CREDENTIAL_COLUMNS = 'id, server_id, issued_at, revoked_at';
const SELECT_CREDENTIALS = `SELECT ${CREDENTIAL_COLUMNS} FROM agent_credentials`;
const CREDENTIALS_ORDER = 'ORDER BY server_id, issued_at, id';
const REVOKE_SERVER_CREDENTIALS =
  'UPDATE agent_credentials SET revoked_at = now() WHERE server_id = $1 AND revoked_at IS NULL';

const toCredentialRecord = (row: CredentialRow): CredentialRecord => ({
  id: row.id,
  serverId: row.server_id,
  issuedAt: row.issued_at,
  revokedAt: row.revoked_at,
});

export const insertCredential = async (
  db: Queryable,
  credential: { id: string; serverId: string; tokenHash: Buffer },
): Promise<CredentialRecord> => {
  await getServer(db, credential.serverId);
  const { rows } = await db.query<CredentialRow>(
    `INSERT INTO agent_credentials (id, server_id, token_hash) VALUES ($1, $2, $3) RETURNING ${CREDENTIAL_COLUMNS}`,
    [credential.id, credential.serverId, credential.tokenHash],
  );
  return toCredentialRecord(rows[0] as CredentialRow);
};

/** Many credentials in one statement (a benchmark site of thousands of agents). */
export const insertCredentials = async (
  db: Queryable,
  credentials: { id: string; serverId: string; tokenHash: Buffer }[],
): Promise<void> => {
  await db.query(
    `INSERT INTO agent_credentials (id, server_id, token_hash)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])`,
    [
      credentials.map((credential) => credential.id),
      credentials.map((credential) => credential.serverId),
      credentials.map((credential) => credential.tokenHash),
    ],
  );
};

/** Revokes the server's credentials (or the one named): returns the ids revoked now. */
export const revokeCredentials = async (
  db: Queryable,
  serverId: string,
  credentialId?: string,
): Promise<string[]> => {
  await getServer(db, serverId);
  const { rows } =
    credentialId === undefined
      ? await db.query<{ id: string }>(`${REVOKE_SERVER_CREDENTIALS} RETURNING id`, [serverId])
      : await db.query<{ id: string }>(`${REVOKE_SERVER_CREDENTIALS} AND id = $2 RETURNING id`, [
          serverId,
          credentialId,
        ]);
  return rows.map((row) => row.id).sort();
};

export const listCredentials = async (db: Queryable, serverId?: string): Promise<CredentialRecord[]> => {
  const { rows } =
    serverId === undefined
      ? await db.query<CredentialRow>(`${SELECT_CREDENTIALS} ${CREDENTIALS_ORDER}`)
      : await db.query<CredentialRow>(`${SELECT_CREDENTIALS} WHERE server_id = $1 ${CREDENTIALS_ORDER}`, [
          serverId,
        ]);
  return rows.map(toCredentialRecord);
};

/** Every credential in force, by token hash: what a gateway accepts. */
export const credentialsInForce = async (
  db: Queryable,
): Promise<{ tokenHash: Buffer; serverId: string }[]> => {
  const { rows } = await db.query<{ token_hash: Buffer; server_id: string }>(
    'SELECT token_hash, server_id FROM agent_credentials WHERE revoked_at IS NULL',
  );
  return rows.map((row) => ({ tokenHash: row.token_hash, serverId: row.server_id }));
};
