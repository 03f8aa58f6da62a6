/**
 * A wrong clock during refresh must not end the session. The real daemon (dist/), the test IdP (oidc-provider,
 * refresh-token rotation on) behind its proxy, headless Chromium for the sign-in, gnome-keyring. Each daemon's
 * wall clock is moved while it runs by a preloaded module (test only: NODE_OPTIONS=--import) that shifts `Date`
 * by the offset written in a file; the IdP keeps the right time.
 *
 * For each offset (−2 h, −120 s, +2 h, +24 h): sign in with the right clock, move the clock, force two refreshes
 * (an app reports its token rejected), set the clock right, force another. The refreshed ID tokens fail their
 * `iat`/`exp` checks on the daemon's clock; they are checked again on the provider's (its `Date` header) and the
 * refresh completes. Then the same with the `Date` header removed: the refresh fails transiently (retried with
 * backoff), the rotated refresh token is kept, and once the clock is right the backoff timer refreshes.
 *
 * Counted for every daemon: keychain entry present after every step (0 deletions), 0 revocations and 0
 * `invalid_grant` at the IdP, the refresh token in the keychain active at the IdP (0 lost), no `loginRequired`,
 * no browser opened, and `status.clockSkewSeconds` ≈ the offset.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerError, type BrokerClient, type BrokerEvent } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { runCli, tempDir } from '../support/daemon.js';
import { profileStatus, recordEvents, sleep, storedEntry, useRefreshWorld, waitFor } from '../support/refresh-e2e.js';

const TOKEN = /^\/token$/;
const HOUR = 3_600;
const OFFSETS = [-2 * HOUR, -120, 2 * HOUR, 24 * HOUR];
const RETRY = { limit: 1, baseDelayMs: 500, maxDelayMs: 2_000 };

const world = useRefreshWorld({ accessTokenTtl: 600, rotateRefreshTokens: true, frontProxy: true });
let preload: string;
const rows: string[][] = [
  [
    'daemon clock vs IdP',
    'Date header',
    'refreshes while off',
    'status clockSkewSeconds',
    'after the clock is right',
    'deleted / revoked / invalid_grant / lost / loginRequired / browser',
  ],
];

/** Shifts Date by the number of ms in the file named by TOKENBROKER_TEST_CLOCK_FILE, re-read every 20 ms. */
function clockModule(): string {
  const file = path.join(tempDir('tb-clock-'), 'moved-clock.mjs');
  fs.writeFileSync(
    file,
    `import fs from 'node:fs';
const file = process.env.TOKENBROKER_TEST_CLOCK_FILE;
let offset = 0;
const read = () => { try { offset = Number(fs.readFileSync(file, 'utf8')) || 0; } catch {} };
read();
setInterval(read, 20).unref();
const RealDate = Date;
class MovedDate extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + offset); else super(...args); }
  static now() { return RealDate.now() + offset; }
}
globalThis.Date = MovedDate;
`,
  );
  return file;
}

beforeAll(() => {
  preload = clockModule();
});
// These run before the world's own ("after" hooks run as a stack): the table before the IdP closes, faults cleared
// before the clean-ups.
afterAll(() => {
  console.log(['[clock-skew] sessions across clock offsets during refresh (rotation on):', ...rows.map((r) => '  ' + r.join(' | '))].join('\n'));
});
afterEach(() => {
  world.idp.faults!.clearFaults();
});

interface Rig {
  readonly harness: BrokerHarness;
  readonly app: BrokerClient;
  readonly events: BrokerEvent[];
  setClock(offsetSeconds: number): Promise<void>;
}

async function rig(): Promise<Rig> {
  const clockFile = path.join(tempDir('tb-clockfile-'), 'offset');
  fs.writeFileSync(clockFile, '0');
  const { harness, app } = await world.signedIn(
    { httpTimeoutSeconds: 2, refresh: { retry: RETRY } },
    { broker: { env: { NODE_OPTIONS: `--import=${preload}`, TOKENBROKER_TEST_CLOCK_FILE: clockFile } }, client: { timeoutMs: 10_000 } },
  );
  const events = await recordEvents(app);
  return {
    harness,
    app,
    events,
    // Moves the clock, then waits until the daemon's clock watch has seen the jump (it checks every 5 s), so that
    // each step starts from a settled daemon.
    setClock: async (offsetSeconds) => {
      const jumps = jumpLines(harness);
      fs.writeFileSync(clockFile, String(offsetSeconds * 1000));
      await waitFor(
        () => jumpLines(harness) > jumps,
        15_000,
        () => 'the daemon noticing the clock change',
      );
      await sleep(200);
    },
  };
}

const jumpLines = (harness: BrokerHarness) => harness.daemon.logs().filter((l) => String(l['msg']).startsWith('wall clock jumped')).length;

async function answer(promise: Promise<{ accessToken: string }>): Promise<{ token?: string; code?: string }> {
  try {
    return { token: (await promise).accessToken };
  } catch (error) {
    if (error instanceof BrokerError) return { code: error.code };
    throw error;
  }
}

/** The session is intact: its keychain entry is there and its refresh token is the live one at the IdP. */
async function expectIntact(r: Rig, what: string): Promise<void> {
  const entry = await storedEntry(r.harness);
  expect(entry, `${what}: keychain entry`).toBeDefined();
  expect((await world.idp.introspect(String(entry!['refreshToken']))).active, `${what}: the stored refresh token is live at the IdP`).toBe(true);
  const status = await profileStatus(r.app);
  expect(['active', 'refreshing'], what).toContain(status.state);
  expect(status.reason, what).toBeUndefined();
}

