/**
 * Every RFC 8628 §3.5 answer of the token endpoint, against the real daemon: a small fake provider over real
 * HTTP (test/support/fake-device-provider.ts) answers the daemon's device-code polls from a script, because
 * oidc-provider cannot be made to say slow_down or expired_token on demand. (oidc-provider itself, with a
 * real user in Chromium, is in device-flow.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerError, type BrokerClient, type BrokerEvent, type LoginResult } from '../../client/index.js';
import { startBroker, type BrokerHarness } from '../support/broker.js';
import { waitFor } from '../support/daemon.js';
import { startFakeDeviceProvider, type FakeDeviceProvider, type FakeDeviceProviderOptions } from '../support/fake-device-provider.js';
import { client, recordEvents, storedEntry } from '../support/refresh-e2e.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

interface World {
  readonly provider: FakeDeviceProvider;
  readonly harness: BrokerHarness;
  readonly app: BrokerClient;
  readonly events: BrokerEvent[];
}

async function world(options: FakeDeviceProviderOptions, profile: Record<string, unknown> = { flow: 'device' }): Promise<World> {
  const provider = await startFakeDeviceProvider(options);
  cleanups.push(() => provider.close());
  const harness = await startBroker({
    profiles: { main: { issuer: provider.issuer, clientId: provider.clientId, scopes: ['openid', 'offline_access'], ...profile } },
  });
  cleanups.push(() => harness.stop());
  const app = await client(harness, { timeoutMs: 60_000 });
  cleanups.push(() => app.close());
  return { provider, harness, app, events: await recordEvents(app) };
}

/** A sign-in through the client library: the outcome, as a value or an error. */
async function signIn(app: BrokerClient, device = false): Promise<{ pending?: LoginResult; result?: LoginResult; error?: BrokerError }> {
  let pending: LoginResult | undefined;
  try {
    const result = await app.login({ ...(device ? { device: true } : {}), onPending: (p) => (pending = p) });
    return { ...(pending ? { pending } : {}), result };
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    return { ...(pending ? { pending } : {}), error };
  }
}

const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe('device sign-in: the token endpoint’s answers (RFC 8628 §3.5)', () => {
  it('authorization_pending, then the tokens: polls every interval, then signs in and stores the session', async () => {
    const { provider, harness, app, events } = await world({ answers: ['authorization_pending', 'authorization_pending', 'authorization_pending', 'tokens'] });
    const { pending, result } = await signIn(app);
    expect(pending?.device).toMatchObject({ userCode: provider.userCode, intervalSeconds: 1 });
    expect(result).toMatchObject({ state: 'active', subject: 'dora', email: 'dora@example.test' });
    expect(provider.polls).toHaveLength(4);
    for (const gap of gaps(provider.polls)) expect(gap).toBeGreaterThanOrEqual(900);
    expect(await storedEntry(harness)).toMatchObject({ subject: 'dora', issuer: provider.issuer });
    expect(events.some((e) => e.event === 'loggedIn')).toBe(true);
    // The device authorization request: the profile's client and scopes (RFC 8628 §3.1).
    expect(provider.authorizations[0]?.get('client_id')).toBe(provider.clientId);
    expect(provider.authorizations[0]?.get('scope')).toBe('openid offline_access');
  });

  it('slow_down: every later poll waits 5 s longer (interval 1 s → 6 s)', async () => {
    const { provider, app } = await world({ answers: ['authorization_pending', 'slow_down', 'authorization_pending', 'tokens'] });
    const { result } = await signIn(app);
    expect(result).toMatchObject({ subject: 'dora' });
    const [first, second, third] = gaps(provider.polls);
    expect(first).toBeGreaterThanOrEqual(900);
    expect(first).toBeLessThan(5000);
    expect(second).toBeGreaterThanOrEqual(5900); // after slow_down
    expect(third).toBeGreaterThanOrEqual(5900); // and for good
  });

  it('expired_token: the sign-in ends with LOGIN_TIMEOUT, polling stops, apps are told', async () => {
    const { provider, app, events } = await world({ answers: ['authorization_pending', 'expired_token', 'tokens'] });
    const { error } = await signIn(app);
    expect(error).toMatchObject({ code: 'LOGIN_TIMEOUT', message: expect.stringContaining('expired') as unknown });
    await waitFor(
      () => events.some((e) => e.event === 'loginFailed'),
      10_000,
      () => 'loginFailed',
    );
    expect(events.find((e) => e.event === 'loginFailed')?.data).toMatchObject({ code: 'LOGIN_TIMEOUT' });
    expect((await app.status()).profiles[0]?.state).toBe('logged-out');
    const polls = provider.polls.length;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(provider.polls).toHaveLength(polls);
    expect(polls).toBe(2);
  });

  it('access_denied: the sign-in ends with LOGIN_FAILED saying the user declined', async () => {
    const { provider, app } = await world({ answers: ['access_denied', 'tokens'] });
    const { error } = await signIn(app);
    expect(error).toMatchObject({ code: 'LOGIN_FAILED', message: expect.stringContaining('declined') as unknown });
    expect(provider.polls).toHaveLength(1);
    expect((await app.status()).profiles[0]?.state).toBe('logged-out');
  });

  it('expires_in: a code nobody confirms ends at its expiry (LOGIN_TIMEOUT), not at loginTimeoutSeconds', async () => {
    const { provider, app } = await world({ answers: [], expiresIn: 3 }, { flow: 'device', loginTimeoutSeconds: 3600 });
    const started = Date.now();
    const { pending, error } = await signIn(app);
    expect(pending?.timesOutAt).toBe(pending?.device?.expiresAt);
    expect(error).toMatchObject({ code: 'LOGIN_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(provider.polls.length).toBeGreaterThanOrEqual(2);
    expect(provider.polls.length).toBeLessThanOrEqual(4);
  });

  it('the ID token is checked as after a browser sign-in: one for another audience is refused, nothing is stored', async () => {
    const { harness, app } = await world({ answers: ['tokens'], idTokenAudience: 'someone-else' });
    const { error } = await signIn(app);
    expect(error).toMatchObject({ code: 'LOGIN_FAILED', message: expect.stringMatching(/aud/) as unknown });
    expect(await storedEntry(harness)).toBeUndefined();
    expect((await app.status()).profiles[0]?.state).toBe('logged-out');
  });

  it('a provider without a device_authorization_endpoint: login --device fails at once and says what to do', async () => {
    const { provider, app } = await world({ answers: ['tokens'], deviceEndpoint: false }, {});
    const { error } = await signIn(app, true);
    expect(error).toMatchObject({ code: 'LOGIN_FAILED', message: expect.stringContaining('device_authorization_endpoint') as unknown });
    expect(provider.authorizations).toHaveLength(0);
    expect((await app.status()).profiles[0]?.state).toBe('logged-out');
  });
});
