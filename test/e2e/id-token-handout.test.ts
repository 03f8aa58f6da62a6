/**
 * token.get {kind: "id"} and `tokenbroker token --id-token`, end to end against oidc-provider: the sign-in's ID
 * token is handed out while valid; an expired one is refreshed once (oidc-provider sends a new ID token with a
 * refresh); a provider that sends none on refresh leaves the last one in use, and once that expired the answer
 * is ID_TOKEN_EXPIRED without another provider call. ID tokens live 12 s here, access tokens 10 minutes.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/daemon.js';
import { storedEntry, useRefreshWorld, waitFor } from '../support/refresh-e2e.js';

const ID_TOKEN_TTL = 12;
const world = useRefreshWorld({ accessTokenTtl: 600, idTokenTtl: ID_TOKEN_TTL });

function claims(jwt: string): { aud: string; sub: string; exp: number; iat: number } {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as { aud: string; sub: string; exp: number; iat: number };
}

/** Until the wall clock is past `expiresAt` (epoch ms). */
const pastExpiry = (expiresAt: number) =>
  waitFor(
    () => Date.now() > expiresAt + 50,
    (ID_TOKEN_TTL + 5) * 1000,
    () => 'the ID token to expire',
  );

describe('the ID token handout', () => {
  it("hands out the sign-in's ID token while valid, without a refresh; expired, it is refreshed once for a new one", async () => {
    const { harness, app } = await world.signedIn();
    const grants = world.idp.counts.refreshToken;
    const id = await app.getToken({ kind: 'id' });
    expect(id.kind).toBe('id');
    expect(id.accessToken).toBe((await storedEntry(harness))?.['idToken']);
    expect(claims(id.accessToken)).toMatchObject({ aud: world.idp.clientId, sub: 'alice' });
    expect(id.expiresAt).toBe(claims(id.accessToken).exp * 1000);
    expect(id.accessToken).not.toBe((await app.getToken()).accessToken);
    expect(world.idp.counts.refreshToken).toBe(grants);

    await pastExpiry(id.expiresAt);
    const renewed = await app.getToken({ kind: 'id' });
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    expect(renewed.accessToken).not.toBe(id.accessToken);
    expect(renewed.expiresAt).toBeGreaterThan(Date.now());
    expect(claims(renewed.accessToken).sub).toBe('alice');
    // Asked again at once: from memory.
    expect((await app.getToken({ kind: 'id' })).accessToken).toBe(renewed.accessToken);
    expect(world.idp.counts.refreshToken - grants).toBe(1);
  });

  it('a provider that sends no ID token on refresh: the last one is kept; expired → ID_TOKEN_EXPIRED, no provider call', async () => {
    const { harness, app } = await world.signedIn();
    world.idp.setIdTokenOnRefresh(false);
    world.defer(() => Promise.resolve(world.idp.setIdTokenOnRefresh(true)));
    const id = await app.getToken({ kind: 'id' });
    // A refresh (an API rejected the access token) brings no ID token: the valid one stays in use.
    const access = await app.getToken();
    const grants = world.idp.counts.refreshToken;
    expect((await app.getToken({ rejected: access.accessToken })).accessToken).not.toBe(access.accessToken);
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    expect((await app.getToken({ kind: 'id' })).accessToken).toBe(id.accessToken);
    expect((await storedEntry(harness))?.['idToken']).toBe(id.accessToken);

    await pastExpiry(id.expiresAt);
    await expect(app.getToken({ kind: 'id' })).rejects.toMatchObject({ code: 'ID_TOKEN_EXPIRED' });
    const cli = await runCli(['token', '--id-token'], { env: harness.env });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toBe('');
    expect(cli.stderr).toMatch(/ID token expired/);
    // The provider was not asked again (it had said, by its last answer, that it sends none).
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    // Access tokens are unaffected.
    expect((await app.getToken()).accessToken).toBeTruthy();
  });

  it('tokenbroker token --id-token prints it, in any --format (exec-credential for Kubernetes OIDC)', async () => {
    const { harness, app } = await world.signedIn();
    const id = await app.getToken({ kind: 'id' });
    const plain = await runCli(['token', '--id-token'], { env: harness.env });
    expect(plain).toMatchObject({ code: 0, stdout: `${id.accessToken}\n` });
    const exec = await runCli(['token', '--id-token', '--format', 'exec-credential'], { env: harness.env });
    expect(exec.code, exec.stderr).toBe(0);
    expect(JSON.parse(exec.stdout)).toMatchObject({ kind: 'ExecCredential', status: { token: id.accessToken } });
    const usage = await runCli(['token', '--id-token', '--scope', 'openid'], { env: harness.env });
    expect(usage.code).toBe(2);
  });
});
