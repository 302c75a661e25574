/** Reads of servers and what is bound to them. */
import type { PoolClient } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import type {
  CameraKind,
  Folder,
  FailoverSettings,
  LivenessSource,
  ServerRole,
  ServerStatus,
} from '../domain/site';
import { preparedStatement, queryPrepared } from '../infra/database';
import type { Queryable } from '../infra/database';

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
  /** How it is heard: its agent, the VMS's server status, or both. */
  livenessSource: LivenessSource;
  /** A standby that failed a failover: no failover claims it until it is put back in service. */
  outOfService: { sinceMs: number; reason: string } | null;
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
  liveness_source: LivenessSource;
  out_of_service_since: Date | null;
  out_of_service_reason: string | null;
}

const SELECT_SERVERS = `
  SELECT s.id, s.hostname, s.role, s.status, s.folder, s.protected, s.failover_timeout_ms,
         s.maintenance_until, s.replaces_server_id, s.liveness_source, s.out_of_service_since,
         s.out_of_service_reason,
         coalesce((SELECT array_agg(d.letter ORDER BY d.letter) FROM drives d WHERE d.server_id = s.id), '{}')
           AS drive_letters,
         coalesce((SELECT array_agg(d.letter ORDER BY d.letter) FROM drives d WHERE d.server_id = s.id AND d.material),
                  '{}') AS material_drive_letters
    FROM servers s`;

const toServerRecord = (row: ServerRow): ServerRecord => ({
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
  livenessSource: row.liveness_source,
  outOfService:
    row.out_of_service_since === null
      ? null
      : { sinceMs: row.out_of_service_since.getTime(), reason: row.out_of_service_reason ?? '' },
});

export const findServer = async (db: Queryable, serverId: string): Promise<ServerRecord | undefined> => {
  const { rows } = await db.query<ServerRow>(`${SELECT_SERVERS} WHERE s.id = $1`, [serverId]);
  return rows[0] && toServerRecord(rows[0]);
};

export const getServer = async (db: Queryable, serverId: string): Promise<ServerRecord> => {
  const server = await findServer(db, serverId);
  if (!server) throw new DomainError(ErrorType.UnknownServer, `unknown server "${serverId}"`);
  return server;
};

/** Servers locked in the order of their ids, as every statement that locks several does: no deadlock. */
const LOCK_SERVERS_SQL = `${SELECT_SERVERS} WHERE s.id = ANY($1) ORDER BY s.id FOR UPDATE OF s`;
export const LOCK_SERVERS = preparedStatement('lock-servers', LOCK_SERVERS_SQL);

/** The servers of these ids that exist, by id, their rows locked until the transaction ends. */
export const lockServers = async (
  tx: PoolClient,
  serverIds: string[],
): Promise<Map<string, ServerRecord>> => {
  const { rows } = await queryPrepared<ServerRow>(tx, LOCK_SERVERS, [serverIds]);
  return new Map(rows.map((row) => [row.id, toServerRecord(row)]));
};

/** The server, its row locked until the transaction ends: changes to one server happen one at a time. */
export const lockServer = async (tx: PoolClient, serverId: string): Promise<ServerRecord> => {
  const server = (await lockServers(tx, [serverId])).get(serverId);
  if (!server) throw new DomainError(ErrorType.UnknownServer, `unknown server "${serverId}"`);
  return server;
};

export const listServers = async (db: Queryable): Promise<ServerRecord[]> => {
  const { rows } = await db.query<ServerRow>(`${SELECT_SERVERS} ORDER BY s.folder, s.id`);
  return rows.map(toServerRecord);
};

export interface CameraRecord {
  id: string;
  name: string;
  kind: CameraKind;
  serverId: string;
}

interface CameraRow {
  id: string;
  name: string;
  kind: CameraKind;
  server_id: string;
}

const toCameraRecord = (row: CameraRow): CameraRecord => ({
  id: row.id,
  name: row.name,
  kind: row.kind,
  serverId: row.server_id,
});

const SELECT_CAMERAS = 'SELECT id, name, kind, server_id FROM cameras';

export const listCameras = async (db: Queryable, serverId?: string): Promise<CameraRecord[]> => {
  const { rows } =
    serverId === undefined
      ? await db.query<CameraRow>(`${SELECT_CAMERAS} ORDER BY id`)
      : await db.query<CameraRow>(`${SELECT_CAMERAS} WHERE server_id = $1 ORDER BY id`, [serverId]);
  return rows.map(toCameraRecord);
};

export const cameraIdsOf = async (db: Queryable, serverId: string, kind: CameraKind): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM cameras WHERE server_id = $1 AND kind = $2 ORDER BY id',
    [serverId, kind],
  );
  return rows.map((row) => row.id);
};

export const listPlugins = async (db: Queryable, serverId: string): Promise<string[]> => {
  const { rows } = await db.query<{ name: string }>(
    'SELECT name FROM plugins WHERE server_id = $1 ORDER BY name',
    [serverId],
  );
  return rows.map((row) => row.name);
};
