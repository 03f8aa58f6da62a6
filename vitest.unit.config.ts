/**
 * The unit layer: test files that run in-process, with no daemon, browser or IdP process to start.
 * Fast enough to be run once per mutant by StrykerJS (stryker.config.mjs). Keep the list here only.
 */
import { defineConfig } from 'vitest/config';

export const unitTestFiles: readonly string[] = [
  'test/config.test.ts',
  'test/loopback-listener.test.ts',
  'test/oauth-authorization-request.test.ts',
  'test/oauth-callback.test.ts',
  'test/oauth-logout.test.ts',
  'test/oauth-metadata.test.ts',
  'test/oauth-provider.test.ts', // oidc-provider in-process, sign-in by fetch
  'test/oauth-token-endpoint.test.ts',
  'test/protocol.test.ts',
  'test/session-failure.test.ts',
  'test/session-login-nonce.test.ts',
  'test/session-refresh.test.ts',
  'test/session-schedule.test.ts',
  'test/session-single-flight.test.ts',
  'test/socket-dir.test.ts',
];

export default defineConfig({
  test: {
    include: [...unitTestFiles],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
