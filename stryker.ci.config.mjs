// @ts-check
/**
 * The mutation subset CI runs (`npm run mutation:ci`): PKCE and the refresh schedule — units whose tests
 * are pure functions or run on fake timers, so it takes a few minutes on two cores (the redirect's checks
 * in oauth/callback.ts add 110 mutants and ten minutes: they are in `npm run mutation`). The build breaks below `thresholds.break`: the score measured when it
 * was set, minus a margin (docs/mutation.md).
 */
import base from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  mutate: ['daemon/oauth/pkce.ts', 'daemon/session/schedule.ts'],
  // Static mutants (module-level constants) re-run every test file: left to the full run.
  ignoreStatic: true,
  htmlReporter: { fileName: 'reports/mutation/ci.html' },
  jsonReporter: { fileName: 'reports/mutation/ci.json' },
  thresholds: { high: 95, low: 90, break: 90 },
};
