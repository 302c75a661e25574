/**
 * The site description an operator imports: servers with their roles, drives, cameras, plugins and
 * failover settings. Validated field by field; every error names the path of the bad field.
 */
import { parseDuration } from './duration';
import type { CameraKind, LivenessSource, ServerRole } from './site';
import { LIVENESS_SOURCES } from './site';
import { InvalidInput, checkDriveLetters, checkServerId, checkTimeoutMs } from './validation';

export interface SiteServer {
  id: string;
  hostname: string;
  role: ServerRole;
  drives: { letter: string; material: boolean }[];
  protected: boolean;
  timeoutMs: number;
  /** How the server is heard: its agent (default), the VMS's server status (no agent), or both. */
  liveness: LivenessSource;
  cameras: { id: string; name: string; kind: CameraKind; address: string | null }[];
  plugins: string[];
}

export interface Site {
  servers: SiteServer[];
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** A problem at a path of the file, e.g. servers[2].drives[0]. */
export class SiteFileError extends Error {
  override readonly name = 'SiteFileError';
  constructor(
    readonly path: (string | number)[],
    readonly problem: string,
  ) {
    super(`${formatPath(path)}: ${problem}`);
  }
}

export const formatPath = (path: (string | number)[]): string =>
  path.reduce<string>(
    (text, part) => (typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${part}` : part),
    '',
  );

const ROLES: ServerRole[] = ['master', 'slave', 'failover'];
const KINDS: CameraKind[] = ['ip', 'analog'];

type Path = (string | number)[];

const object = (value: unknown, path: Path): Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new SiteFileError(path, 'must be a mapping');
  return value as Record<string, unknown>;
};

/** A misspelt key ("camera:" for "cameras:") would otherwise silently import nothing. */
const onlyKeys = (value: Record<string, unknown>, allowed: readonly string[], path: Path): void => {
  const unknown = Object.keys(value).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw new SiteFileError([...path, unknown], `unknown field: expected one of ${allowed.join(', ')}`);
  }
};

const list = (value: unknown, path: Path): unknown[] => {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new SiteFileError(path, 'must be a list');
  return value;
};

const name = (value: unknown, path: Path, max = 128): string => {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) {
    throw new SiteFileError(path, `must be a non-empty text of at most ${max} characters`);
  }
  return value.trim();
};

const guard = <T>(path: Path, check: () => T): T => {
  try {
    return check();
  } catch (error) {
    if (error instanceof InvalidInput) throw new SiteFileError(path, error.message);
    throw error;
  }
};

const parseTimeout = (value: unknown, path: Path): number => {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined) throw new SiteFileError(path, 'must be a duration such as "30s" or "2m"');
  return guard(path, () => checkTimeoutMs(ms));
};

const parseLiveness = (value: unknown, path: Path): LivenessSource => {
  if (value === undefined) return 'agent';
  if (!LIVENESS_SOURCES.includes(value as LivenessSource)) {
    throw new SiteFileError(path, `must be one of ${LIVENESS_SOURCES.join(', ')}`);
  }
  return value as LivenessSource;
};

const parseDrive = (value: unknown, path: Path): { letter: string; material: boolean } => {
  if (typeof value === 'string')
    return { letter: guard(path, () => checkDriveLetters([value]))[0] as string, material: true };
  const drive = object(value, path);
  onlyKeys(drive, ['letter', 'material'], path);
  const letter = guard([...path, 'letter'], () => checkDriveLetters([drive.letter]))[0] as string;
  if (drive.material !== undefined && typeof drive.material !== 'boolean') {
    throw new SiteFileError([...path, 'material'], 'must be true or false');
  }
  return { letter, material: drive.material !== false };
};

const parseServer = (value: unknown, path: Path): SiteServer => {
  const server = object(value, path);
  onlyKeys(
    server,
    ['id', 'hostname', 'role', 'drives', 'protected', 'failoverTimeout', 'liveness', 'cameras', 'plugins'],
    path,
  );
  const id = guard([...path, 'id'], () => checkServerId(server.id));
  const role = server.role as ServerRole;
  if (!ROLES.includes(role)) throw new SiteFileError([...path, 'role'], `must be one of ${ROLES.join(', ')}`);
  const drives = list(server.drives, [...path, 'drives']).map((drive, index) =>
    parseDrive(drive, [...path, 'drives', index]),
  );
  if (drives.length === 0)
    throw new SiteFileError([...path, 'drives'], 'must list at least one drive letter');
  const seenLetters = new Set<string>();
  drives.forEach((drive, index) => {
    if (seenLetters.has(drive.letter))
      throw new SiteFileError([...path, 'drives', index], `drive ${drive.letter} is listed twice`);
    seenLetters.add(drive.letter);
  });
  const isProtected = server.protected ?? false;
  if (typeof isProtected !== 'boolean')
    throw new SiteFileError([...path, 'protected'], 'must be true or false');
  if (isProtected && role === 'master') {
    throw new SiteFileError(
      [...path, 'protected'],
      'the Master cannot be placed under failover protection: only Slaves can',
    );
  }
  if (isProtected && role === 'failover') {
    throw new SiteFileError(
      [...path, 'protected'],
      'a standby failover server cannot be protected: only Slaves can',
    );
  }
  const cameras = list(server.cameras, [...path, 'cameras']).map((raw, index) => {
    const cameraPath = [...path, 'cameras', index];
    const camera = object(raw, cameraPath);
    onlyKeys(camera, ['id', 'name', 'kind', 'address'], cameraPath);
    const cameraId = name(camera.id, [...cameraPath, 'id']);
    const kind = (camera.kind ?? 'ip') as CameraKind;
    if (!KINDS.includes(kind)) throw new SiteFileError([...cameraPath, 'kind'], 'must be ip or analog');
    const address =
      camera.address === undefined ? null : name(camera.address, [...cameraPath, 'address'], 253);
    return {
      id: cameraId,
      name: camera.name === undefined ? cameraId : name(camera.name, [...cameraPath, 'name']),
      kind,
      address,
    };
  });
  const plugins = list(server.plugins, [...path, 'plugins']).map((plugin, index) =>
    name(plugin, [...path, 'plugins', index]),
  );
  return {
    id,
    hostname: name(server.hostname ?? id, [...path, 'hostname'], 253),
    role,
    drives,
    protected: isProtected,
    timeoutMs: parseTimeout(server.failoverTimeout, [...path, 'failoverTimeout']),
    liveness: parseLiveness(server.liveness, [...path, 'liveness']),
    cameras,
    plugins: [...new Set(plugins)],
  };
};

/** Checks a parsed site file; throws SiteFileError naming the first bad field. */
export const parseSite = (raw: unknown): Site => {
  const site = object(raw, []);
  onlyKeys(site, ['servers'], []);
  const servers = list(site.servers, ['servers']).map((server, index) =>
    parseServer(server, ['servers', index]),
  );
  const serverIndex = new Map<string, number>();
  const cameraIndex = new Map<string, string>();
  servers.forEach((server, index) => {
    if (serverIndex.has(server.id)) {
      throw new SiteFileError(
        ['servers', index, 'id'],
        `server id "${server.id}" is used twice (also servers[${serverIndex.get(server.id)}])`,
      );
    }
    serverIndex.set(server.id, index);
    server.cameras.forEach((camera, cameraIndexInServer) => {
      const other = cameraIndex.get(camera.id);
      if (other !== undefined) {
        throw new SiteFileError(
          ['servers', index, 'cameras', cameraIndexInServer, 'id'],
          `camera "${camera.id}" is bound to two servers (${other} and ${server.id}): a camera records on one server`,
        );
      }
      cameraIndex.set(camera.id, server.id);
    });
  });
  const masters = servers.filter((server) => server.role === 'master');
  if (masters.length > 1)
    throw new SiteFileError(['servers'], `a site has one Master, this file has ${masters.length}`);
  return { servers };
};
