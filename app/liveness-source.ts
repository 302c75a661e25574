/** How a server is heard: its agent, the VMS's server status (a recorder nobody may install an agent on), or both. */
import type { Pool } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import type { LivenessSource } from '../domain/site';
import { LIVENESS_SOURCES } from '../domain/site';
import { checkServerId } from '../domain/validation';
import { saveLivenessSource } from '../store/monitoring';
import { getServer } from '../store/servers';

export const setLivenessSource = async (db: Pool, serverId: string, source: string): Promise<void> => {
  checkServerId(serverId);
  if (!LIVENESS_SOURCES.includes(source as LivenessSource)) {
    throw new DomainError(ErrorType.InvalidInput, `liveness must be one of ${LIVENESS_SOURCES.join(', ')}`);
  }
  const server = await getServer(db, serverId);
  if (server.role === 'master') {
    throw new DomainError(
      ErrorType.MasterCannotBeProtected,
      `"${serverId}" is the Master: it is never watched for failover`,
    );
  }
  await saveLivenessSource(db, serverId, source as LivenessSource);
};
