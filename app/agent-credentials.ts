/**
 * Agent credentials, as operators manage them: issued per server (the token is shown once), listed,
 * revoked. A gateway accepts a heartbeat only for the server its credential names.
 */
import type { Pool } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import { checkServerId } from '../domain/validation';
import { newAgentToken } from '../liveness/agent-token';
import type { CredentialRecord } from '../store/credentials';
import { insertCredential, listCredentials, revokeCredentials } from '../store/credentials';
import { getServer } from '../store/servers';

export interface IssuedCredential {
  id: string;
  serverId: string;
  /** The only time the token is ever shown. */
  token: string;
}

export const issueAgentCredential = async (db: Pool, serverId: string): Promise<IssuedCredential> => {
  checkServerId(serverId);
  const server = await getServer(db, serverId);
  if (server.role === 'master') {
    throw new DomainError(
      ErrorType.MasterCannotBeProtected,
      `"${serverId}" is the Master: heartbeat agents run on Slaves and standby failover servers`,
    );
  }
  const issued = newAgentToken();
  await insertCredential(db, { id: issued.id, serverId, tokenHash: issued.hash });
  return { id: issued.id, serverId, token: issued.token };
};

export const revokeAgentCredentials = async (
  db: Pool,
  serverId: string,
  credentialId?: string,
): Promise<string[]> => {
  checkServerId(serverId);
  return revokeCredentials(db, serverId, credentialId);
};

export const agentCredentials = (db: Pool, serverId?: string): Promise<CredentialRecord[]> =>
  listCredentials(db, serverId);