describe('a wrong clock during refresh', () => {
  for (const offset of OFFSETS) {
    it(
      `${offset > 0 ? '+' : ''}${offset} s: refreshes complete on the provider's clock; the session survives; status shows the skew`,
      { timeout: 90_000 },
      async () => {
        const before = { ...world.idp.counts };
        const r = await rig();
        await r.setClock(offset);
        let refreshes = 0;
        for (let i = 0; i < 2; i++) {
          const current = await r.app.getToken();
          const next = await answer(r.app.getToken({ rejected: current.accessToken }));
          expect(next.code, `offset ${offset}: refresh ${i + 1}`).toBeUndefined();
          expect(next.token).not.toBe(current.accessToken);
          expect((await world.idp.introspect(next.token!)).active).toBe(true);
          refreshes++;
          await expectIntact(r, `offset ${offset}, refresh ${i + 1}`);
        }
        const status = await profileStatus(r.app);
        expect(status.lastRefresh).toMatchObject({ ok: true });
        // The provider's clock minus ours: the opposite of the offset (±2 s: Date has whole seconds, and load).
        expect(Math.abs(status.clockSkewSeconds! + offset), `clockSkewSeconds ${status.clockSkewSeconds}`).toBeLessThan(3);
        const skewSeen = status.clockSkewSeconds!;
        const text = await runCli(['status'], { env: { TOKENBROKER_SOCKET: r.harness.daemon.socketPath } });
        expect(text.stdout).toContain(`clock skew (main): this machine's clock is`);
        expect(text.stdout).toContain(offset < 0 ? 'behind the provider' : 'ahead of the provider');

        await r.setClock(0);
        const current = await r.app.getToken();
        const after = await answer(r.app.getToken({ rejected: current.accessToken }));
        expect(after.code).toBeUndefined();
        await expectIntact(r, `offset ${offset}, clock right again`);
        expect(Math.abs((await profileStatus(r.app)).clockSkewSeconds!)).toBeLessThan(3);

        const deleted = 0; // expectIntact found the entry after every step
        const revoked = world.idp.counts.revocation - before.revocation;
        const invalidGrant = world.idp.counts.tokenEndpointErrors - before.tokenEndpointErrors;
        const loginRequired = r.events.filter((e) => e.event === 'loginRequired').length;
        const browser = r.harness.browserUrlsPending();
        expect([revoked, invalidGrant, loginRequired, browser]).toEqual([0, 0, 0, 0]);
        rows.push([
          `${offset > 0 ? '+' : ''}${offset} s`,
          'yes',
          `${refreshes} ok`,
          String(skewSeen),
          'refresh ok',
          `${deleted} / ${revoked} / ${invalidGrant} / 0 / ${loginRequired} / ${browser}`,
        ]);
      },
    );
  }

  it(
    'without a Date header: the refresh fails transiently, the rotated refresh token is kept, and the backoff timer refreshes once the clock is right',
    { timeout: 90_000 },
    async () => {
      const before = { ...world.idp.counts };
      const r = await rig();
      world.idp.faults!.setFault(TOKEN, { kind: 'forward', dropHeaders: ['date'] });
      const offset = -2 * HOUR;
      await r.setClock(offset);
      const current = await r.app.getToken();
      const refreshTokenBefore = String((await storedEntry(r.harness))!['refreshToken']);
      const forced = await answer(r.app.getToken({ rejected: current.accessToken }));
      expect(forced.code).toBe('IDP_UNAVAILABLE');
      const status = await profileStatus(r.app);
      expect(status).toMatchObject({ lastRefresh: { ok: false, code: 'IDP_ERROR' } });
      expect(status.consecutiveFailures).toBeGreaterThanOrEqual(1);
      await expectIntact(r, 'no Date header, clock off');
      // The rotated refresh token replaced the spent one in the keychain.
      expect(String((await storedEntry(r.harness))!['refreshToken'])).not.toBe(refreshTokenBefore);
      expect((await world.idp.introspect(refreshTokenBefore)).active).toBe(false);
      // Other apps still get the access token in use.
      expect((await r.app.getToken()).accessToken).toBe(current.accessToken);
      const failuresWhileOff = (await profileStatus(r.app)).consecutiveFailures ?? 0;

      await r.setClock(0);
      // No app asks: the backoff timer refreshes (the retry delay is at most 2 s here).
      await waitFor(
        async () => (await profileStatus(r.app)).lastRefresh?.ok === true,
        20_000,
        () => 'a successful refresh on the backoff timer',
      );
      await expectIntact(r, 'no Date header, clock right again');
      expect((await r.app.getToken()).accessToken).not.toBe(current.accessToken);

      const revoked = world.idp.counts.revocation - before.revocation;
      const invalidGrant = world.idp.counts.tokenEndpointErrors - before.tokenEndpointErrors;
      const loginRequired = r.events.filter((e) => e.event === 'loginRequired').length;
      const browser = r.harness.browserUrlsPending();
      expect([revoked, invalidGrant, loginRequired, browser]).toEqual([0, 0, 0, 0]);
      rows.push([
        `${offset} s`,
        'removed',
        `${failuresWhileOff} failed (IDP_ERROR), retried`,
        '(not measured)',
        'refreshed by the backoff timer',
        `0 / ${revoked} / ${invalidGrant} / 0 / ${loginRequired} / ${browser}`,
      ]);
    },
  );
});
