import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests fork real node processes; keep parallelism modest on 2-core machines.
    pool: 'forks',
    maxWorkers: 2,
    // Type tests (expectTypeOf) live in *.test-d.ts; type errors elsewhere are the job of
    // `npm run typecheck`, which CI runs before the tests.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], ignoreSourceErrors: true },
  },
});
