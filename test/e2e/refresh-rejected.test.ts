/**
 * The 401 path, end to end: a resource server that accepts only tokens the IdP says are active (and not
 * ones it was told to reject). `client.fetch` attaches the broker's token, reports a rejected one, and
 * retries once with the refreshed token; many apps reporting the same token cause one refresh.
 * Access tokens live 10 minutes here, so every refresh seen is one the 401 path caused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { startResourceServer, type ResourceServer } from '../support/resource-server.js';
import { client, signIn, startRefreshBroker, useRefreshWorld } from '../support/refresh-e2e.js';

const world = useRefreshWorld({ accessTokenTtl: 600 });
let api: ResourceServer;
let harness: BrokerHarness;
let main: BrokerClient;
const extra: BrokerClient[] = [];

beforeAll(async () => {
  api = await startResourceServer(world.idp);
  harness = await startRefreshBroker(world.idp);
  main = await client(harness);
  await signIn(harness, world.user, main);
});
// Runs before the world closes the browser and the IdP ("after" hooks run as a stack).
afterAll(async () => {
  for (const app of extra) await app.close();
  await main?.close();
  await harness?.stop();
  await api?.close();
});
const requestsSince = (n: number) => api.requests.slice(n);

describe('a token the API rejected', () => {
  it('client.fetch: 401 → the token is reported, the broker refreshes once, the retry succeeds', async () => {
    const token = await main.getToken();
    const seen = api.requests.length;
    expect((await main.fetch(api.url)).status).toBe(200);
    expect(requestsSince(seen).map((r) => r.status)).toEqual([200]);

    api.reject(token.accessToken);
    const grants = world.idp.counts.refreshToken;
    const response = await main.fetch(api.url);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ok: true, sub: 'alice' });
    const [first, second] = requestsSince(seen + 1);
    expect(first).toMatchObject({ token: token.accessToken, status: 401 });
    expect(second!.status).toBe(200);
    expect(second!.token).not.toBe(token.accessToken);
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    expect((await main.getToken()).accessToken).toBe(second!.token);
  });

  it('ten apps reporting the same rejected token cause exactly one refresh; all retry with the same new token', async () => {
    while (extra.length < 10) extra.push(await client(harness, { clientName: `app-${extra.length}` }));
    const token = await main.getToken();
    api.reject(token.accessToken);
    const seen = api.requests.length;
    const grants = world.idp.counts.refreshToken;
    const responses = await Promise.all(extra.map((app) => app.fetch(api.url)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    const requests = requestsSince(seen);
    expect(requests.filter((r) => r.status === 401)).toHaveLength(10);
    const retried = requests.filter((r) => r.status === 200);
    expect(retried).toHaveLength(10);
    expect(new Set(retried.map((r) => r.token)).size).toBe(1);
    expect(retried[0]!.token).not.toBe(token.accessToken);
  });

  it('reporting a token that is no longer current returns the newer one at once, without a refresh', async () => {
    const current = await main.getToken();
    const grants = world.idp.counts.refreshToken;
    const answer = await main.getToken({ rejected: 'an-older-token-the-broker-already-replaced' });
    expect(answer.accessToken).toBe(current.accessToken);
    expect(world.idp.counts.refreshToken).toBe(grants);
  });

  it('a token revoked at the IdP (oidc-provider ends the whole grant with it): one refresh attempt, then LOGIN_REQUIRED', async () => {
    const token = await main.getToken();
    // RFC 7009 revocation of the access token, as a provider admin or a security tool might.
    const revoked = await fetch(world.idp.endpoints.revocation, {
      method: 'POST',
      body: new URLSearchParams({ token: token.accessToken, token_type_hint: 'access_token', client_id: world.idp.clientId }),
    });
    expect(revoked.status).toBe(200);
    expect(await world.idp.introspect(token.accessToken)).toMatchObject({ active: false });
    const grants = world.idp.counts.refreshToken;
    const seen = api.requests.length;
    await expect(main.fetch(api.url)).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    expect(requestsSince(seen).map((r) => r.status)).toEqual([401]); // the API saw one request, no retry with a dead token
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    await expect(main.fetch(api.url)).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    expect(world.idp.counts.refreshToken - grants).toBe(1);
  });
});
