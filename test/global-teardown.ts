/** Once per test run, after every file: drops the run's template database. */
import { Pool } from 'pg';
import { templateDatabase, testServerUrl } from './support/environment';

export default async function globalTeardown(): Promise<void> {
  const admin = new Pool({ connectionString: testServerUrl('postgres'), max: 1 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDatabase()} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
