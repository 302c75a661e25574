/** Where the test run's shared resources live; written by global-setup, read by every test file. */
import { join } from 'node:path';
import { loadConfig } from '../../infra/config';
import type { TemporalConfig } from '../../infra/config';
import { projectRoot } from '../../infra/paths';

export const TEST_DATA_DIR = join(projectRoot(), '.data', 'test');
export const WORKFLOW_BUNDLE_PATH = join(TEST_DATA_DIR, 'workflow-bundle.js');
/**
 * The migrated database each test copies; one per test run (global setup names it after its process), so
 * that two runs on one machine never drop each other's.
 */
export const templateDatabase = (): string => {
  const name = process.env.VMS_TEST_TEMPLATE_DATABASE;
  if (name === undefined)
    throw new Error('VMS_TEST_TEMPLATE_DATABASE is set by test/global-setup.ts: run jest');
  return name;
};

/** The server the tests use: DATABASE_URL's server when set, else the local one. */
export const testServerUrl = (database: string): string => {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${database}`;
  return url.toString();
};

export const temporalAddress = (): string => process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
export const temporalNamespace = (): string => process.env.TEMPORAL_NAMESPACE ?? 'default';
/** The Web UI of that server: `npm test` sets it for the dev server it starts for the run. */
export const temporalWebUi = (): string => process.env.TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233';
/** The cluster the tests use, read by the services' own loader: TEMPORAL_TLS_* apply to the tests too. */
export const temporalConfig = (): TemporalConfig => loadConfig().temporal;
