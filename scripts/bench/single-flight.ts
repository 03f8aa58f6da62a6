/**
 * 3. Single-flight: 1000 concurrent token.get requests arriving while the token expires; the IdP counts
 * its token-endpoint calls. Two kinds of round, alternating:
 *  - "min-valid": 900 ms before expiry, asking for minValidSeconds 1: the token is still valid but too
 *    short, so every request needs a refresh (the refresh timer is 900 ms away);
 *  - "expired": 5 ms after the daemon's expiry, when the refresh timer (lead 0) has just fired too.
 */
import { connect, type BrokerClient } from '../../client/index.js';
import type { TokenResult } from '../../proto/index.js';
import type { BenchContext, SectionResult, TargetCheck } from './lib/context.js';
import { delay, idpProfile, signedInBroker } from './lib/env.js';
import { fmt, median, table } from './lib/stats.js';

const REQUESTS = 1000;
const CONNECTIONS = 20; // 50 in flight on each, under the 64 per-connection limit
const TOKEN_TTL_SECONDS = 6;
const SMOKE_TOKEN_TTL_SECONDS = 4;

interface Round {
  readonly kind: 'min-valid' | 'expired';
  readonly tokenEndpointCalls: number;
  readonly answered: number;
  readonly failed: number;
  readonly distinctTokens: number;
  readonly gotOldToken: number;
  readonly expiredAtReceipt: number;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly startedBy: string;
  readonly errorSamples: string[];
}

export async function singleFlight(ctx: BenchContext): Promise<SectionResult> {
  const { idp } = ctx.env;
  const rounds = ctx.smoke ? 2 : 6;
  const ttl = ctx.smoke ? SMOKE_TOKEN_TTL_SECONDS : TOKEN_TTL_SECONDS;
  ctx.log(`3. single-flight: ${rounds} rounds of ${REQUESTS} concurrent requests (${ttl}-second tokens)`);
  idp.setAccessTokenTtl(ttl);
  const harness = await signedInBroker(ctx.env, {
    profiles: { sf: idpProfile(idp, { refresh: { leadSeconds: 0, jitterSeconds: 0, minValidSeconds: 0 } }) },
  });
  const clients: BrokerClient[] = [];
  const results: Round[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await connect({ socketPath: harness.daemon.socketPath, clientName: 'bench-sf' }));
    for (let round = 0; round < rounds; round++) {
      const kind = round % 2 === 0 ? 'min-valid' : 'expired';
      const current = await clients[0]!.getToken();
      const fireAt = kind === 'min-valid' ? current.expiresAt - 900 : current.expiresAt + 5;
      // Counting starts before the requests go out and before the refresh timer (at expiry) can fire.
      await delay(Math.max(0, Math.min(fireAt - 50, current.expiresAt - 200) - Date.now()));
      const logBefore = harness.daemon.logs().length;
      const before = idp.counts.refreshToken;
      await delay(Math.max(0, fireAt - Date.now()));
      const start = Date.now();
      const answers = await Promise.all(
        Array.from({ length: REQUESTS }, (_, i) =>
          clients[i % CONNECTIONS]!.getToken(kind === 'min-valid' ? { minValidSeconds: 1 } : {}).then(
            (token) => ({ token, at: Date.now() }),
            (error: Error) => ({ error, at: Date.now() }),
          ),
        ),
      );
      await delay(500); // a second refresh, if any, would show up by now
      const calls = idp.counts.refreshToken - before;
      const ok = answers.filter((a): a is { token: TokenResult; at: number } => 'token' in a);
      const refreshLogs = harness.daemon
        .logs()
        .slice(logBefore)
        .filter((l) => l['msg'] === 'access token refreshed')
        .map((l) => (typeof l['why'] === 'string' ? l['why'] : '?'));
      results.push({
        kind,
        tokenEndpointCalls: calls,
        answered: ok.length,
        failed: answers.length - ok.length,
        distinctTokens: new Set(ok.map((a) => a.token.accessToken)).size,
        gotOldToken: ok.filter((a) => a.token.accessToken === current.accessToken).length,
        expiredAtReceipt: ok.filter((a) => a.token.expiresAt <= a.at).length,
        firstMs: Math.min(...answers.map((a) => a.at)) - start,
        lastMs: Math.max(...answers.map((a) => a.at)) - start,
        startedBy: refreshLogs.join(', ') || '–',
        errorSamples: [...new Set(answers.filter((a): a is { error: Error; at: number } => 'error' in a).map((a) => a.error.message))].slice(0, 3),
      });
      ctx.log(`  round ${round + 1}/${rounds} (${kind}): ${calls} token-endpoint call(s), ${ok.length}/${REQUESTS} answered`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await harness.stop();
    idp.setAccessTokenTtl(3600);
  }
  const maxCalls = Math.max(...results.map((r) => r.tokenEndpointCalls));
  const minCalls = Math.min(...results.map((r) => r.tokenEndpointCalls));
  const failed = results.reduce((n, r) => n + r.failed + r.expiredAtReceipt, 0);
  const stale = results.filter((r) => r.kind === 'min-valid').reduce((n, r) => n + r.gotOldToken, 0);
  const targets: TargetCheck[] = [
    {
      what: `3. token-endpoint calls per ${REQUESTS} concurrent requests`,
      target: 'exactly 1',
      value: minCalls === maxCalls ? String(maxCalls) : `${minCalls}–${maxCalls}`,
      met: minCalls === 1 && maxCalls === 1,
      breakage: true,
    },
    { what: '3. failed requests or expired tokens handed out', target: '0', value: String(failed), met: failed === 0, breakage: true },
    { what: '3. "min-valid" requests answered with the too-short token', target: '0', value: String(stale), met: stale === 0, breakage: true },
  ];
  const report = [
    `${REQUESTS} token.get requests at once over ${CONNECTIONS} connections (client library), ${ttl}-second access tokens, refresh timer lead 0. Calls counted at the IdP's token endpoint; "started by" is the daemon's log of who began the refresh.`,
    '',
    table(
      ['round', 'when', 'token-endpoint calls', 'answered', 'distinct tokens', 'first / last answer (ms)', 'refresh started by'],
      results.map((r, i) => [
        String(i + 1),
        r.kind,
        String(r.tokenEndpointCalls),
        `${r.answered}/${REQUESTS}`,
        String(r.distinctTokens),
        `${r.firstMs} / ${r.lastMs}`,
        r.startedBy,
      ]),
    ),
    '',
    `Median time until the last of the ${REQUESTS} answers: ${fmt(median(results.map((r) => r.lastMs)), 0)} ms.`,
  ].join('\n');
  return {
    name: 'single-flight',
    title: '3. Single-flight refresh under 1000 concurrent requests',
    report,
    targets,
    data: { requests: REQUESTS, connections: CONNECTIONS, tokenTtlSeconds: ttl, rounds: results },
  };
}
