import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Rebuilds dist/ when it is older than the sources: the end-to-end tests run the built daemon.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // End-to-end files start daemons, an IdP and a browser: two at a time fit a 2-core machine.
    maxWorkers: 2,
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
