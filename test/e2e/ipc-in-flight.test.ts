/**
 * The limit of MAX_IN_FLIGHT_PER_CONNECTION (64) requests in flight per connection, with a method that
 * really stays in flight: `token.get` for a token an API "rejected" waits for a refresh, and the IdP's token
 * endpoint answers late (the fault proxy in front of the real IdP). The daemon's limit is checked on a raw
 * connection; the client library's queue (it must never send more than 64) with 100 concurrent calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient } from '../../client/index.js';
import { MAX_IN_FLIGHT_PER_CONNECTION } from '../../proto/index.js';
import { type BrokerHarness } from '../support/broker.js';
import { signInWithDevForm } from '../support/dev-form-login.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { rawConnect } from '../support/raw-client.js';
import { startRefreshBroker } from '../support/refresh-e2e.js';

const TOKEN_ENDPOINT = /^\/token$/;
/** How late the IdP answers a refresh: long enough for every request to be in flight together. */
const REFRESH_DELAY_MS = 3_000;

let idp: TestIdp;
let harness: BrokerHarness;
let app: BrokerClient;

beforeAll(async () => {
  idp = await startTestIdp({ frontProxy: true, accessTokenTtl: 3600 });
  harness = await startRefreshBroker(idp, {}, { logLevel: 'info' });
  app = await connect({ socketPath: harness.daemon.socketPath, timeoutMs: 30_000 });
  // Sign in without a browser: the IdP's dev login form, posted by hand.
  const login = app.login({ openBrowser: true });
  const redirect = await signInWithDevForm(await harness.nextBrowserUrl());
  await app.callback(redirect);
  await login;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await harness?.stop();
  await idp?.close();
});

/** The token apps hold now; "rejecting" it makes every token.get wait for one (slow) refresh. */
async function currentToken(): Promise<string> {
  return (await app.getToken()).accessToken;
}

describe('requests in flight per connection', () => {
  it(`the daemon answers the ${MAX_IN_FLIGHT_PER_CONNECTION + 1}th slow token.get on one connection with TOO_MANY_REQUESTS, and only that one`, async () => {
    const rejected = await currentToken();
    idp.faults!.setFault(TOKEN_ENDPOINT, { kind: 'forward', delayMs: REFRESH_DELAY_MS });
    const raw = await rawConnect(harness.daemon.socketPath);
    try {
      const count = MAX_IN_FLIGHT_PER_CONNECTION + 1;
      const started = Date.now();
      for (let id = 1; id <= count; id++) raw.request(id, 'token.get', { rejected, waitMs: 20_000 });
      const answers: Array<{ id: unknown; at: number; code?: unknown; token?: unknown }> = [];
      while (answers.length < count) {
        const { data } = await raw.next(20_000);
        const error = data['error'] as { code?: unknown } | undefined;
        const result = data['result'] as { accessToken?: unknown } | undefined;
        answers.push({ id: data['id'], at: Date.now() - started, code: error?.code, token: result?.accessToken });
      }
      const refused = answers.filter((a) => a.code === 'TOO_MANY_REQUESTS');
      expect(refused.map((a) => a.id)).toEqual([count]);
      // Refused at once, not after the refresh; the others waited for the one refresh and got its token.
      expect(refused[0]!.at).toBeLessThan(REFRESH_DELAY_MS);
      const served = answers.filter((a) => a.id !== count);
      expect(served).toHaveLength(MAX_IN_FLIGHT_PER_CONNECTION);
      expect(served.every((a) => a.code === undefined && typeof a.token === 'string' && a.token !== rejected)).toBe(true);
      expect(Math.min(...served.map((a) => a.at))).toBeGreaterThanOrEqual(REFRESH_DELAY_MS - 500);
    } finally {
      raw.close();
      idp.faults!.setFault(TOKEN_ENDPOINT, null);
    }
  }, 60_000);

  it('the client library queues calls beyond the limit instead of sending them: 100 concurrent slow token.get all succeed', async () => {
    const rejected = await currentToken();
    idp.faults!.setFault(TOKEN_ENDPOINT, { kind: 'forward', delayMs: REFRESH_DELAY_MS });
    const caller = await connect({ socketPath: harness.daemon.socketPath, timeoutMs: 30_000 });
    try {
      const started = Date.now();
      const outcomes = await Promise.allSettled(Array.from({ length: 100 }, () => caller.getToken({ rejected })));
      const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as { code?: string }).code ?? String(o.reason)] : []));
      expect(failures).toEqual([]);
      const tokens = new Set(outcomes.map((o) => (o as PromiseFulfilledResult<{ accessToken: string }>).value.accessToken));
      expect(tokens.has(rejected)).toBe(false);
      expect(tokens.size).toBe(1); // one refresh for all of them
      expect(Date.now() - started).toBeGreaterThanOrEqual(REFRESH_DELAY_MS - 500); // they did wait in flight
    } finally {
      await caller.close();
      idp.faults!.setFault(TOKEN_ENDPOINT, null);
    }
  }, 60_000);
});
