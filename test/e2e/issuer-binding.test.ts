/**
 * Tokens are bound to the issuer and client id that issued them. Two real IdPs (oidc-provider, the same client id
 * at both), the real daemon, gnome-keyring, headless Chromium: sign in at A, then start the daemon with the profile
 * pointed at B. The profile needs a new sign-in and says why (`reason: issuer_changed`); B's token and revocation
 * endpoints receive nothing carrying A's refresh token — not on start, not when apps ask, not on logout. The entry is
 * kept until then (pointing the profile back at A restores the session). An entry written before the binding was
 * recorded is bound by its ID token's `iss`/`aud`. A changed client id is refused the same way.
 */
import keytar from 'keytar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerError, type BrokerClient } from '../../client/index.js';
import { launchBrowserUser, type BrowserUser } from '../support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { client, profileStatus, signIn, sleep, storedEntry } from '../support/refresh-e2e.js';

let idpA: TestIdp;
let idpB: TestIdp;
let user: BrowserUser;
const harnesses: BrokerHarness[] = [];
const apps: BrokerClient[] = [];

beforeAll(async () => {
  idpA = await startTestIdp({ accessTokenTtl: 600 });
  idpB = await startTestIdp({ accessTokenTtl: 600 });
  user = await launchBrowserUser();
});
afterAll(async () => {
  for (const app of apps) await app.close().catch(() => undefined);
  for (const harness of harnesses) await harness.stop().catch(() => undefined);
  await user?.close();
  await idpA?.close();
  await idpB?.close();
});

/** A daemon whose profile "main" points at `idp`, on the given keychain service (shared across restarts). */
async function daemonAt(
  idp: TestIdp,
  keychainService: string | undefined,
  profile: Record<string, unknown> = {},
): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  for (const harness of harnesses.splice(0)) await harness.stop();
  const harness = await startBroker({ profiles: { main: idpProfile(idp, profile) } }, keychainService === undefined ? {} : { keychainService });
  harnesses.push(harness);
  const app = await client(harness, { timeoutMs: 10_000 });
  apps.push(app);
  return { harness, app };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    if (error instanceof BrokerError) return error.code;
    throw error;
  }
}

/** Nothing carrying `refreshToken` reached B, and B saw no refresh and no revocation at all. */
function expectNothingSentTo(idp: TestIdp, refreshToken: string): void {
  expect(idp.issuedSecrets.has(refreshToken), "A's refresh token was sent to B").toBe(false);
  expect([idp.counts.refreshToken, idp.counts.revocation]).toEqual([0, 0]);
}

describe('a profile pointed at another issuer', () => {
  it("needs a new sign-in (issuer_changed) and never sends A's refresh token to B", { timeout: 120_000 }, async () => {
    // Signed in at A: the entry records A's issuer and the client id.
    const atA = await daemonAt(idpA, undefined);
    const service = atA.harness.keychainService;
    await signIn(atA.harness, user, atA.app);
    const entryA = (await storedEntry(atA.harness))!;
    expect(entryA).toMatchObject({ issuer: idpA.issuer, clientId: idpA.clientId });
    const refreshTokenA = String(entryA['refreshToken']);

    // Pointed at B.
    const atB = await daemonAt(idpB, service);
    expect(await profileStatus(atB.app)).toMatchObject({ state: 'login-required', reason: 'issuer_changed', issuer: idpB.issuer });
    expect(await code(atB.app.getToken())).toBe('LOGIN_REQUIRED');
    expect(await code(atB.app.getToken({ rejected: 'whatever' }))).toBe('LOGIN_REQUIRED');
    await sleep(1_000);
    expectNothingSentTo(idpB, refreshTokenA);
    expect((await storedEntry(atB.harness))!['refreshToken']).toBe(refreshTokenA); // kept, not deleted
    expect(atB.harness.daemon.output()).toContain('stored tokens belong to another issuer');

    // Pointed back at A: the session is there, and refreshes at A.
    const backAtA = await daemonAt(idpA, service);
    const token = await backAtA.app.getToken();
    expect((await backAtA.app.getToken({ rejected: token.accessToken })).accessToken).not.toBe(token.accessToken);
    expect((await profileStatus(backAtA.app)).state).toBe('active');

    // An entry written before the binding was recorded (no issuer/clientId): bound by its ID token.
    const legacy = (await storedEntry(backAtA.harness))!;
    delete legacy['issuer'];
    delete legacy['clientId'];
    await keytar.setPassword(service, 'main', JSON.stringify(legacy));
    const legacyAtB = await daemonAt(idpB, service);
    expect(await profileStatus(legacyAtB.app)).toMatchObject({ state: 'login-required', reason: 'issuer_changed' });
    expect(await code(legacyAtB.app.getToken())).toBe('LOGIN_REQUIRED');
    const legacyAtA = await daemonAt(idpA, service);
    expect((await profileStatus(legacyAtA.app)).state).toBe('active');

    // A changed client id at the same issuer.
    const otherClient = await daemonAt(idpA, service, { clientId: 'another-client' });
    expect(await profileStatus(otherClient.app)).toMatchObject({ state: 'login-required', reason: 'client_changed' });
    const revocationsAtA = idpA.counts.revocation;
    expect(await code(otherClient.app.getToken())).toBe('LOGIN_REQUIRED');

    // Logout while pointed at B: local only, nothing revoked at B.
    const logoutAtB = await daemonAt(idpB, service);
    await logoutAtB.app.logout({ openBrowser: false });
    const refreshTokenNow = String(legacy['refreshToken']);
    expectNothingSentTo(idpB, refreshTokenA);
    expectNothingSentTo(idpB, refreshTokenNow);
    expect(idpA.counts.revocation).toBe(revocationsAtA);

    // A sign-in at B works and binds the new entry to B.
    await user.clearSession();
    await signIn(logoutAtB.harness, user, logoutAtB.app);
    expect(await storedEntry(logoutAtB.harness)).toMatchObject({ issuer: idpB.issuer, clientId: idpB.clientId });
    expect((await profileStatus(logoutAtB.app)).state).toBe('active');
    console.log(
      `[issuer-binding] at B: ${idpB.counts.refreshToken} refresh grants, ${idpB.counts.revocation} revocations, ` +
        `A's refresh tokens sent to B: ${[refreshTokenA, refreshTokenNow].filter((t) => idpB.issuedSecrets.has(t)).length}`,
    );
  });
});
