/**
 * Permanent refresh failures, end to end: the refresh token is revoked at the IdP (as an admin would), the
 * next refresh gets invalid_grant. The session ends (loginRequired, keychain cleared), nothing retries, and
 * the profile's policy decides what the browser shows next — played by headless Chromium, whose provider
 * session cookie is what "relogin keeps the provider session" is about.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { completeBrowserSignIn, profileStatus, recordEvents, sleep, storedEntry, useRefreshWorld, waitFor, waitForEvent } from '../support/refresh-e2e.js';

const TTL_SECONDS = 5;

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS }, { afterCleanups: () => world.user.clearSession() });

/** Signs in (the login form is shown: a fresh browser), then revokes the refresh token at the IdP and waits for the daemon to notice. */
async function signInThenRevoke(profile: Record<string, unknown>) {
  const { harness, app, ...first } = await world.signedIn(profile);
  expect(first.sawLoginForm).toBe(true);
  const events = await recordEvents(app);
  const refreshToken = (await storedEntry(harness))!['refreshToken'] as string;
  const grantsBefore = world.idp.counts.refreshToken;
  await world.idp.revokeRefreshToken(refreshToken);
  const required = await waitForEvent(events, 'loginRequired', 1, 10_000);
  expect(required.data).toEqual({ profile: 'main', reason: 'invalid_grant' });
  expect(world.idp.counts.refreshToken - grantsBefore).toBe(1); // the one that found out
  expect(await storedEntry(harness)).toBeUndefined();
  return { harness, app, events, grantsBefore };
}

function browserUrlsOpened(harness: BrokerHarness): string[] {
  const file = path.join(harness.dir, 'browser.log');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

/** No refresh grant for `ms` while an app keeps asking. */
async function expectNoRetries(app: BrokerClient, grantsAt: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await expect(app.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    await sleep(200);
  }
  expect(world.idp.counts.refreshToken).toBe(grantsAt);
}

describe('a revoked refresh token', () => {
  it('policy relogin (default), on demand: loginRequired, no retries, the next token.get opens the authorize URL and the live provider session signs straight back in', async () => {
    const { harness, app, grantsBefore } = await signInThenRevoke({});
    const status = await profileStatus(app);
    expect(status).toMatchObject({ state: 'login-required', reason: 'invalid_grant', onRefreshFailure: 'relogin' });
    expect(browserUrlsOpened(harness)).toHaveLength(1); // only the first sign-in so far: no app has asked

    await expect(app.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED', message: expect.stringMatching(/browser window was opened/) as unknown });
    const url = await harness.nextBrowserUrl();
    expect(new URL(url).searchParams.get('prompt')).toBeNull();
    await expectNoRetries(app, grantsBefore + 1, 2_500);
    expect(browserUrlsOpened(harness)).toHaveLength(2); // once per failure, however often apps ask

    const authorizationCodes = world.idp.counts.authorizationCode;
    const { sawLoginForm } = await completeBrowserSignIn(harness, world.user, app, url);
    expect(sawLoginForm).toBe(false);
    expect(world.idp.counts.authorizationCode).toBe(authorizationCodes + 1);
    const token = await app.getToken();
    expect(await world.idp.introspect(token.accessToken)).toMatchObject({ active: true, sub: 'alice' });
    expect(await profileStatus(app)).toMatchObject({ state: 'active' });
    expect(world.idp.counts.revocation).toBe(0);
  });

  it('policy logout, on demand: revoked at once; on the next token.get the provider logout page, then a sign-in that asks for credentials', async () => {
    const revocations = world.idp.counts.revocation;
    const { harness, app, grantsBefore } = await signInThenRevoke({ onRefreshFailure: 'logout' });
    // An app reacting to the event at once: the logout page must already be pending.
    await expect(app.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    await waitFor(() => world.idp.counts.revocation === revocations + 1, 5_000); // the full logout flow's RFC 7009 step
    // Two pages: the provider's logout page and the sign-in (opened back to back; their order in the
    // browser is up to the OS). The user confirms the logout first.
    const opened = [await harness.nextBrowserUrl(), await harness.nextBrowserUrl()];
    const logoutUrl = opened.find((u) => new URL(u).pathname === new URL(world.idp.endpoints.endSession).pathname)!;
    const authorizeUrl = opened.find((u) => new URL(u).pathname === new URL(world.idp.endpoints.authorization).pathname)!;
    expect(logoutUrl).toBeDefined();
    expect(authorizeUrl).toBeDefined();
    const { redirectUrl } = await world.user.signOut(logoutUrl);
    expect(redirectUrl).toMatch(/^com\.example\.broker:\/logged-out/);
    expect(await app.callback(redirectUrl)).toMatchObject({ kind: 'logout' });

    expect(new URL(authorizeUrl).searchParams.get('prompt')).toBe('login');
    await expectNoRetries(app, grantsBefore + 1, 1_000);
    const { sawLoginForm } = await completeBrowserSignIn(harness, world.user, app, authorizeUrl);
    expect(sawLoginForm).toBe(true);
    expect(await profileStatus(app)).toMatchObject({ state: 'active' });
  });

  it('reloginBrowser immediately: the browser opens at the failure, with no app asking', async () => {
    const { harness, app, grantsBefore } = await signInThenRevoke({ reloginBrowser: 'immediately' });
    const url = await harness.nextBrowserUrl(5_000);
    expect(new URL(url).pathname).toBe(new URL(world.idp.endpoints.authorization).pathname);
    await expectNoRetries(app, grantsBefore + 1, 1_000);
    expect(browserUrlsOpened(harness)).toHaveLength(2);
    const { sawLoginForm } = await completeBrowserSignIn(harness, world.user, app, url);
    expect(sawLoginForm).toBe(false);
    expect(await world.idp.introspect((await app.getToken()).accessToken)).toMatchObject({ active: true });
  });
});
