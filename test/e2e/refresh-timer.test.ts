/**
 * Refresh ahead of expiry, end to end: the real daemon, oidc-provider issuing 6-second access tokens
 * (clockTolerance 0), headless Chromium signing in, the real Secret Service. Counts are taken at the IdP.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { client, profileStatus, recordEvents, storedEntry, tokenEndpointRequests, useRefreshWorld, waitForEvent } from '../support/refresh-e2e.js';

const TTL_SECONDS = 6;

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS });

async function signedInBroker(profile: Record<string, unknown> = {}): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  return world.signedIn(profile);
}

describe('daemon (e2e): the refresh timer', () => {
  it('refreshes before expiry with no app asking, and status shows when', async () => {
    const { harness, app } = await signedInBroker();
    const events = await recordEvents(app);
    const grantsBefore = world.idp.counts.refreshToken;
    const signedInAt = Date.now();

    const status = await profileStatus(app);
    expect(status.state).toBe('active');
    const { expiresAt, nextRefreshAt } = status as Required<typeof status>;
    // Lead: a third of the (conservatively counted) lifetime, plus jitter of at most a tenth.
    expect(nextRefreshAt).toBeLessThan(expiresAt - 1_000);
    expect(nextRefreshAt).toBeGreaterThan(expiresAt - (TTL_SECONDS * 1000) / 3 - (TTL_SECONDS * 1000) / 10 - 100);
    expect(nextRefreshAt).toBeGreaterThan(signedInAt - 1_000);

    // The token as stored, and its real expiry at the IdP.
    const first = (await storedEntry(harness))!['accessToken'] as string;
    const introspection = await world.idp.introspect(first);
    expect(introspection.active).toBe(true);
    expect(expiresAt).toBeLessThanOrEqual(introspection.exp! * 1000); // the broker never claims more life than the IdP gives

    await waitForEvent(events, 'tokenRefreshed', 1, 10_000);
    expect(world.idp.counts.refreshToken - grantsBefore).toBe(1);
    const [grant] = tokenEndpointRequests(world.idp, signedInAt);
    expect(grant!.status).toBe(200);
    expect(grant!.at).toBeGreaterThanOrEqual(nextRefreshAt - 1_000); // not early (the timer accepts up to 1 s early: refresh-timer.ts)
    expect(grant!.at).toBeLessThan(introspection.exp! * 1000 - 500); // well before the IdP's expiry
    const after = await profileStatus(app);
    expect(after).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
    expect(after.expiresAt).toBeGreaterThan(expiresAt);
    expect(after.nextRefreshAt).toBeGreaterThan(grant!.at);
    expect(after.nextRefreshAt).toBeLessThan(after.expiresAt!);
    const second = (await storedEntry(harness))!['accessToken'] as string;
    expect(second).not.toBe(first);
    expect(await world.idp.introspect(second)).toMatchObject({ active: true });

    // Two more lifetimes with nobody asking: one grant per lifetime, each before the previous token expired.
    await waitForEvent(events, 'tokenRefreshed', 3, 15_000);
    expect(world.idp.counts.refreshToken - grantsBefore).toBe(3);
    const times = tokenEndpointRequests(world.idp, signedInAt).map((r) => r.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(TTL_SECONDS * 1000 * 0.4); // not a loop
      expect(gap).toBeLessThan(TTL_SECONDS * 1000); // before the previous token's expiry
    }
    console.log(`[timer] ${TTL_SECONDS}-s tokens: refresh grants at +${times.map((t) => t - signedInAt).join(' ms, +')} ms after sign-in`);
  });

  it('single flight: 240 concurrent token.get on 4 connections during expiry → exactly one refresh grant, one new token for all', async () => {
    // The timer at expiry (no lead), so it is token.get's own check that has to refresh.
    const { harness, app } = await signedInBroker({ refresh: { leadSeconds: 0, jitterSeconds: 0 } });
    const apps = [app];
    for (let i = 0; i < 3; i++) {
      const other = await client(harness, { clientName: `app-${i}` });
      world.defer(() => other.close());
      apps.push(other);
    }
    const old = await app.getToken({ minValidSeconds: 0 });
    const status = await profileStatus(app);
    // Wait until 1.8 s are left, less than the minValidSeconds the apps below ask for (3 s: an explicit value
    // is honoured up to the lifetime less a margin), while the token is still valid.
    const fireAt = status.expiresAt! - 1_800;
    const grantsBefore = world.idp.counts.refreshToken;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, fireAt - Date.now())));
    // Nothing refreshed while waiting (the timer is at expiry): the refresh below is token.get's own.
    expect(world.idp.counts.refreshToken - grantsBefore).toBe(0);
    expect((await profileStatus(app)).expiresAt).toBe(status.expiresAt);

    const results = await Promise.all(apps.flatMap((a) => Array.from({ length: 60 }, () => a.getToken({ minValidSeconds: 3 }))));
    expect(results).toHaveLength(240);
    expect(world.idp.counts.refreshToken - grantsBefore).toBe(1);
    const tokens = new Set(results.map((r) => r.accessToken));
    expect(tokens.size).toBe(1);
    const [fresh] = [...tokens];
    expect(fresh).not.toBe(old.accessToken);
    expect(await world.idp.introspect(fresh!)).toMatchObject({ active: true });
    // One refresh in the daemon's log too.
    expect(harness.daemon.logs().filter((l) => l['msg'] === 'access token refreshed')).toHaveLength(1);
  });
});
