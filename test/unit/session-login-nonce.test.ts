/**
 * A sign-in ends only with an ID token that carries the nonce of this very request (OIDC Core §3.1.3.7
 * step 11). One Session, a fake token endpoint that returns an ID token signed by a key the test owns,
 * and a real JWKS endpoint on 127.0.0.1 for jose to fetch. The control case (the right nonce) shows the
 * setup can succeed, so the refusals below are the nonce check and nothing else.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerEvent } from '../../proto/index.js';
import type { HttpClient, ProviderMetadata } from '../../daemon/oauth/index.js';
import { Session } from '../../daemon/session/session.js';
import { MemoryStore } from '../support/memory-store.js';
import { ISSUER, METADATA, profileConfig, settle } from '../support/session-fakes.js';

const KID = 'nonce-test-key';
let privateKey: CryptoKey;
let jwksServer: http.Server;
let metadata: ProviderMetadata;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  jwksServer = http.createServer((_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const { port } = jwksServer.address() as AddressInfo;
  metadata = { ...METADATA, jwksUri: `http://127.0.0.1:${port}/jwks-${Date.now()}` };
});
afterAll(async () => {
  await new Promise((resolve) => jwksServer?.close(resolve));
});

/** The `nonce` claim the fake provider puts in its ID token: the request's, another, or none. */
type NonceChoice = { readonly kind: 'request' } | { readonly kind: 'other'; readonly value: string } | { readonly kind: 'none' };

function idToken(nonce: string | undefined): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...(nonce === undefined ? {} : { nonce }), email: 'alice@example.test' })
    .setProtectedHeader({ alg: 'RS256', kid: KID })
    .setIssuer(ISSUER)
    .setAudience('unit-client')
    .setSubject('alice')
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(privateKey);
}

interface Harness {
  readonly session: Session;
  readonly store: MemoryStore;
  readonly events: BrokerEvent[];
  readonly browser: string[];
}

const sessions: Session[] = [];
afterEach(() => {
  for (const session of sessions.splice(0)) session.dispose();
});

function start(choice: NonceChoice): Harness {
  const store = new MemoryStore();
  const events: BrokerEvent[] = [];
  const browser: string[] = [];
  const fakeHttp = {
    post: async (url: string, options: { form: Record<string, string> }) => {
      expect(url).toBe(metadata.tokenEndpoint);
      expect(options.form['grant_type']).toBe('authorization_code');
      const requested = new URL(browser.at(-1)!).searchParams.get('nonce')!;
      const nonce = choice.kind === 'request' ? requested : choice.kind === 'other' ? choice.value : undefined;
      return {
        body: JSON.stringify({
          access_token: 'at-login',
          token_type: 'Bearer',
          expires_in: 300,
          scope: 'openid offline_access',
          refresh_token: 'rt-login',
          id_token: await idToken(nonce),
        }),
      };
    },
  } as unknown as HttpClient;
  const session = new Session({
    profile: profileConfig(),
    isDefault: true,
    store,
    http: fakeHttp,
    log: pino({ level: 'silent' }),
    metadata: () => Promise.resolve(metadata),
    publish: (event) => void events.push(event),
    openBrowser: async (url) => {
      // The sign-in opens its one-time launcher; the browser follows it to the authorization URL.
      const launched = await fetch(url, { redirect: 'manual' });
      await launched.body?.cancel();
      browser.push(launched.headers.get('location') ?? url);
      return true;
    },
    onLoopbackCallback: () => Promise.resolve({ ok: false, message: 'not used' }),
    expectLogoutReturn: () => {},
  });
  sessions.push(session);
  return { session, store, events, browser };
}

/** Starts a sign-in and delivers the provider's redirect with a code and the request's state. */
async function signIn(h: Harness) {
  const { login } = await h.session.startLogin({ openBrowser: true });
  const authorize = new URL(h.browser.at(-1)!);
  const nonce = authorize.searchParams.get('nonce');
  expect(nonce).toMatch(/^[A-Za-z0-9_-]{22,}$/); // the request carries a nonce to check against
  const state = authorize.searchParams.get('state')!;
  return settle(h.session.completeLogin(login, `com.example.broker:/callback?code=the-code&state=${encodeURIComponent(state)}`, true));
}

describe('the sign-in nonce (OIDC Core §3.1.3.7 step 11)', () => {
  it("control: an ID token with the request's nonce signs in", async () => {
    const h = start({ kind: 'request' });
    const outcome = await signIn(h);
    expect(outcome).toMatchObject({ ok: true, value: { subject: 'alice', email: 'alice@example.test' } });
    expect(h.session.state).toBe('active');
    expect((await h.store.load('main'))?.accessToken.reveal()).toBe('at-login');
  });

  it('an ID token carrying another nonce → LOGIN_FAILED on id_token.nonce; nothing stored, no session', async () => {
    const h = start({ kind: 'other', value: 'a-nonce-of-another-login-request-0123456789' });
    const outcome = await signIn(h);
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ code: 'LOGIN_FAILED', field: 'id_token.nonce' });
    expect(h.session.state).toBe('logged-out');
    expect(await h.store.load('main')).toBeUndefined();
    expect(h.events.filter((e) => e.event === 'loggedIn')).toHaveLength(0);
    expect(h.events.filter((e) => e.event === 'loginFailed')).toHaveLength(1);
  });

  it('an ID token without a nonce → LOGIN_FAILED on id_token.nonce', async () => {
    const h = start({ kind: 'none' });
    const outcome = await signIn(h);
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ code: 'LOGIN_FAILED', field: 'id_token.nonce' });
    expect(h.session.state).toBe('logged-out');
    expect(await h.store.load('main')).toBeUndefined();
  });
});
