/**
 * The layers, read from the import graph of the sources: no entry point (client/, workers/, bench/) imports
 * another, the CLI and the heartbeat agent never load the worker SDK, workflows import only the workflow SDK
 * and domain code at run time, and no layer imports one above it.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { projectRoot } from '../infra/paths';

const ROOT = projectRoot();

/** The layers, lowest first: a folder imports only the ones before it (types included). */
const LAYERS = [
  'domain',
  'infra',
  'store',
  'vms',
  'failover',
  'activities',
  'workflows',
  'liveness',
  'app',
  'workers',
  'client',
  'bench',
];
/** They import the layers, never each other. */
const ENTRY_POINTS = ['workers', 'client', 'bench'];

const mayImport = (folder: string, target: string): boolean =>
  folder === target ||
  (LAYERS.indexOf(target) < LAYERS.indexOf(folder) &&
    !(ENTRY_POINTS.includes(folder) && ENTRY_POINTS.includes(target)));

interface Import {
  /** A source file relative to the root without its extension (`client/cli`), or a package name. */
  target: string;
  /** `import type`: erased from the JavaScript, nothing loaded at run time. */
  typeOnly: boolean;
}

const packageName = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

const resolveImport = (fromFile: string, specifier: string): string => {
  if (!specifier.startsWith('.')) return packageName(specifier);
  const base = resolve(dirname(fromFile), specifier);
  const file = [`${base}.ts`, join(base, 'index.ts')].find((candidate) => existsSync(candidate));
  if (file === undefined) throw new Error(`${relative(ROOT, fromFile)}: cannot resolve ${specifier}`);
  return relative(ROOT, file).replace(/\.ts$/, '');
};

const importsOf = (module: string): Import[] => {
  const file = join(ROOT, `${module}.ts`);
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
  return source.statements.flatMap((statement): Import[] => {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      return [
        {
          target: resolveImport(file, statement.moduleSpecifier.text),
          typeOnly: statement.importClause?.isTypeOnly ?? false,
        },
      ];
    }
    if (
      ts.isExportDeclaration(statement) &&
      statement.moduleSpecifier !== undefined &&
      ts.isStringLiteral(statement.moduleSpecifier)
    ) {
      return [
        { target: resolveImport(file, statement.moduleSpecifier.text), typeOnly: statement.isTypeOnly },
      ];
    }
    return [];
  });
};

const isSource = (target: string): boolean => existsSync(join(ROOT, `${target}.ts`));
const folderOf = (module: string): string => module.split('/')[0] as string;

const modulesIn = (folder: string): string[] =>
  readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => `${folder}/${file.replace(/\.ts$/, '')}`);

/** Every module and package `entry` loads when it runs: its imports, theirs, and so on, types left out. */
const loadedBy = (entry: string): Set<string> => {
  const loaded = new Set<string>([entry]);
  const pending = [entry];
  for (let module = pending.pop(); module !== undefined; module = pending.pop()) {
    for (const { target, typeOnly } of importsOf(module)) {
      if (typeOnly || loaded.has(target)) continue;
      loaded.add(target);
      if (isSource(target)) pending.push(target);
    }
  }
  return loaded;
};

test('no layer imports one above it, and no entry point imports another', () => {
  const violations = LAYERS.flatMap((folder) =>
    modulesIn(folder).flatMap((module) =>
      importsOf(module)
        .filter(({ target }) => isSource(target) && !mayImport(folder, folderOf(target)))
        .map(({ target }) => `${module} imports ${target}`),
    ),
  );
  expect(violations).toEqual([]);
});

test('the CLI and the heartbeat agent load neither the worker SDK nor the worker service', () => {
  const loaded = [...loadedBy('client/cli')];
  expect(loaded.filter((module) => module === '@temporalio/worker' || module.startsWith('workers/'))).toEqual(
    [],
  );
  // The failover operations they share with the worker come from the application layer.
  expect(loaded).toContain('app/fleet');
});

test('workflows load only the workflow SDK and domain code; activities only as types', () => {
  const loaded = [...loadedBy('workflows/index')];
  expect(
    loaded.filter(
      (module) =>
        !['workflows', 'domain'].includes(folderOf(module)) &&
        !['@temporalio/workflow', '@temporalio/common'].includes(module),
    ),
  ).toEqual([]);
  const activityImports = modulesIn('workflows').flatMap((module) =>
    importsOf(module).filter(({ target }) => folderOf(target) === 'activities'),
  );
  expect(activityImports.length).toBeGreaterThan(0);
  expect(activityImports.filter(({ typeOnly }) => !typeOnly)).toEqual([]);
});
