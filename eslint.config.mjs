import tseslint from 'typescript-eslint';

const workflowSandboxBans = {
  paths: ['pg', 'pino', 'pino-pretty', '@temporalio/activity', '@temporalio/client', '@temporalio/worker'],
  patterns: [
    { group: ['node:*'], message: 'Workflow code runs in the deterministic sandbox: no Node built-ins.' },
    {
      group: ['../infra/*', '../vms/*', '../activities/*'],
      message: 'Workflows import only @temporalio/workflow, domain code and types.',
    },
  ],
};

const nodeBuiltins = [
  'fs',
  'path',
  'os',
  'child_process',
  'net',
  'http',
  'https',
  'crypto',
  'util',
  'process',
  'events',
  'stream',
  'timers',
  'worker_threads',
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.tools/**',
      '.data/**',
      'coverage/**',
      '*.config.js',
      '*.config.mjs',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: 'error',
    },
  },
  {
    files: ['workflows/**/*.ts', 'domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { ...workflowSandboxBans, paths: [...workflowSandboxBans.paths, ...nodeBuiltins] },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    // expect.any() and expect.stringContaining() are typed any by jest.
    rules: { '@typescript-eslint/unbound-method': 'off', '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
);
