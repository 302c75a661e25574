/**
 * Numbered SQL migrations (migrations/NNN_name.sql), each applied once in its own transaction.
 * An advisory lock makes concurrent start-ups (Master worker plus a second host) apply them one at a time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { checkOut, withTransaction } from './database';
import { projectRoot } from './paths';
import type { Logger } from './logger';

export const MIGRATIONS_DIR = join(projectRoot(), 'migrations');
const MIGRATION_FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;
/** Arbitrary constant, the same in every process of this project. */
const MIGRATION_LOCK_ID = 7_263_914_001;

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

export const migrate = async (db: Pool, logger: Logger, dir: string = MIGRATIONS_DIR): Promise<number> => {
  const migrations = readMigrations(dir);
  const client = await checkOut(db);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    // Only when missing: PostgreSQL checks the CREATE privilege even for IF NOT EXISTS, and the worker's
    // least-privilege role has none once the schema is in place.
    const { rows } = await client.query<{ present: boolean }>(
      "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
    );
    if (!rows[0]?.present) {
      await client.query(
        `CREATE TABLE schema_migrations (
           id integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
    }
    const applied = new Set(
      (await client.query<{ id: number }>('SELECT id FROM schema_migrations')).rows.map((row) => row.id),
    );
    let count = 0;
    for (const migration of migrations.filter((candidate) => !applied.has(candidate.id))) {
      await withTransaction(db, async (tx) => {
        await tx.query(migration.sql);
        await tx.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [
          migration.id,
          migration.name,
        ]);
      });
      logger.info({ migration: migration.name }, 'Migration applied');
      count += 1;
    }
    return count;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    client.checkIn();
  }
};
