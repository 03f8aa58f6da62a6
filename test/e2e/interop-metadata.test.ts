/**
 * Providers that publish their endpoints differently, end to end: the real daemon, the test IdP (oidc-provider)
 * behind its fault proxy rewriting the discovery document as another provider would publish it, headless
 * Chromium signing in, `tokenbroker doctor` through the real CLI.
 *
 * Rows of the quirks matrix (README, section "Providers"):
 * - revocation endpoint only in RFC 8414 metadata, not in the OpenID document;
 * - no revocation endpoint at all (Microsoft Entra ID);
 * - no end-session endpoint (Google);
 * - an RFC 8414 document naming another issuer (not used);
 * - a revocation endpoint named in the config as a last resort.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/daemon.js';
import type { BrokerHarness } from '../support/broker.js';
import { storedEntry, useRefreshWorld } from '../support/refresh-e2e.js';

const world = useRefreshWorld({ frontProxy: true });
afterEach(() => world.idp.faults!.clearFaults());

const DISCOVERY = '/.well-known/openid-configuration';
const RFC8414 = '/.well-known/oauth-authorization-server';

/**
 * Both metadata documents (oidc-provider serves the RFC 8414 one too) without the named fields, as a provider
 * that does not publish them; a test may then serve an RFC 8414 document of its own.
 */
function publishWithout(...fields: string[]): void {
  for (const path of [DISCOVERY, RFC8414]) {
    world.idp.faults!.setFault(path, {
      kind: 'forward',
      rewrite: (body) => {
        const document = JSON.parse(body) as Record<string, unknown>;
        for (const field of fields) delete document[field];
        return JSON.stringify(document);
      },
    });
  }
}

function serveRfc8414(document: Record<string, unknown>): void {
  world.idp.faults!.setFault(RFC8414, { kind: 'body', status: 200, body: JSON.stringify(document) });
}

async function refreshTokenOf(harness: BrokerHarness): Promise<string> {
  const token = (await storedEntry(harness))?.['refreshToken'];
  expect(typeof token).toBe('string');
  return token as string;
}

async function doctorProvider(harness: BrokerHarness): Promise<{ status: string; detail: string; fix?: string }> {
  const run = await runCli(['doctor', '--json', '--config', harness.daemon.configPath!], { env: harness.env });
  const report = JSON.parse(run.stdout) as { checks: Array<{ id: string; status: string; detail: string; fix?: string }> };
  return report.checks.find((c) => c.id === 'provider:main')!;
}

describe('revocation endpoint only in RFC 8414 metadata', () => {
  it('logout revokes the refresh token there, and doctor has nothing to warn about', async () => {
    publishWithout('revocation_endpoint');
    serveRfc8414({ issuer: world.idp.issuer, revocation_endpoint: world.idp.endpoints.revocation });
    const { harness, app } = await world.signedIn();
    const refreshToken = await refreshTokenOf(harness);
    const revocations = world.idp.counts.revocation;

    const result = await app.logout({ openBrowser: false });
    expect(result).toMatchObject({ keychainCleared: true, revoked: true });
    expect(world.idp.counts.revocation).toBe(revocations + 1);
    expect(await world.idp.introspect(refreshToken)).toMatchObject({ active: false });
    expect(await doctorProvider(harness)).toMatchObject({ status: 'ok' });
  });

  it('an RFC 8414 document of another issuer is not used (RFC 8414 §3.3), and doctor says why', async () => {
    publishWithout('revocation_endpoint');
    serveRfc8414({ issuer: `${world.idp.issuer}/`, revocation_endpoint: world.idp.endpoints.revocation });
    const { harness, app } = await world.signedIn();
    const revocations = world.idp.counts.revocation;

    const result = await app.logout({ openBrowser: false });
    expect(result.revoked).toBe(false);
    expect(world.idp.counts.revocation).toBe(revocations);
    const check = await doctorProvider(harness);
    expect(check.status).toBe('warn');
    expect(check.detail).toContain('logout cannot revoke');
    expect(check.detail).toMatch(
      /names issuer "http:\/\/127\.0\.0\.1:\d+\/", not exactly "http:\/\/127\.0\.0\.1:\d+": its endpoints were not used \(RFC 8414 §3\.3\)/,
    );
  });
});

describe('no revocation endpoint anywhere (Microsoft Entra ID)', () => {
  it('logout says accurately why it did not revoke; doctor warns what that means', async () => {
    publishWithout('revocation_endpoint');
    const { harness, app } = await world.signedIn();
    const refreshToken = await refreshTokenOf(harness);

    const result = await app.logout({ openBrowser: false });
    expect(result).toMatchObject({ keychainCleared: true, revoked: false });
    expect(result.revokeError).toBe(
      'the provider offers no revocation endpoint (none in its OpenID discovery document or RFC 8414 metadata, and no ' +
        '"revocationEndpoint" in the profile): the refresh token was deleted here but stays valid at the provider until it expires',
    );
    // Accurate: the grant is indeed still alive at the provider.
    expect(await world.idp.introspect(refreshToken)).toMatchObject({ active: true });
    // The broker looked for RFC 8414 metadata before concluding.
    expect(world.idp.requests.some((r) => r.path === RFC8414)).toBe(true);

    const check = await doctorProvider(harness);
    expect(check.status).toBe('warn');
    expect(check.detail).toMatch(/; but logout cannot revoke: .* the refresh token stays valid at the provider until it expires$/);
    expect(check.fix).toMatch(/set profiles\.main\.revocationEndpoint/);
  });

  it('a revocationEndpoint in the config is the last resort, and logout revokes there', async () => {
    publishWithout('revocation_endpoint');
    const { harness, app } = await world.signedIn({ revocationEndpoint: world.idp.endpoints.revocation });
    const refreshToken = await refreshTokenOf(harness);

    const result = await app.logout({ openBrowser: false });
    expect(result).toMatchObject({ revoked: true });
    expect(await world.idp.introspect(refreshToken)).toMatchObject({ active: false });
    expect(await doctorProvider(harness)).toMatchObject({ status: 'ok' });
  });
});

describe('no end-session endpoint (Google)', () => {
  it('logout revokes but has no provider logout page; doctor warns that the provider session stays', async () => {
    publishWithout('end_session_endpoint');
    const { harness, app } = await world.signedIn();

    const result = await app.logout({ openBrowser: false });
    expect(result).toMatchObject({ keychainCleared: true, revoked: true });
    expect(result.logoutUrl).toBeUndefined();
    const check = await doctorProvider(harness);
    expect(check.status).toBe('warn');
    expect(check.detail).toMatch(/logout cannot end the provider session: .* the browser stays signed in at the provider/);
    expect(check.detail).not.toContain('cannot revoke');
  });
});
