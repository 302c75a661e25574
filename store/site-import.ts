/**
 * Imports a site description in one transaction: all of it or nothing. Adds servers, drives, cameras and
 * plugins and updates descriptive fields; it never undoes a failover: a file that disagrees with what a
 * failover changed (a promoted server's role, a moved camera) is refused, naming the field.
 */
import type { Pool, PoolClient } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import type { Site, SiteServer } from '../domain/site-file';
import { SiteFileError } from '../domain/site-file';
import type { Folder, ServerRole } from '../domain/site';
import { withTransaction } from '../infra/database';

export interface ImportSummary {
  serversCreated: string[];
  serversUpdated: string[];
  camerasCreated: number;
  newStandbys: string[];
  protectedSlaves: string[];
}

const INITIAL_STATUS: Record<ServerRole, string> = { master: 'active', slave: 'active', failover: 'standby' };

/** The stored site refuses a field of the file; the CLI shows the field's line from `details.path`. */
const conflict = (path: (string | number)[], problem: string): DomainError =>
  new DomainError(ErrorType.InvalidSiteFile, new SiteFileError(path, problem).message, { path });

const importServer = async (
  tx: PoolClient,
  server: SiteServer,
  index: number,
  summary: ImportSummary,
): Promise<void> => {
  const { rows } = await tx.query<{ role: ServerRole; folder: Folder }>(
    'SELECT role, folder FROM servers WHERE id = $1 FOR UPDATE',
    [server.id],
  );
  const existing = rows[0];
  if (existing && existing.role !== server.role) {
    throw conflict(
      ['servers', index, 'role'],
      `"${server.id}" is now a ${existing.role} in ${existing.folder} (changed by a failover or restore); the file says ${server.role}`,
    );
  }
  const protectable = server.role === 'slave';
  if (existing) {
    await tx.query(
      `UPDATE servers SET hostname = $2, protected = $3, failover_timeout_ms = $4, liveness_source = $5, updated_at = now()
        WHERE id = $1`,
      [server.id, server.hostname, protectable && server.protected, server.timeoutMs, server.liveness],
    );
    summary.serversUpdated.push(server.id);
  } else {
    await tx.query(
      `INSERT INTO servers (id, hostname, role, status, protected, failover_timeout_ms, liveness_source)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        server.id,
        server.hostname,
        server.role,
        INITIAL_STATUS[server.role],
        protectable && server.protected,
        server.timeoutMs,
        server.liveness,
      ],
    );
    summary.serversCreated.push(server.id);
    if (server.role === 'failover') summary.newStandbys.push(server.id);
  }
  if (protectable && server.protected) summary.protectedSlaves.push(server.id);
  await tx.query(
    `INSERT INTO drives (server_id, letter, material) SELECT $1, unnest($2::text[]), unnest($3::boolean[])
     ON CONFLICT (server_id, letter) DO UPDATE SET material = excluded.material`,
    [server.id, server.drives.map((drive) => drive.letter), server.drives.map((drive) => drive.material)],
  );
  for (const [cameraIndex, camera] of server.cameras.entries()) {
    const bound = await tx.query<{ server_id: string }>(
      'SELECT server_id FROM cameras WHERE id = $1 FOR UPDATE',
      [camera.id],
    );
    const boundTo = bound.rows[0]?.server_id;
    if (boundTo !== undefined && boundTo !== server.id) {
      throw conflict(
        ['servers', index, 'cameras', cameraIndex, 'id'],
        `camera "${camera.id}" records on "${boundTo}" now (moved by a failover?); the file binds it to "${server.id}"`,
      );
    }
    await tx.query(
      `INSERT INTO cameras (id, name, kind, server_id, address) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, address = excluded.address`,
      [camera.id, camera.name, camera.kind, server.id, camera.address],
    );
    if (boundTo === undefined) summary.camerasCreated += 1;
  }
  await tx.query(
    'INSERT INTO plugins (server_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
    [server.id, server.plugins],
  );
};

export const importSite = (db: Pool, site: Site): Promise<ImportSummary> =>
  withTransaction(db, async (tx) => {
    const summary: ImportSummary = {
      serversCreated: [],
      serversUpdated: [],
      camerasCreated: 0,
      newStandbys: [],
      protectedSlaves: [],
    };
    for (const [index, server] of site.servers.entries()) {
      try {
        await importServer(tx, server, index, summary);
      } catch (error) {
        if ((error as { code?: string }).code === '23505' && server.role === 'master') {
          throw conflict(['servers', index, 'role'], 'the site already has a Master: a site has exactly one');
        }
        throw error;
      }
    }
    return summary;
  });
