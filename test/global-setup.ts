/**
 * Once per test run: checks that the Temporal dev server and PostgreSQL answer, bundles the workflow code
 * once for every test file, and prepares a migrated template database that each test copies.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Pool } from 'pg';
import { createLogger } from '../infra/logger';
import { migrate } from '../infra/migrate';
import { ensureSearchAttributes } from '../infra/search-attributes';
import { connectClient } from '../infra/temporal';
import { VmsSimulator } from '../vms/simulator';
import {
  TEST_DATA_DIR,
  WORKFLOW_BUNDLE_PATH,
  temporalAddress,
  temporalConfig,
  temporalNamespace,
  testServerUrl,
} from './support/environment';

export default async function globalSetup(): Promise<void> {
  const logger = createLogger({ log: { level: 'warn', format: 'json' } });
  mkdirSync(TEST_DATA_DIR, { recursive: true });

  const client = await connectClient(temporalConfig()).catch((error: unknown) => {
    throw new Error(
      `The Temporal server at ${temporalAddress()} does not answer (${String(error)}). Run the tests with "npm test", which starts it.`,
    );
  });
  await ensureSearchAttributes(client.connection, temporalNamespace(), logger);
  await client.connection.close();

  const admin = new Pool({ connectionString: testServerUrl('postgres'), max: 1 });
  const template = `vms_test_template_${process.pid}`;
  process.env.VMS_TEST_TEMPLATE_DATABASE = template;
  await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  const templatePool = new Pool({ connectionString: testServerUrl(template), max: 2 });
  await migrate(templatePool, logger);
  await new VmsSimulator(templatePool).install();
  await templatePool.end();

  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: undefined,
  });
  writeFileSync(WORKFLOW_BUNDLE_PATH, code);
}
