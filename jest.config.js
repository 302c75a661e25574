/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Specs of the production stack itself run in `npm run test:production-stack`, which starts it.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/production-stack/'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/test/support/quiet-runtime.ts'],
  testTimeout: 120_000,
  maxWorkers: 2,
};
