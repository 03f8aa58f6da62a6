/**
 * Shared steps of the refresh end-to-end tests (test/e2e/refresh-*.test.ts): sign in through the real daemon,
 * the test IdP and headless Chromium; watch events, logs and the IdP's token endpoint.
 */
import keytar from 'keytar';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { connect, type BrokerClient, type BrokerEvent, type ProfileStatus } from '../../client/index.js';
import { launchBrowserUser, type BrowserUser } from './browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from './broker.js';
import { waitFor } from './daemon.js';
import { startTestIdp, type TestIdp, type TestIdpOptions } from './idp.js';

export { waitFor } from './daemon.js';

/** The world a refresh end-to-end file runs in: one IdP and one browser for the file, daemons per test. */
export interface RefreshWorld {
  /** The test IdP (started before the file's tests). */
  readonly idp: TestIdp;
  /** Headless Chromium playing the user (started before the file's tests). */
  readonly user: BrowserUser;
  /** Runs `cleanup` after the current test, last registered first; its failure is ignored. */
  defer(cleanup: () => Promise<unknown>): void;
  /**
   * A daemon with profile "main" on the IdP (`profile` merged into it), an app connected to it, signed in through
   * the browser; both are stopped after the test.
   */
  signedIn(
    profile?: Record<string, unknown>,
    options?: { readonly broker?: Parameters<typeof startBroker>[1]; readonly client?: Parameters<typeof client>[1] },
  ): Promise<{ harness: BrokerHarness; app: BrokerClient; sawLoginForm: boolean }>;
}

/**
 * Registers the hooks of a refresh end-to-end file: starts the IdP and the browser before its tests, runs each test's
 * deferred clean-ups after it (then `afterCleanups`), and closes the browser and the IdP after the file. Hooks the
 * file registers after this call run before these ones (vitest runs "after" hooks as a stack).
 */
export function useRefreshWorld(idpOptions: TestIdpOptions, hooks: { readonly afterCleanups?: () => Promise<void> } = {}): RefreshWorld {
  let idp: TestIdp | undefined;
  let user: BrowserUser | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    idp = await startTestIdp(idpOptions);
    user = await launchBrowserUser();
  });
  afterAll(async () => {
    await user?.close();
    await idp?.close();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    await hooks.afterCleanups?.();
  });
  const world: RefreshWorld = {
    get idp() {
      if (idp === undefined) throw new Error('the test IdP is not started yet (use it inside a test or hook)');
      return idp;
    },
    get user() {
      if (user === undefined) throw new Error('the browser is not started yet (use it inside a test or hook)');
      return user;
    },
    defer: (cleanup) => void cleanups.push(cleanup),
    async signedIn(profile = {}, options = {}) {
      const harness = await startRefreshBroker(world.idp, profile, options.broker);
      world.defer(() => harness.stop());
      const app = await client(harness, options.client);
      world.defer(() => app.close());
      const { sawLoginForm } = await signIn(harness, world.user, app);
      return { harness, app, sawLoginForm };
    },
  };
  return world;
}

/** A daemon with one profile "main" on the test IdP. */
export function startRefreshBroker(
  idp: TestIdp,
  profile: Record<string, unknown> = {},
  options: Parameters<typeof startBroker>[1] = {},
): Promise<BrokerHarness> {
  return startBroker({ profiles: { main: idpProfile(idp, profile) } }, options);
}

export function client(harness: BrokerHarness, options: { timeoutMs?: number; clientName?: string } = {}): Promise<BrokerClient> {
  return connect({ socketPath: harness.daemon.socketPath, ...options });
}

/**
 * Signs in as a user would: the daemon opens the (fake) browser, Chromium signs in at the IdP, the custom-scheme
 * redirect is handed back (as `tokenbroker callback` would). Returns whether the login form was shown.
 */
export async function signIn(harness: BrokerHarness, user: BrowserUser, app: BrokerClient): Promise<{ sawLoginForm: boolean }> {
  const login = app.login({ timeoutMs: 60_000 });
  const url = await harness.nextBrowserUrl();
  const { redirectUrl, sawLoginForm } = await user.signIn(url);
  await app.callback(redirectUrl);
  await login;
  return { sawLoginForm };
}

/** Finishes a sign-in the daemon started by itself (re-login): the next browser URL, Chromium, the redirect back. */
export async function completeBrowserSignIn(
  harness: BrokerHarness,
  user: BrowserUser,
  app: BrokerClient,
  url?: string,
): Promise<{ url: string; sawLoginForm: boolean }> {
  const authorizeUrl = url ?? (await harness.nextBrowserUrl());
  const { redirectUrl, sawLoginForm } = await user.signIn(authorizeUrl);
  await app.callback(redirectUrl);
  return { url: authorizeUrl, sawLoginForm };
}

/** The keychain entry of a profile, as the daemon stored it (JSON with accessToken, refreshToken, …). */
export async function storedEntry(harness: BrokerHarness, profile = 'main'): Promise<Record<string, unknown> | undefined> {
  const raw = await keytar.getPassword(harness.keychainService, profile);
  return raw === null ? undefined : (JSON.parse(raw) as Record<string, unknown>);
}

export async function profileStatus(app: BrokerClient, profile = 'main'): Promise<ProfileStatus> {
  return (await app.status()).profiles.find((p) => p.name === profile)!;
}

/** Refresh grants (POST to the token endpoint with grant_type=refresh_token) are counted by the IdP; this gives their times. */
export function tokenEndpointRequests(idp: TestIdp, since = 0): Array<{ at: number; status?: number }> {
  const tokenPath = new URL(idp.endpoints.token).pathname;
  return idp.requests.filter((r) => r.method === 'POST' && r.path === tokenPath && r.at >= since);
}

/** Collects a client's events. */
export async function recordEvents(app: BrokerClient): Promise<BrokerEvent[]> {
  const events: BrokerEvent[] = [];
  await app.subscribe((event) => events.push(event));
  return events;
}

export async function waitForEvent(events: BrokerEvent[], name: string, count = 1, timeoutMs = 15_000): Promise<BrokerEvent> {
  await waitFor(
    () => events.filter((e) => e.event === name).length >= count,
    timeoutMs,
    () => `${count}× ${name}; got ${events.map((e) => e.event).join(', ')}`,
  );
  return events.filter((e) => e.event === name)[count - 1]!;
}

/** Waits for a daemon log line matching `match` (after the first `skip` such lines). */
export async function waitForLog(
  harness: BrokerHarness,
  match: (line: Record<string, unknown>) => boolean,
  timeoutMs = 15_000,
  skip = 0,
): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await waitFor(
    () => {
      found = harness.daemon.logs().filter(match)[skip];
      return found !== undefined;
    },
    timeoutMs,
    () => `a log line; the daemon wrote:\n${harness.daemon.output().slice(-3000)}`,
  );
  return found!;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Requests per minute in consecutive windows of `windowMs` from `from` to `to`. */
export function ratePerMinute(times: readonly number[], from: number, to: number, windowMs: number): number[] {
  const rates: number[] = [];
  for (let start = from; start + windowMs <= to + 1; start += windowMs) {
    const n = times.filter((t) => t >= start && t < start + windowMs).length;
    rates.push(Math.round((n * 60_000) / windowMs));
  }
  return rates;
}
