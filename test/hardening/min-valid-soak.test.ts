/**
 * minValidSeconds soak (docs/hardening-figures.md, "minValidSeconds soak"): 10-second access tokens, apps asking
 * continuously with the default threshold and small explicit ones. The default on-demand threshold sits below the
 * timer's lead, so the timer does the refreshing: about one refresh call per token, none of them on demand, and no
 * app ever receives a token the IdP considers expired (each distinct token is introspected when first seen).
 *
 * TOKENBROKER_MINVALID_SOAK_SECONDS sets the length (default 45 s, about 4½ token lifetimes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { client, recordEvents, signIn, sleep, startRefreshBroker, useRefreshWorld } from '../support/refresh-e2e.js';

const TTL_SECONDS = 10;
const SECONDS = Number(process.env['TOKENBROKER_MINVALID_SOAK_SECONDS'] ?? 45);
const APPS: ReadonlyArray<{ minValidSeconds?: number; pauseMs: number }> = [
  { pauseMs: 5 }, // the profile default (30 s, at most a sixth of the lifetime)
  { pauseMs: 20 },
  { pauseMs: 50 },
  { minValidSeconds: 0, pauseMs: 10 },
  { minValidSeconds: 1, pauseMs: 15 },
  { minValidSeconds: 2, pauseMs: 30 },
];

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS });
let harness: BrokerHarness | undefined;
const apps: BrokerClient[] = [];

afterAll(async () => {
  for (const app of apps) await app.close();
  await harness?.stop();
});

describe('minValidSeconds soak', () => {
  it(
    `${SECONDS} s of 10-second tokens with apps asking continuously: ≤ 1.1 refresh calls per token, none expired`,
    { timeout: 90_000 + SECONDS * 2_000 },
    async () => {
      harness = await startRefreshBroker(world.idp, {}, { logLevel: 'info' });
      const main = await client(harness);
      apps.push(main);
      await signIn(harness, world.user, main);
      const events = await recordEvents(main);
      for (let i = 0; i < APPS.length; i++) apps.push(await client(harness, { clientName: `soak-${i}` }));

      const idpExpiry = new Map<string, Promise<number>>();
      const receipts: Array<{ token: string; at: number; expiresAt: number }> = [];
      const errors: unknown[] = [];
      const grantsBefore = world.idp.counts.refreshToken;
      const logsBefore = harness.daemon.logs().length;
      const started = Date.now();
      let running = true;
      const loops = APPS.map(async (spec, i) => {
        const app = apps[i + 1]!;
        while (running) {
          try {
            const token = await app.getToken(spec.minValidSeconds === undefined ? {} : { minValidSeconds: spec.minValidSeconds });
            receipts.push({ token: token.accessToken, at: Date.now(), expiresAt: token.expiresAt });
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
      await sleep(SECONDS * 1000);
      running = false;
      await Promise.all(loops);
      const elapsed = Date.now() - started;
      const grants = world.idp.counts.refreshToken - grantsBefore;
      const cycles = events.filter((e) => e.event === 'tokenRefreshed').length;
      const refreshed = harness.daemon
        .logs()
        .slice(logsBefore)
        .filter((l) => l['msg'] === 'access token refreshed');
      const byReason = new Map<string, number>();
      for (const line of refreshed) byReason.set(String(line['why']), (byReason.get(String(line['why'])) ?? 0) + 1);

      expect(errors).toEqual([]);
      const expiries = new Map<string, number>();
      for (const [token, exp] of idpExpiry) expiries.set(token, await exp);
      expect(
        [...expiries].filter(([, exp]) => exp < 0),
        'tokens already inactive at the IdP when handed out',
      ).toEqual([]);
      const expired = receipts.filter((r) => r.at >= expiries.get(r.token)!);
      expect(expired, 'receipts at or after the IdP expiry').toEqual([]);
      expect(
        receipts.filter((r) => r.expiresAt > expiries.get(r.token)!),
        "an expiresAt later than the IdP's",
      ).toEqual([]);
      const minLeft = Math.min(...receipts.map((r) => expiries.get(r.token)! - r.at));

      // One refresh call per token: the timer's, shared by everyone (one more may be in flight at the end).
      const perToken = grants / Math.max(1, cycles);
      expect(cycles).toBeGreaterThanOrEqual(Math.floor(SECONDS / TTL_SECONDS));
      expect(grants).toBeLessThanOrEqual(Math.ceil(cycles * 1.1) + 1);
      // The timer does the work: on-demand refreshes only when a timer ran late on a loaded machine (generous).
      const onDemand = byReason.get('on demand') ?? 0;
      expect(onDemand, `refreshes by reason: ${JSON.stringify(Object.fromEntries(byReason))}`).toBeLessThanOrEqual(Math.floor(cycles / 4));

      console.log(
        `[min-valid soak] ${(elapsed / 1000).toFixed(1)} s, ${TTL_SECONDS}-s tokens, ${APPS.length} apps: ${receipts.length} answers, ` +
          `${grants} refresh calls at the IdP for ${cycles} tokens (${perToken.toFixed(2)} per token; ` +
          `${((grants * TTL_SECONDS * 1000) / elapsed).toFixed(2)} per ${TTL_SECONDS} s of wall clock), ` +
          `by reason ${JSON.stringify(Object.fromEntries(byReason))}, expired handed out ${expired.length}, ` +
          `least validity left at receipt ${minLeft} ms (IdP exp)`,
      );
    },
  );
});
