// @ts-check
/**
 * Mutation testing (StrykerJS): deliberate bugs are put into the units that carry the broker's
 * guarantees, one at a time, and the unit layer (test/unit/, through vitest.unit.config.ts) must fail on each.
 * `npm run mutation` runs it all; `npm run mutation:ci` the fast subset CI gates on
 * (stryker.ci.config.mjs). Equivalent survivors are listed and explained in docs/mutation.md.
 */

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.unit.config.ts' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: ['proto/**/*.ts', 'daemon/oauth/**/*.ts', 'daemon/session/**/*.ts', 'daemon/ipc/socket-dir.ts', 'daemon/ipc/ipc-server.ts', 'client/**/*.ts'],
  coverageAnalysis: 'perTest',
  // launchd/ and systemd/ stay: unit tests render the service templates from them.
  ignorePatterns: ['dist', 'bench', 'reports'],
  concurrency: Number(process.env['STRYKER_CONCURRENCY'] ?? 2),
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/all.html' },
  jsonReporter: { fileName: 'reports/mutation/all.json' },
  thresholds: { high: 90, low: 75, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
