/**
 * What some providers ask of the client, end to end (the real daemon, oidc-provider, headless Chromium):
 * - a client secret even for an installed app (Google's desktop clients), sent with client_secret_basic or
 *   client_secret_post, and kept out of logs and status all the same;
 * - a static `audience` on the authorization request (Auth0);
 * - `offline_access` with `prompt=consent` (OIDC Core §11) for a provider that issues a refresh token only then.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { runCli } from '../support/daemon.js';
import { startTestIdp, type TestIdp, type TestIdpOptions } from '../support/idp.js';
import { client, profileStatus, signIn, startRefreshBroker, storedEntry, useRefreshWorld } from '../support/refresh-e2e.js';

const SECRET = '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ial-but-secret';
const world = useRefreshWorld({ clientSecret: SECRET });

async function idpFor(options: TestIdpOptions): Promise<TestIdp> {
  const idp = await startTestIdp(options);
  world.defer(() => idp.close());
  return idp;
}

async function brokerAt(idp: TestIdp, profile: Record<string, unknown>): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  const harness = await startRefreshBroker(idp, profile, { logLevel: 'trace' });
  world.defer(() => harness.stop());
  const app = await client(harness);
  world.defer(() => app.close());
  return { harness, app };
}

/** Signs in, refreshes once, logs out; checks the provider honoured each step. */
async function fullCycle(idp: TestIdp, harness: BrokerHarness, app: BrokerClient): Promise<void> {
  await signIn(harness, world.user, app);
  const refreshToken = (await storedEntry(harness))!['refreshToken'] as string;
  const first = await app.getToken();
  const second = await app.getToken({ rejected: first.accessToken });
  expect(await idp.introspect(second.accessToken)).toMatchObject({ active: true });
  expect(await app.logout({ openBrowser: false })).toMatchObject({ revoked: true });
  expect(await idp.introspect(refreshToken)).toMatchObject({ active: false });
}

describe('a client secret for an installed app (Google desktop clients)', () => {
  it('client_secret_basic (the default with a clientSecret): sign-in, refresh and revocation work; the secret is in no log or status', async () => {
    const { harness, app } = await brokerAt(world.idp, { clientSecret: SECRET });
    await fullCycle(world.idp, harness, app);
    expect(harness.daemon.output()).not.toContain(SECRET);
    expect(JSON.stringify(await app.status())).not.toContain(SECRET);
  });

  it('client_secret_post', async () => {
    const idp = await idpFor({ clientSecret: SECRET, tokenEndpointAuthMethod: 'client_secret_post' });
    const { harness, app } = await brokerAt(idp, { clientSecret: SECRET, tokenEndpointAuthMethod: 'client_secret_post' });
    await fullCycle(idp, harness, app);
    expect(harness.daemon.output()).not.toContain(SECRET);
  });

  it('without the secret the provider refuses the code exchange (invalid_client), and the sign-in says so', async () => {
    const { harness, app } = await brokerAt(world.idp, {});
    const login = app.login({ timeoutMs: 60_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const { redirectUrl } = await world.user.signIn(await harness.nextBrowserUrl());
    await expect(app.callback(redirectUrl)).rejects.toMatchObject({ message: expect.stringMatching(/invalid_client/) as unknown });
    expect(await login).toMatchObject({ message: expect.stringMatching(/invalid_client/) as unknown });
    expect((await profileStatus(app)).state).not.toBe('active');
  });
});

describe('audience (Auth0)', () => {
  it('is sent on the authorization request', async () => {
    const { harness, app } = await brokerAt(world.idp, { clientSecret: SECRET, audience: 'https://api.example.com' });
    const login = app.login({ timeoutMs: 60_000 });
    const url = await harness.nextBrowserUrl();
    expect(new URL(url).searchParams.get('audience')).toBe('https://api.example.com');
    const { redirectUrl } = await world.user.signIn(url);
    await app.callback(redirectUrl);
    await login;
    expect((await profileStatus(app)).state).toBe('active');
  });
});

describe('offline_access with prompt=consent (OIDC Core §11)', () => {
  it('offlineAccessConsent gets a refresh token from a provider that requires consent for it; without it there is none', async () => {
    const idp = await idpFor({ offlineAccessNeedsConsent: true });
    const strict = await brokerAt(idp, { offlineAccessConsent: true });
    const login = strict.app.login({ timeoutMs: 60_000 });
    const url = await strict.harness.nextBrowserUrl();
    expect(new URL(url).searchParams.get('prompt')).toBe('consent');
    const { redirectUrl } = await world.user.signIn(url);
    await strict.app.callback(redirectUrl);
    await login;
    expect(typeof (await storedEntry(strict.harness))!['refreshToken']).toBe('string');

    const lax = await brokerAt(idp, {});
    await signIn(lax.harness, world.user, lax.app);
    expect((await storedEntry(lax.harness))!['refreshToken']).toBeUndefined();
  });
});

describe('an ID token with only "sub"', () => {
  it('the email comes from the UserInfo endpoint (OIDC Core §5.3) for status and the sign-in result', async () => {
    const idp = await idpFor({ idTokenOnlySub: true });
    const { harness, app } = await brokerAt(idp, {});
    const login = app.login({ timeoutMs: 60_000 });
    const { redirectUrl } = await world.user.signIn(await harness.nextBrowserUrl());
    await app.callback(redirectUrl);
    const result = await login;
    const idToken = (await storedEntry(harness))!['idToken'] as string;
    expect(JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString('utf8'))).not.toHaveProperty('email');
    expect(result).toMatchObject({ subject: 'alice', email: 'alice@example.test' });
    expect(await profileStatus(app)).toMatchObject({ subject: 'alice', email: 'alice@example.test' });
  });
});

describe('an ID token with only "sub" and no email scope', () => {
  it('preferred_username from the UserInfo endpoint names the user in the sign-in result, status and `tokenbroker status`', async () => {
    const idp = await idpFor({ idTokenOnlySub: true });
    const { harness, app } = await brokerAt(idp, { scopes: ['openid', 'offline_access', 'profile'] });
    const login = app.login({ timeoutMs: 60_000 });
    const { redirectUrl } = await world.user.signIn(await harness.nextBrowserUrl(), { login: 'grace' });
    await app.callback(redirectUrl);
    expect(await login).toMatchObject({ subject: 'grace', username: 'grace' });
    const status = await profileStatus(app);
    expect(status).toMatchObject({ subject: 'grace', username: 'grace' });
    expect(status.email).toBeUndefined();
    const cli = await runCli(['status'], { env: harness.env });
    expect(cli.stdout).toMatch(/^main \*\s+active\s+grace\s/m);
  });
});
