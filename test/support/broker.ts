/**
 * End-to-end harness: the real daemon process against a real OpenID provider, with a fake `BROWSER`
 * that records URLs (a headless Chromium then plays the user), and a keychain service of its own in
 * the real Secret Service.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FAKE_BROWSER, followLauncher, waitForBrowserUrl } from './browser-user.js';
import { startDaemon, tempDir, type DaemonProcess } from './daemon.js';
import type { TestIdp } from './idp.js';

export interface BrokerHarness {
  readonly daemon: DaemonProcess;
  readonly dir: string;
  /** The keychain service this daemon stores under. */
  readonly keychainService: string;
  readonly env: NodeJS.ProcessEnv;
  /**
   * The next URL the daemon opened in the "browser". A sign-in opens the broker's one-time launcher;
   * this follows it once, as the browser would, and returns where it leads (the authorization URL).
   */
  nextBrowserUrl(timeoutMs?: number): Promise<string>;
  /** How many URLs the daemon has opened in the "browser" so far (a negative check without a wait). */
  browserUrlsOpened(): number;
  /** URLs opened that no nextBrowserUrl() has taken yet. */
  browserUrlsPending(): number;
  /** Stops the daemon and starts a new one with the same config, socket and keychain. */
  restart(): Promise<DaemonProcess>;
  stop(): Promise<void>;
}

export type ProfileOverrides = Record<string, unknown>;

/** A profile config for the test IdP. */
export function idpProfile(idp: TestIdp, overrides: ProfileOverrides = {}): Record<string, unknown> {
  return {
    issuer: idp.issuer,
    clientId: idp.clientId,
    redirectUri: 'com.example.broker:/callback',
    postLogoutRedirectUri: 'com.example.broker:/logged-out',
    scopes: ['openid', 'offline_access', 'email'],
    loginTimeoutSeconds: 60,
    ...overrides,
  };
}

export async function startBroker(
  config: unknown,
  options: { readonly env?: NodeJS.ProcessEnv; readonly logLevel?: string; readonly keychainService?: string } = {},
): Promise<BrokerHarness> {
  const dir = tempDir('tb-e2e-');
  const browserLog = path.join(dir, 'browser.log');
  const keychainService = options.keychainService ?? `tokenbroker-test-${randomBytes(6).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    BROWSER: FAKE_BROWSER,
    TOKENBROKER_TEST_BROWSER_LOG: browserLog,
    TOKENBROKER_KEYCHAIN_SERVICE: keychainService,
    ...options.env,
  };
  let consumed = 0;
  let daemon = await startDaemon({ dir, config, env, logLevel: options.logLevel ?? 'debug' });
  const harness: BrokerHarness = {
    get daemon() {
      return daemon;
    },
    dir,
    keychainService,
    env: { ...env, TOKENBROKER_SOCKET: daemon.socketPath },
    // Counts a URL as consumed only once it arrived, so a negative check (rejects) does not skip the next one.
    nextBrowserUrl: async (timeoutMs = 15_000) => {
      const url = await waitForBrowserUrl(browserLog, { after: consumed, timeoutMs });
      consumed += 1;
      return followLauncher(url);
    },
    browserUrlsOpened: () => {
      try {
        return fs.readFileSync(browserLog, 'utf8').split('\n').length - 1;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw error;
      }
    },
    browserUrlsPending: () => harness.browserUrlsOpened() - consumed,
    restart: async () => {
      await daemon.stop();
      daemon = await startDaemon({ dir, socketPath: daemon.socketPath, config, env, logLevel: options.logLevel ?? 'debug' });
      return daemon;
    },
    stop: async () => {
      await daemon.stop('SIGKILL');
    },
  };
  return harness;
}
