/**
 * The site's rules about which server may be monitored, protected or restored, written once for the CLI, the
 * activities and the store. Workflow-safe: pure functions over what PostgreSQL says of a server.
 */
import type { MonitoredSlave } from './contracts';
import { DomainError, ErrorType } from './errors';
import type { FailoverSettings, Folder, ServerRole, ServerStatus } from './site';

/** What the rules read of a server (store/servers.ts `ServerRecord` has all of it). */
export interface ServerStanding {
  id: string;
  role: ServerRole;
  status: ServerStatus;
  folder: Folder;
  settings: FailoverSettings;
}

const masterCannotBeProtected = (serverId: string): DomainError =>
  new DomainError(
    ErrorType.MasterCannotBeProtected,
    `"${serverId}" is the Master: only Slave servers can be placed under failover protection`,
  );

/** Why the server cannot be monitored for failover, or undefined when it can: a Slave, active, protected. */
export const monitorRefusal = (server: ServerStanding): DomainError | undefined => {
  if (server.role === 'master') return masterCannotBeProtected(server.id);
  if (server.role !== 'slave') {
    return new DomainError(
      ErrorType.NotASlave,
      `"${server.id}" is a standby failover server, not a recording Slave`,
    );
  }
  if (server.status !== 'active') {
    return new DomainError(
      ErrorType.ServerNotActive,
      `"${server.id}" is in Broken recorders: restore it first`,
    );
  }
  if (!server.settings.protected) {
    return new DomainError(
      ErrorType.ServerNotProtected,
      `"${server.id}" is not under failover protection: enable it in its settings first`,
    );
  }
  return undefined;
};

export const isMonitorable = (server: ServerStanding): boolean => monitorRefusal(server) === undefined;

/** The server itself when it may be monitored; the DomainError saying why not otherwise. */
export const checkMonitorable = <T extends ServerStanding>(server: T): T => {
  const refusal = monitorRefusal(server);
  if (refusal !== undefined) throw refusal;
  return server;
};

/** What a monitor is given of its Slave when it starts. */
export const monitoredSlave = ({
  settings,
  materialDriveLetters,
  maintenanceUntilMs,
}: MonitoredSlave): MonitoredSlave => ({ settings, materialDriveLetters, maintenanceUntilMs });

/** Only Slaves can be protected; any server can be left unprotected. */
export const checkProtectable = (server: ServerStanding, settings: FailoverSettings): void => {
  if (!settings.protected) return;
  if (server.role === 'master') throw masterCannotBeProtected(server.id);
  if (server.role === 'failover') {
    throw new DomainError(
      ErrorType.NotASlave,
      `"${server.id}" is a standby failover server: only Slaves can be protected`,
    );
  }
};

/** Only a server in Broken recorders can be restored (as a standby). */
export const checkRestorable = (server: ServerStanding): void => {
  if (server.status !== 'broken') {
    throw new DomainError(
      ErrorType.ServerNotBroken,
      `"${server.id}" is in ${server.folder}, not in Broken recorders: only a broken server can be restored`,
    );
  }
};
