import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/buildIfStale.ts'],
    // Learners show progress by default; the suite turns that off once (see the file).
    setupFiles: ['test/support/quietProgress.ts'],
    // tfjs kernels are CPU-bound; two workers match the two cores CI has.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
