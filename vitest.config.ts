import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // koffi and fds are per process: forks keep each test file's native state apart.
    pool: 'forks',
    // A synchronous child that never exits fails its test instead of hanging the run.
    setupFiles: ['test/setup/child-timeout.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Logs of expected failures would bury the report; LOG_LEVEL=debug brings them back.
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
  },
});
