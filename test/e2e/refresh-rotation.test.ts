/**
 * Refresh-token rotation, end to end, with the daemon killed (SIGKILL, no chance to clean up) right after
 * refreshes: the refresh token in the keychain must always be one the IdP still honours. Rotation on and off
 * at the IdP (oidc-provider: a rotated-away refresh token used again revokes the whole grant, so a daemon that
 * kept the old one would come back signed out).
 */
import { describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { profileStatus, storedEntry, useRefreshWorld, waitForLog } from '../support/refresh-e2e.js';

const TTL_SECONDS = 5;
const KILLS = 3;

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS });

const refreshed = (line: Record<string, unknown>) => line['msg'] === 'access token refreshed';

async function signedIn(): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  return world.signedIn();
}

/** Waits for the daemon's next timer refresh, SIGKILLs it the moment the log line appears, starts it again. */
async function killRightAfterRefresh(harness: BrokerHarness): Promise<Record<string, unknown>> {
  const line = await waitForLog(harness, refreshed, 10_000);
  harness.daemon.child.kill('SIGKILL');
  await harness.daemon.exited;
  await harness.restart();
  expect(harness.daemon.output()).toMatch(/session restored from the keychain/);
  return line;
}

async function rotationRun(rotate: boolean): Promise<void> {
  world.idp.setRotation(rotate);
  const { harness, app } = await signedIn();
  const errorsBefore = world.idp.counts.tokenEndpointErrors;
  const grantsBefore = world.idp.counts.refreshToken;
  const refreshTokens = [(await storedEntry(harness))!['refreshToken'] as string];
  for (let i = 0; i < KILLS; i++) {
    const line = await killRightAfterRefresh(harness);
    expect(line['rotated']).toBe(rotate);
    const stored = (await storedEntry(harness))!['refreshToken'] as string;
    if (rotate) expect(stored).not.toBe(refreshTokens.at(-1));
    else expect(stored).toBe(refreshTokens[0]);
    refreshTokens.push(stored);
    expect(await world.idp.introspect(stored)).toMatchObject({ active: true });
  }
  // The last restarted daemon refreshes too, by its timer, with the refresh token it found in the keychain.
  const line = await waitForLog(harness, refreshed, 10_000);
  expect(line['rotated']).toBe(rotate);
  const token = await app.getToken();
  expect(await world.idp.introspect(token.accessToken)).toMatchObject({ active: true, sub: 'alice' });
  expect(await profileStatus(app)).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
  expect(world.idp.counts.refreshToken - grantsBefore).toBe(KILLS + 1);
  expect(world.idp.counts.tokenEndpointErrors).toBe(errorsBefore); // not one invalid_grant
  if (rotate) {
    expect(new Set(refreshTokens).size).toBe(refreshTokens.length);
    // A rotated-away refresh token is dead at the IdP: the keychain never kept one of those.
    for (const old of refreshTokens.slice(0, -1)) expect(await world.idp.introspect(old)).toMatchObject({ active: false });
  }
}

describe('refresh-token rotation and kill -9', () => {
  it(`rotation on: killed ${KILLS}× right after a rotated refresh, the restarted daemon refreshes with the rotated token`, async () => {
    await rotationRun(true);
  }, 60_000);

  it(`rotation off: the one refresh token survives ${KILLS} kills and keeps working`, async () => {
    await rotationRun(false);
  }, 60_000);

  it('rotation switched on at the IdP mid-session is picked up by the next refresh', async () => {
    world.idp.setRotation(false);
    const { harness } = await signedIn();
    const first = (await storedEntry(harness))!['refreshToken'] as string;
    await waitForLog(harness, refreshed, 10_000);
    expect((await storedEntry(harness))!['refreshToken']).toBe(first);
    world.idp.setRotation(true);
    const line = await waitForLog(harness, refreshed, 10_000, 1);
    expect(line['rotated']).toBe(true);
    const second = (await storedEntry(harness))!['refreshToken'] as string;
    expect(second).not.toBe(first);
    expect(await world.idp.introspect(second)).toMatchObject({ active: true });
  }, 30_000);
});
