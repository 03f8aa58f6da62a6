/**
 * A daemon that was not running for longer than a token's life — as after a laptop's sleep — is simulated
 * for real: SIGSTOP for 16 s (more than the 5-second token and the 10-second jump threshold plus one 5-second
 * watch interval), then SIGCONT. The clock watch must log the jump, and the first token.get must get a fresh
 * token (refreshed before answering), with one refresh grant at the IdP. The fake-timer variant (a jump of
 * the wall clock while timers stand still) is in test/unit/session-refresh.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { BrokerHarness } from '../support/broker.js';
import { client, recordEvents, signIn, sleep, startRefreshBroker, useRefreshWorld, waitForEvent, waitForLog } from '../support/refresh-e2e.js';

const TTL_SECONDS = 5;
const STOPPED_MS = 16_000;

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS });
let harness: BrokerHarness | undefined;

// Runs before the world closes the browser and the IdP ("after" hooks run as a stack).
afterAll(async () => {
  if (harness && harness.daemon.child.exitCode === null) harness.daemon.child.kill('SIGCONT');
  await harness?.stop();
});

describe('sleep and clock jumps', () => {
  it('after a SIGSTOP longer than the token life, the watch logs the jump and token.get refreshes before answering', { timeout: 45_000 }, async () => {
    harness = await startRefreshBroker(world.idp);
    const app = await client(harness, { timeoutMs: 10_000 });
    await signIn(harness, world.user, app);
    const events = await recordEvents(app);
    await waitForEvent(events, 'tokenRefreshed', 1, 10_000); // the timer works while awake
    const before = await app.getToken({ minValidSeconds: 0 });

    harness.daemon.child.kill('SIGSTOP');
    await sleep(STOPPED_MS);
    expect(await world.idp.introspect(before.accessToken)).toMatchObject({ active: false }); // died while "asleep"
    const grants = world.idp.counts.refreshToken;
    harness.daemon.child.kill('SIGCONT');

    const after = await app.getToken({ minValidSeconds: 0 });
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.expiresAt).toBeGreaterThan(Date.now());
    expect(await world.idp.introspect(after.accessToken)).toMatchObject({ active: true });
    expect(world.idp.counts.refreshToken - grants).toBe(1);

    const jump = await waitForLog(harness, (line) => line['msg'] === 'wall clock jumped (sleep or clock change): re-checking sessions', 10_000);
    expect(jump['driftMs']).toBeGreaterThanOrEqual(10_000);
    expect(jump['driftMs']).toBeLessThanOrEqual(STOPPED_MS + 1_000);
    // Everything that woke up (the late timer, the watch, the app) shared that one refresh.
    await sleep(500);
    expect(world.idp.counts.refreshToken - grants).toBe(1);
    await app.close();
  });
});
