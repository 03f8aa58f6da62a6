/**
 * The test suite in three layers, one vitest project each (`npx vitest run --project unit`):
 * - unit: in-process files, no daemon, browser, IdP process or keychain to start — seconds; also what
 *   StrykerJS runs once per mutant (vitest.unit.config.ts);
 * - e2e: the built daemon, the real IdP, Chromium, gnome-keyring and the programs it integrates with;
 * - hardening: attacker and fault tests (hostile clients, other users, crashes, provider faults, clock skew).
 */
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

const timeouts = { testTimeout: 30_000, hookTimeout: 60_000 } as const;

export const unitProject = {
  test: { name: 'unit', include: ['test/unit/**/*.test.ts'], ...timeouts },
} satisfies TestProjectInlineConfiguration;

/** A layer that runs dist/: rebuilt first when it is older than the sources (test/support/global-setup.ts). */
const builtLayer = (name: string): TestProjectInlineConfiguration => ({
  test: { name, include: [`test/${name}/**/*.test.ts`], globalSetup: ['test/support/global-setup.ts'], ...timeouts },
});

export default defineConfig({
  test: {
    projects: [unitProject, builtLayer('e2e'), builtLayer('hardening')],
    // End-to-end files start daemons, an IdP and a browser: two at a time fit a 2-core machine.
    maxWorkers: 2,
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
