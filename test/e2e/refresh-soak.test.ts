/**
 * Soak: tens of refresh cycles of 5-second access tokens while several apps ask continuously. No app may
 * ever receive a token the IdP considers expired, and the IdP sees one refresh grant per cycle.
 *
 * TOKENBROKER_SOAK_CYCLES sets the number of cycles (default 20, ≈ 40 s; each cycle is about two thirds of a
 * token lifetime: the timer refreshes a third early, and the default minValidSeconds sits below that).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { client, recordEvents, signIn, sleep, startRefreshBroker, useRefreshWorld, waitForEvent } from '../support/refresh-e2e.js';

const TTL_SECONDS = 5;
const CYCLES = Number(process.env['TOKENBROKER_SOAK_CYCLES'] ?? 20);
/** Apps, each with its own connection and its own idea of how much validity it needs. */
const APPS: ReadonlyArray<{ minValidSeconds?: number; pauseMs: number }> = [
  { pauseMs: 10 }, // the profile default (30 s, at most a sixth of the lifetime)
  { pauseMs: 25 },
  { minValidSeconds: 1, pauseMs: 15 },
  { minValidSeconds: 0, pauseMs: 10 }, // "anything still valid"
  { minValidSeconds: 0, pauseMs: 40 },
  { minValidSeconds: 2, pauseMs: 30 },
];

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS });
let harness: BrokerHarness | undefined;
const apps: BrokerClient[] = [];

// Runs before the world closes the browser and the IdP ("after" hooks run as a stack).
afterAll(async () => {
  for (const app of apps) await app.close();
  await harness?.stop();
});

interface Receipt {
  readonly token: string;
  readonly at: number;
  readonly expiresAt: number;
  readonly app: number;
}

describe('soak', () => {
  it(`${CYCLES} refresh cycles with apps asking continuously: never an expired token, one grant per cycle`, { timeout: 60_000 + CYCLES * 4_000 }, async () => {
    harness = await startRefreshBroker(world.idp, {}, { logLevel: 'info' });
    const main = await client(harness);
    apps.push(main);
    await signIn(harness, world.user, main);
    const events = await recordEvents(main);
    for (let i = 0; i < APPS.length; i++) apps.push(await client(harness, { clientName: `soak-${i}` }));

    // Each distinct token is introspected the moment it is first seen: its real expiry at the IdP.
    const idpExpiry = new Map<string, Promise<number>>();
    const receipts: Receipt[] = [];
    const errors: unknown[] = [];
    const grantsBefore = world.idp.counts.refreshToken;
    const refreshedBefore = events.filter((e) => e.event === 'tokenRefreshed').length;
    const started = Date.now();
    let running = true;

    const loops = APPS.map(async (spec, i) => {
      const app = apps[i + 1]!;
      while (running) {
        try {
          const token = await app.getToken(spec.minValidSeconds === undefined ? {} : { minValidSeconds: spec.minValidSeconds });
          const at = Date.now();
          receipts.push({ token: token.accessToken, at, expiresAt: token.expiresAt, app: i });
          if (!idpExpiry.has(token.accessToken)) {
            idpExpiry.set(
              token.accessToken,
              world.idp.introspect(token.accessToken).then((r) => (r.active ? r.exp! * 1000 : -1)),
            );
          }
        } catch (error) {
          errors.push(error);
        }
        await sleep(spec.pauseMs);
      }
    });
    await waitForEvent(events, 'tokenRefreshed', refreshedBefore + CYCLES, 60_000 + CYCLES * 4_000);
    running = false;
    await Promise.all(loops);
    const elapsed = Date.now() - started;
    const cycles = events.filter((e) => e.event === 'tokenRefreshed').length - refreshedBefore;
    const grants = world.idp.counts.refreshToken - grantsBefore;

    expect(errors).toEqual([]);
    // Never expired: every receipt was before the IdP's exp of that token (introspected while it was active).
    const expiries = new Map<string, number>();
    for (const [token, exp] of idpExpiry) expiries.set(token, await exp);
    const dead = [...expiries].filter(([, exp]) => exp < 0);
    expect(dead, 'tokens the IdP already considered inactive when an app got them').toEqual([]);
    const late = receipts.filter((r) => r.at >= expiries.get(r.token)!);
    expect(late, 'receipts at or after the IdP expiry').toEqual([]);
    // The broker's expiresAt is never later than the IdP's.
    expect(receipts.filter((r) => r.expiresAt > expiries.get(r.token)!)).toEqual([]);
    const minLeft = Math.min(...receipts.map((r) => expiries.get(r.token)! - r.at));

    // Grants ≈ cycles: exactly one per tokenRefreshed (one more may be in flight at the end).
    expect(grants).toBeGreaterThanOrEqual(cycles);
    expect(grants).toBeLessThanOrEqual(cycles + 1);
    // And no more cycles than the lifetime allows: each token serves at least a third of its life.
    expect(cycles).toBeLessThanOrEqual(Math.ceil(elapsed / ((TTL_SECONDS * 1000) / 3)) + 1);
    // The apps saw (almost) every token.
    expect(expiries.size).toBeGreaterThanOrEqual(cycles - 1);

    console.log(
      `[soak] ${cycles} cycles in ${(elapsed / 1000).toFixed(1)} s: ${grants} refresh grants at the IdP, ` +
        `${receipts.length} tokens handed to ${APPS.length} apps, ${expiries.size} distinct, ` +
        `least validity left at receipt ${minLeft} ms (by the IdP's exp)`,
    );
  });
});
