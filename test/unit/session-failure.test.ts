/**
 * A Session when the refresh token dies (permanent failures and the two policies), when the provider
 * rotates refresh tokens, and when an app's API rejects a token (the 401 path). Fake clock, scripted
 * token endpoint, in-memory keychain.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokerError } from '../../proto/index.js';
import type { StoredTokens } from '../../daemon/store/types.js';
import { MemoryStore } from '../support/memory-store.js';
import { METADATA, settle, signedInTokens, startSession, type SessionHarness } from '../support/session-fakes.js';

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

let harness: SessionHarness | undefined;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  harness?.session.dispose();
  harness = undefined;
  vi.useRealTimers();
});

async function start(...args: Parameters<typeof startSession>): Promise<SessionHarness> {
  harness = await startSession(...args);
  return harness;
}

const eventsNamed = (h: SessionHarness, name: string) => h.events.filter((e) => e.event === name);
const invalidGrant = { kind: 'status', status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } } as const;

async function failPermanently(h: SessionHarness): Promise<void> {
  h.provider.answer = invalidGrant;
  await vi.advanceTimersByTimeAsync(h.session.status().nextRefreshAt! - Date.now());
  expect(h.provider.refreshes()).toHaveLength(1);
}

describe('permanent failures', () => {
  it('invalid_grant: tokens dropped from memory and keychain, loginRequired, and no further attempts', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    await failPermanently(h);
    expect(h.session.status()).toMatchObject({ state: 'login-required', reason: 'invalid_grant', lastRefresh: { ok: false, code: 'LOGIN_REQUIRED' } });
    expect(h.session.status().expiresAt).toBeUndefined();
    expect(h.session.status().nextRefreshAt).toBeUndefined();
    expect(await h.store.load('main')).toBeUndefined();
    expect(eventsNamed(h, 'loginRequired').map((e) => e.data)).toEqual([{ profile: 'main', reason: 'invalid_grant' }]);
    expect(eventsNamed(h, 'refreshFailed').map((e) => e.data)).toEqual([{ profile: 'main', code: 'LOGIN_REQUIRED' }]);

    // An hour of apps asking and timers running: not one more attempt.
    for (let i = 0; i < 60; i++) {
      await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
      await vi.advanceTimersByTimeAsync(MINUTE);
    }
    expect(h.provider.refreshes()).toHaveLength(1);
  });

  it('other 4xx (invalid_client) end the session too; the app that was waiting is told LOGIN_REQUIRED', async () => {
    const h = await start({ profile: { refresh: { leadSeconds: 0, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'status', status: 401, body: { error: 'invalid_client' } };
    await vi.advanceTimersByTimeAsync(5 * MINUTE - 10 * SECOND);
    const outcome = await settle(h.getToken());
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: BrokerError }).error.code).toBe('LOGIN_REQUIRED');
    // …and that app's request is what opens the browser (policy relogin, on demand).
    expect(h.session.status()).toMatchObject({ state: 'logging-in', reason: 'invalid_client' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.browser).toHaveLength(1);
  });

  describe('policy "relogin" (keep the provider session)', () => {
    it('on demand: the next token.get opens the authorize URL, once per failure, without prompt=login', async () => {
      const h = await start({ tokens: signedInTokens(5 * MINUTE) });
      await failPermanently(h);
      expect(h.browser).toEqual([]); // no app asked yet
      await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED', message: expect.stringMatching(/browser window was opened/) as unknown });
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser).toHaveLength(1);
      const url = new URL(h.browser[0]!);
      expect(url.origin + url.pathname).toBe(METADATA.authorizationEndpoint);
      expect(url.searchParams.get('prompt')).toBeNull();
      expect(h.provider.revocations()).toHaveLength(0); // no logout flow
      expect(h.session.state).toBe('logging-in');
      await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser).toHaveLength(1);
    });

    it('the app whose own request met the failure is the one that opens the browser', async () => {
      const h = await start({ profile: { refresh: { leadSeconds: 0, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
      h.provider.answer = invalidGrant;
      await vi.advanceTimersByTimeAsync(5 * MINUTE - 10 * SECOND);
      await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED', message: expect.stringMatching(/browser window was opened/) as unknown });
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser).toHaveLength(1);
    });

    it('immediately: the browser opens at the failure, with no app asking', async () => {
      const h = await start({ profile: { reloginBrowser: 'immediately' }, tokens: signedInTokens(5 * MINUTE) });
      await failPermanently(h);
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser).toHaveLength(1);
      expect(new URL(h.browser[0]!).searchParams.get('prompt')).toBeNull();
      await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser).toHaveLength(1);
    });
  });

  describe('policy "logout" (full logout, forcing a fresh sign-in)', () => {
    it('on demand: revokes at once; when an app asks, the provider logout page, then the sign-in with prompt=login', async () => {
      const h = await start({ profile: { onRefreshFailure: 'logout' }, tokens: signedInTokens(5 * MINUTE) });
      await failPermanently(h);
      expect(h.provider.revocations()).toHaveLength(1);
      expect(h.provider.revocations()[0]!.form).toMatchObject({ token: 'rt-0', token_type_hint: 'refresh_token' });
      expect(h.browser).toEqual([]);
      await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser).toHaveLength(2);
      const logoutUrl = new URL(h.browser[0]!);
      expect(logoutUrl.origin + logoutUrl.pathname).toBe(METADATA.endSessionEndpoint);
      // No id_token_hint (the URL reaches the browser's command line); client_id names the client.
      expect(logoutUrl.searchParams.get('id_token_hint')).toBeNull();
      expect(logoutUrl.searchParams.get('client_id')).not.toBeNull();
      const authorize = new URL(h.browser[1]!);
      expect(authorize.origin + authorize.pathname).toBe(METADATA.authorizationEndpoint);
      expect(authorize.searchParams.get('prompt')).toBe('login');
      expect(h.provider.revocations()).toHaveLength(1);
      expect(h.provider.refreshes()).toHaveLength(1);
    });

    it('an app that asks the moment loginRequired arrives still gets the logout page first', async () => {
      const asked: Array<Promise<unknown>> = [];
      const h = await start({
        profile: { onRefreshFailure: 'logout' },
        tokens: signedInTokens(5 * MINUTE),
        onEvent: (event) => {
          if (event.event === 'loginRequired') asked.push(settle(harness!.getToken()));
        },
      });
      await failPermanently(h);
      await Promise.all(asked);
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser.map((u) => new URL(u).pathname)).toEqual([
        new URL(METADATA.endSessionEndpoint!).pathname,
        new URL(METADATA.authorizationEndpoint).pathname,
      ]);
    });

    it('immediately: logout page and sign-in at the failure', async () => {
      const h = await start({ profile: { onRefreshFailure: 'logout', reloginBrowser: 'immediately' }, tokens: signedInTokens(5 * MINUTE) });
      await failPermanently(h);
      await vi.advanceTimersByTimeAsync(0);
      expect(h.browser.map((u) => new URL(u).pathname)).toEqual([
        new URL(METADATA.endSessionEndpoint!).pathname,
        new URL(METADATA.authorizationEndpoint).pathname,
      ]);
      expect(new URL(h.browser[1]!).searchParams.get('prompt')).toBe('login');
    });
  });
});

describe('refresh-token rotation', () => {
  it('the rotated refresh token is in the keychain before the new access token is handed out', async () => {
    const store = new MemoryStore();
    const h = await start({ store, profile: { refresh: { leadSeconds: 0, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    const saves: Array<{ at: number; refreshToken: string | undefined }> = [];
    const save = store.save.bind(store);
    store.save = async (profile: string, tokens: StoredTokens) => {
      await new Promise((resolve) => setTimeout(resolve, 500)); // a slow keychain
      await save(profile, tokens);
      saves.push({ at: Date.now(), refreshToken: tokens.refreshToken?.reveal() });
    };
    h.provider.rotate = true;
    await vi.advanceTimersByTimeAsync(5 * MINUTE - 10 * SECOND);
    const asked = h.getToken().then(async (token) => ({ token, at: Date.now(), stored: (await store.load('main'))?.refreshToken?.reveal() }));
    // Mid-save, an app content with the old token's remaining life gets the old token, not the unsaved new one.
    await vi.advanceTimersByTimeAsync(250);
    expect(saves).toHaveLength(0);
    expect((await h.getToken({ minValidSeconds: 1 })).accessToken).toBe('at-0');
    await vi.advanceTimersByTimeAsync(750);
    const { token, at, stored } = await asked;
    expect(token.accessToken).toBe('at-1');
    expect(stored).toBe('rt-1');
    expect(saves.at(-1)!.at).toBeLessThanOrEqual(at);
    expect(h.logs.find((l) => l['msg'] === 'access token refreshed')).toMatchObject({ rotated: true });
  });

  it('the same refresh token sent back is not a rotation', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(h.logs.find((l) => l['msg'] === 'access token refreshed')).toMatchObject({ rotated: false });
    expect((await h.store.load('main'))?.refreshToken?.reveal()).toBe('rt-0');
  });

  it('a rotated refresh token the keychain refuses is logged loudly and shown in status; the session goes on', async () => {
    const store = new MemoryStore();
    const h = await start({ store, tokens: signedInTokens(5 * MINUTE) });
    h.provider.rotate = true;
    store.save = () => Promise.reject(new BrokerError('KEYCHAIN_UNAVAILABLE', 'the keyring is locked'));
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    const loud = h.logs.filter((l) => l['level'] === 50);
    expect(loud).toHaveLength(1);
    expect(loud[0]!['msg']).toMatch(/ROTATED REFRESH TOKEN NOT SAVED/);
    expect(h.session.status()).toMatchObject({ state: 'active', reason: 'keychain_write_failed' });
    expect((await h.getToken()).accessToken).toBe('at-1');
    // The next refresh (with the in-memory rotated token) saves again and clears the warning.
    store.save = MemoryStore.prototype.save.bind(store);
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    expect(h.provider.refreshes()).toHaveLength(2);
    expect(h.provider.refreshes()[1]!.form['refresh_token']).toBe('rt-1');
    expect(h.session.status().reason).toBeUndefined();
    expect((await store.load('main'))?.refreshToken?.reveal()).toBe('rt-2');
  });
});

describe('a token an API rejected (the 401 path)', () => {
  it('ten apps reporting the same rejected token cause one refresh; all get the new token', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'ok', delayMs: 200 };
    const reports = Array.from({ length: 10 }, () => h.getToken({ rejected: 'at-0' }));
    await vi.advanceTimersByTimeAsync(300);
    const results = await Promise.all(reports);
    expect(new Set(results.map((r) => r.accessToken))).toEqual(new Set(['at-1']));
    // Stragglers reporting the old token get the new one at once.
    const late = await Promise.all(Array.from({ length: 10 }, () => h.getToken({ rejected: 'at-0' })));
    expect(new Set(late.map((r) => r.accessToken))).toEqual(new Set(['at-1']));
    expect(h.provider.refreshes()).toHaveLength(1);
  });

  it('a rejected token is never handed back when the refresh fails', async () => {
    const h = await start({ profile: { refresh: { retry: { limit: 0, baseDelayMs: 60_000, maxDelayMs: 60_000 } } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'status', status: 503 };
    const outcome = await settle(h.getToken({ rejected: 'at-0', waitMs: 1_000 }));
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: BrokerError }).error).toMatchObject({ code: 'IDP_UNAVAILABLE', retryAt: expect.any(Number) as unknown });
    // Apps that did not see a 401 still get the (valid) token.
    expect((await h.getToken()).accessToken).toBe('at-0');
  });
});
