/**
 * The worker's connections plan every statement once for any values (`plans: 'generic'` in
 * infra/database.ts), prepared or not. A statement whose filter depends on whether a value was given
 * (`$1 IS NULL OR id = $1`) is then planned for both cases at once, and reads the whole table for one row:
 * at 4,000 Slaves the VMS simulator read every server's disks for each single server's status, and the
 * detector read every server for each monitor started. Such a statement is written as two.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../infra/paths';

/** A parameter, with or without a cast (`$2`, `$1::text`, `$1::text[]`). */
const PARAMETER = String.raw`\$\d+(?:::\w+(?:\[\])?)?`;
const OPTIONAL_FILTER = new RegExp(
  String.raw`${PARAMETER}\s+IS\s+NULL\s+OR\b|\bOR\s+${PARAMETER}\s+IS\s+NULL`,
  'gi',
);

/** Each optional filter of a source, by line. */
const optionalFilters = (fileName: string, source: string): string[] =>
  [...source.matchAll(OPTIONAL_FILTER)].map(
    (match) => `${fileName}:${source.slice(0, match.index).split('\n').length}: ${match[0]}`,
  );

test('the check itself spots a filter that a missing value turns off', () => {
  const sample = [
    "db.query('SELECT id FROM servers WHERE $1::text IS NULL OR id = $1', [id ?? null]);",
    'db.query(`SELECT id FROM servers WHERE role = $1 AND ($2::text[] is null or id = ANY($2))`);',
    "db.query('SELECT id FROM servers WHERE id = $1 OR $1 IS NULL');",
    // A value chosen by whether a parameter is null is not a filter.
    "db.query('UPDATE alerts SET at = CASE WHEN $1::text IS NULL THEN now() END');",
    "db.query('SELECT id FROM servers WHERE replaces_server_id IS NULL OR id = $1');",
  ].join('\n');
  expect(optionalFilters('sample.ts', sample)).toEqual([
    'sample.ts:1: $1::text IS NULL OR',
    'sample.ts:2: $2::text[] is null or',
    'sample.ts:3: OR $1 IS NULL',
  ]);
});

test('no statement of the product has a filter that a missing value turns off', () => {
  const dirs = ['activities', 'app', 'bench', 'client', 'failover', 'infra', 'liveness', 'store', 'vms'];
  const files = dirs.flatMap((dir) =>
    readdirSync(join(projectRoot(), dir), { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts'))
      .map((name) => join(dir, name)),
  );
  expect(files.length).toBeGreaterThan(50);
  const found = files.flatMap((path) =>
    optionalFilters(path, readFileSync(join(projectRoot(), path), 'utf8')),
  );
  expect(found).toEqual([]);
});
