/**
 * Numbered SQL migrations (NNN_name.sql in a directory), each applied once in its own transaction and
 * recorded in a migrations table. The site's are in migrations/; the VMS simulator has its own set, table
 * and lock (migrations/vms_sim/). An advisory lock makes concurrent start-ups (Master worker plus a second
 * host) apply a set one at a time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { checkOut, withTransaction } from './database';
import { projectRoot } from './paths';
import type { Logger } from './logger';

export const MIGRATIONS_DIR = join(projectRoot(), 'migrations');
const MIGRATION_FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface MigrationSet {
  dir: string;
  /** Where the applied migrations are recorded: `name` or `schema.name` (the schema is created with it). */
  table: string;
  /** Advisory lock id, the same in every process of this project and different for each set. */
  lockId: number;
}

/** The site's schema (servers, cameras, failovers, ...). */
export const SITE_MIGRATIONS: MigrationSet = {
  dir: MIGRATIONS_DIR,
  table: 'schema_migrations',
  lockId: 7_263_914_001,
};

interface Migration {
  id: number;
  name: string;
  sql: string;
}

const readMigrations = (dir: string): Migration[] =>
  readdirSync(dir)
    .filter((file) => MIGRATION_FILE.test(file))
    .sort()
    .map((file) => ({
      id: Number(file.slice(0, 3)),
      name: file,
      sql: readFileSync(join(dir, file), 'utf8'),
    }));

/** The table name quoted for SQL; names come from code, never from input, and are checked all the same. */
const qualifiedTable = (table: string): { schema?: string; quoted: string } => {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((part) => /^[a-z_][a-z0-9_]*$/.test(part))) {
    throw new Error(`migrations table "${table}" must be name or schema.name in lower case`);
  }
  return {
    ...(parts.length === 2 && { schema: `"${parts[0]}"` }),
    quoted: parts.map((part) => `"${part}"`).join('.'),
  };
};

export const migrate = async (
  db: Pool,
  logger: Logger,
  set: MigrationSet = SITE_MIGRATIONS,
): Promise<number> => {
  const migrations = readMigrations(set.dir);
  const table = qualifiedTable(set.table);
  const client = await checkOut(db);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [set.lockId]);
    // Only when missing: PostgreSQL checks the CREATE privilege even for IF NOT EXISTS, and the worker's
    // least-privilege role has none once the schema is in place.
    const { rows } = await client.query<{ present: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS present',
      [set.table],
    );
    if (!rows[0]?.present) {
      if (table.schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${table.schema}`);
      await client.query(
        `CREATE TABLE ${table.quoted} (
           id integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
    }
    const applied = new Set(
      (await client.query<{ id: number }>(`SELECT id FROM ${table.quoted}`)).rows.map((row) => row.id),
    );
    let count = 0;
    for (const migration of migrations.filter((candidate) => !applied.has(candidate.id))) {
      await withTransaction(db, async (tx) => {
        await tx.query(migration.sql);
        await tx.query(`INSERT INTO ${table.quoted} (id, name) VALUES ($1, $2)`, [
          migration.id,
          migration.name,
        ]);
      });
      logger.info({ migration: migration.name, table: set.table }, 'Migration applied');
      count += 1;
    }
    return count;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [set.lockId]).catch(() => undefined);
    client.checkIn();
  }
};
