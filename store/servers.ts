/** Reads of servers and what is bound to them. */
import type { Pool, PoolClient } from 'pg';
import { ErrorType } from '../domain/errors';
import type { Folder, FailoverSettings, ServerRole, ServerStatus } from '../domain/site';
import { rejected } from './failures';

type Queryable = Pool | PoolClient;

export interface ServerRecord {
  id: string;
  hostname: string;
  role: ServerRole;
  status: ServerStatus;
  folder: Folder;
  settings: FailoverSettings;
  maintenanceUntilMs: number | null;
  replacesServerId: string | null;
  driveLetters: string[];
  /** Drives that hold recordings: when all of them are broken, the Slave has failed. */
  materialDriveLetters: string[];
}

interface ServerRow {
  id: string;
  hostname: string;
  role: ServerRole;
  status: ServerStatus;
  folder: Folder;
  protected: boolean;
  failover_timeout_ms: number;
  maintenance_until: Date | null;
  replaces_server_id: string | null;
  drive_letters: string[];
  material_drive_letters: string[];
}

const SELECT_SERVERS = `
  SELECT s.id, s.hostname, s.role, s.status, s.folder, s.protected, s.failover_timeout_ms,
         s.maintenance_until, s.replaces_server_id,
         coalesce((SELECT array_agg(d.letter ORDER BY d.letter) FROM drives d WHERE d.server_id = s.id), '{}')
           AS drive_letters,
         coalesce((SELECT array_agg(d.letter ORDER BY d.letter) FROM drives d WHERE d.server_id = s.id AND d.material),
                  '{}') AS material_drive_letters
    FROM servers s`;

const toRecord = (row: ServerRow): ServerRecord => ({
  id: row.id,
  hostname: row.hostname,
  role: row.role,
  status: row.status,
  folder: row.folder,
  settings: { protected: row.protected, timeoutMs: row.failover_timeout_ms },
  maintenanceUntilMs: row.maintenance_until?.getTime() ?? null,
  replacesServerId: row.replaces_server_id,
  driveLetters: row.drive_letters,
  materialDriveLetters: row.material_drive_letters,
});

export const findServer = async (db: Queryable, serverId: string): Promise<ServerRecord | undefined> => {
  const { rows } = await db.query<ServerRow>(`${SELECT_SERVERS} WHERE s.id = $1`, [serverId]);
  return rows[0] && toRecord(rows[0]);
};

export const getServer = async (db: Queryable, serverId: string): Promise<ServerRecord> => {
  const server = await findServer(db, serverId);
  if (!server) throw rejected(ErrorType.UnknownServer, `unknown server "${serverId}"`);
  return server;
};

export const listServers = async (db: Queryable): Promise<ServerRecord[]> => {
  const { rows } = await db.query<ServerRow>(`${SELECT_SERVERS} ORDER BY s.folder, s.id`);
  return rows.map(toRecord);
};

/** The Slave, checked to be one that can be monitored for failover: exists, a Slave, active, protected. */
export const getMonitorableSlave = async (db: Queryable, serverId: string): Promise<ServerRecord> => {
  const server = await getServer(db, serverId);
  if (server.role === 'master') {
    throw rejected(
      ErrorType.MasterCannotBeProtected,
      `"${serverId}" is the Master: only Slave servers can be placed under failover protection`,
    );
  }
  if (server.role !== 'slave') {
    throw rejected(ErrorType.NotASlave, `"${serverId}" is a standby failover server, not a recording Slave`);
  }
  if (server.status !== 'active') {
    throw rejected(ErrorType.ServerNotActive, `"${serverId}" is in Broken recorders: restore it first`);
  }
  if (!server.settings.protected) {
    throw rejected(
      ErrorType.ServerNotProtected,
      `"${serverId}" is not under failover protection: enable it in its settings first`,
    );
  }
  return server;
};

export interface CameraRecord {
  id: string;
  name: string;
  kind: 'ip' | 'analog';
  serverId: string;
}

export const listCameras = async (db: Queryable, serverId?: string): Promise<CameraRecord[]> => {
  const { rows } = await db.query<CameraRecord>(
    `SELECT id, name, kind, server_id AS "serverId" FROM cameras
      WHERE $1::text IS NULL OR server_id = $1 ORDER BY id`,
    [serverId ?? null],
  );
  return rows;
};

export const listPlugins = async (db: Queryable, serverId: string): Promise<string[]> => {
  const { rows } = await db.query<{ name: string }>(
    'SELECT name FROM plugins WHERE server_id = $1 ORDER BY name',
    [serverId],
  );
  return rows.map((row) => row.name);
};
