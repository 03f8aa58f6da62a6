/**
 * Per-request scopes and resources, end to end: the real daemon, signed in through headless Chromium at
 * oidc-provider with RFC 8707 resource indicators enabled (two resource servers), refresh-token rotation on.
 * Tokens for two resources carry the right `aud`; 1000 concurrent requests over 3 keys cost exactly 3
 * token-endpoint calls (counted at the IdP); a scope never granted costs none; the provider's refusal is
 * passed on; the CLI's --resource/--scope reach the same tokens.
 * Access tokens live 10 minutes, so the session's own timer stays out of the counts.
 */
import { describe, expect, it } from 'vitest';
import { BrokerError, connect, type BrokerClient } from '../../client/index.js';
import { runCli } from '../support/daemon.js';
import { storedEntry, tokenEndpointRequests, useRefreshWorld } from '../support/refresh-e2e.js';

const ORDERS = 'https://orders.example.test';
const BILLING = 'https://billing.example.test/api';
const world = useRefreshWorld({ accessTokenTtl: 600, resourceServers: [ORDERS, BILLING], rotateRefreshTokens: true });

/** The claims of a JWT access token (oidc-provider issues JWTs for resource servers). */
function claims(jwt: string): Record<string, unknown> {
  const [, payload] = jwt.split('.');
  expect(payload, 'a JWT access token').toBeDefined();
  return JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('token.get with resource and scopes (oidc-provider, resource indicators on)', () => {
  it('tokens for two resources carry the right aud; each is cached; the session token is untouched', async () => {
    const { app } = await world.signedIn();
    const primary = await app.getToken();
    const grants = world.idp.counts.refreshToken;

    const orders = await app.getToken({ resource: ORDERS });
    const billing = await app.getToken({ resource: [BILLING] });
    expect(claims(orders.accessToken)).toMatchObject({ aud: ORDERS, sub: 'alice', client_id: world.idp.clientId });
    expect(claims(billing.accessToken)).toMatchObject({ aud: BILLING, sub: 'alice' });
    expect(orders).toMatchObject({ resource: [ORDERS], tokenType: 'Bearer' });
    expect(world.idp.counts.refreshToken - grants).toBe(2);

    // From memory now, and the session's own token is still the sign-in's.
    expect((await app.getToken({ resource: ORDERS })).accessToken).toBe(orders.accessToken);
    expect((await app.getToken({ resource: [BILLING, BILLING] })).accessToken).toBe(billing.accessToken);
    expect((await app.getToken()).accessToken).toBe(primary.accessToken);
    expect(world.idp.counts.refreshToken - grants).toBe(2);
    expect(world.idp.counts.tokenEndpointErrors).toBe(0);
  });

  it('1000 concurrent requests over 3 keys → exactly 3 token-endpoint calls; rotation carried from one to the next', async () => {
    const { harness, app } = await world.signedIn();
    const apps: BrokerClient[] = [app];
    for (let i = 1; i < 8; i++) {
      const extra = await connect({ socketPath: harness.daemon.socketPath, clientName: `app-${i}`, timeoutMs: 60_000 });
      world.defer(() => extra.close());
      apps.push(extra);
    }
    const keys = [{ resource: ORDERS }, { resource: BILLING }, { scopes: ['openid'] }] as const;
    const since = Date.now();
    const grants = world.idp.counts.refreshToken;
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => apps[i % apps.length]!.getToken({ ...keys[i % 3], timeoutMs: 60_000 })));
    expect(world.idp.counts.refreshToken - grants).toBe(3);
    expect(tokenEndpointRequests(world.idp, since).map((r) => r.status)).toEqual([200, 200, 200]);
    for (let k = 0; k < 3; k++) {
      expect(new Set(results.filter((_, i) => i % 3 === k).map((r) => r.accessToken)).size, `key ${k}`).toBe(1);
    }
    expect(claims(results[0]!.accessToken)['aud']).toBe(ORDERS);
    expect(claims(results[1]!.accessToken)['aud']).toBe(BILLING);
    // The last rotated refresh token is the one in the keychain, and it still works: the session refreshes with it.
    const stored = await storedEntry(harness);
    expect(world.idp.issuedSecrets.has(String(stored?.['refreshToken']))).toBe(true);
    const before = await app.getToken();
    const after = await app.getToken({ rejected: before.accessToken });
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(world.idp.counts.tokenEndpointErrors).toBe(0);
  }, 120_000);

  it('a scope never granted → SCOPE_NOT_GRANTED, and the provider is not called', async () => {
    const { app } = await world.signedIn();
    const since = Date.now();
    const grants = world.idp.counts.refreshToken;
    const error = await app.getToken({ scopes: ['openid', 'admin:all'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toMatchObject({ code: 'SCOPE_NOT_GRANTED', field: 'params.scopes' });
    expect((error as Error).message).toContain('"admin:all"');
    expect(world.idp.counts.refreshToken).toBe(grants);
    expect(tokenEndpointRequests(world.idp, since)).toEqual([]);
    // A granted subset is fine: a narrower refresh.
    const narrow = await app.getToken({ scopes: ['openid'] });
    expect(narrow.scopes).toEqual(['openid']);
    expect(world.idp.counts.refreshToken - grants).toBe(1);
  });

  it('a resource the provider does not serve: its invalid_target and description are passed on; the session goes on', async () => {
    // Without rotation: oidc-provider spends a rotating refresh token before it checks the resource, so with
    // rotation a refused resource costs the grant (its next refresh is invalid_grant; README: Several APIs).
    world.idp.setRotation(false);
    world.defer(() => Promise.resolve(world.idp.setRotation(true)));
    const { app } = await world.signedIn();
    const error = await app.getToken({ resource: 'https://unknown.example.test' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'IDP_ERROR', field: 'params.resource' });
    expect((error as Error).message).toMatch(/invalid_target/);
    // oidc-provider's own error_description, word for word.
    expect((error as Error).message).toContain('(invalid_target: resource indicator is missing, or unknown)');
    expect((await app.status()).profiles[0]!.state).toBe('active');
    expect(claims((await app.getToken({ resource: ORDERS })).accessToken)['aud']).toBe(ORDERS);
  });

  it('the CLI: tokenbroker token --resource/--scope print the same per-key tokens (--format json and plain)', async () => {
    const { harness, app } = await world.signedIn();
    const json = await runCli(['token', '--resource', ORDERS, '--format', 'json'], { env: harness.env });
    expect(json.code, json.stderr).toBe(0);
    const printed = JSON.parse(json.stdout) as { accessToken: string; resource: string[] };
    expect(printed.resource).toEqual([ORDERS]);
    expect(claims(printed.accessToken)['aud']).toBe(ORDERS);
    expect((await app.getToken({ resource: ORDERS })).accessToken).toBe(printed.accessToken);
    const plain = await runCli(['token', '--resource', BILLING, '--scope', 'openid'], { env: harness.env });
    expect(plain.code, plain.stderr).toBe(0);
    expect(claims(plain.stdout.trim())['aud']).toBe(BILLING);
    const refused = await runCli(['token', '--scope', 'admin:all'], { env: harness.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/SCOPE_NOT_GRANTED|not granted/);
    const usage = await runCli(['token', '--resource', 'not a uri'], { env: harness.env });
    expect(usage.code).toBe(2);
    // exec hands the command the token for that resource.
    const exec = await runCli(['exec', '--resource', ORDERS, '--', 'sh', '-c', 'printf %s "$TOKENBROKER_ACCESS_TOKEN"'], { env: harness.env });
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe(printed.accessToken);
  });
});
