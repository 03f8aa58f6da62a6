/**
 * How providers sign, end to end: the real daemon signs in through headless Chromium at oidc-provider set up
 * as another provider would be, and refreshes there. Rows of the quirks matrix (README, section "Providers"):
 * ID tokens signed with ES256, PS256, EdDSA; JWKS keys without `kid`; a signing-key rotation; an issuer with a
 * trailing slash (Auth0), compared exactly, with a clear message on a mismatch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { startTestIdp, type TestIdp, type TestIdpOptions } from '../support/idp.js';
import { client, profileStatus, signIn, startRefreshBroker, storedEntry, useRefreshWorld } from '../support/refresh-e2e.js';

const world = useRefreshWorld({ frontProxy: true });
afterEach(() => world.idp.faults!.clearFaults());

/** An IdP of its own for one test (closed after it). */
async function idpFor(options: TestIdpOptions): Promise<TestIdp> {
  const idp = await startTestIdp(options);
  world.defer(() => idp.close());
  return idp;
}

/** A daemon on `idp`, an app, signed in through the world's browser. */
async function signedInAt(idp: TestIdp, profile: Record<string, unknown> = {}): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  const harness = await startRefreshBroker(idp, profile);
  world.defer(() => harness.stop());
  const app = await client(harness);
  world.defer(() => app.close());
  await signIn(harness, world.user, app);
  return { harness, app };
}

function headerOf(jwt: unknown): Record<string, unknown> {
  expect(typeof jwt).toBe('string');
  return JSON.parse(Buffer.from((jwt as string).split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Forces a refresh and checks that it went through, ID token and all. */
async function refreshOnce(app: BrokerClient): Promise<void> {
  const before = await app.getToken();
  const after = await app.getToken({ rejected: before.accessToken });
  expect(after.accessToken).not.toBe(before.accessToken);
  expect(await profileStatus(app)).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
}

describe('ID token signing algorithms', () => {
  for (const alg of ['ES256', 'PS256', 'EdDSA'] as const) {
    it(`${alg}: signs in and refreshes`, async () => {
      const idp = await idpFor({ idTokenSigningAlg: alg });
      const { harness, app } = await signedInAt(idp);
      expect(headerOf((await storedEntry(harness))!['idToken'])['alg']).toBe(alg);
      await refreshOnce(app);
      expect(headerOf((await storedEntry(harness))!['idToken'])['alg']).toBe(alg);
    });
  }
});

describe('the key set', () => {
  it('keys without "kid" (RFC 7517 §4.5: optional) still verify ID tokens that name one', async () => {
    world.idp.faults!.setFault('/jwks', {
      kind: 'forward',
      rewrite: (body) => {
        const set = JSON.parse(body) as { keys: Array<Record<string, unknown>> };
        for (const key of set.keys) delete key['kid'];
        return JSON.stringify(set);
      },
    });
    const { harness, app } = await world.signedIn();
    expect(headerOf((await storedEntry(harness))!['idToken'])['kid']).toEqual(expect.any(String));
    await refreshOnce(app);
  });

  it('a rotated signing key: the refreshed ID token, signed with a new kid, is accepted', async () => {
    const { harness, app } = await world.signedIn();
    const kid = await world.idp.rotateSigningKey({ keepOld: false });
    await refreshOnce(app);
    expect(headerOf((await storedEntry(harness))!['idToken'])['kid']).toBe(kid);
  });
});

describe('an issuer with a trailing slash (Auth0)', () => {
  it('works when the profile names it exactly, "/" included', async () => {
    const idp = await idpFor({ issuerTrailingSlash: true });
    expect(idp.issuer).toMatch(/\/$/);
    const { app } = await signedInAt(idp);
    expect(await profileStatus(app)).toMatchObject({ state: 'active', issuer: idp.issuer });
    await refreshOnce(app);
  });

  it('without the "/" the sign-in is refused with a message that says what to set', async () => {
    const idp = await idpFor({ issuerTrailingSlash: true });
    const harness = await startRefreshBroker(idp, { issuer: idp.issuer.replace(/\/$/, '') });
    world.defer(() => harness.stop());
    const app = await client(harness);
    world.defer(() => app.close());
    await expect(app.login({ timeoutMs: 30_000 })).rejects.toMatchObject({
      code: 'IDP_ERROR',
      message: expect.stringContaining(
        `issuers are compared character for character, so set the profile's issuer to ${JSON.stringify(idp.issuer)}, trailing "/" as published`,
      ) as unknown,
    });
  });
});
