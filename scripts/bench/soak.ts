/**
 * 4. Soak: 5-second access tokens, clients asking continuously, until ≥ 50 refresh cycles have been seen.
 * Every distinct token is introspected at the IdP when first seen (its `exp` is the IdP's word on when
 * it dies); every answer received at or after that instant counts as an expired token handed out.
 */
import { connect, type BrokerClient } from '../../client/index.js';
import type { BenchContext, SectionResult, TargetCheck } from './lib/context.js';
import { idpProfile, signedInBroker } from './lib/env.js';
import { fmt, table } from './lib/stats.js';

const TOKEN_TTL_SECONDS = 5;
const CLIENTS = 4;

interface Seen {
  first: number;
  last: number;
  answers: number;
  /** IdP `exp` in ms, once introspected. */
  exp: number | undefined;
  /** Receipt times not yet checked against `exp`. */
  unchecked: number[];
  /** Smallest validity left at receipt (ms, by the IdP's exp). */
  minLeft: number;
}

export async function soak(ctx: BenchContext): Promise<SectionResult> {
  const { idp } = ctx.env;
  const cycles = ctx.smoke ? 3 : 50;
  const maxMs = ctx.smoke ? 25_000 : 300_000;
  ctx.log(`4. soak: ${TOKEN_TTL_SECONDS}-second tokens, ${CLIENTS} clients asking continuously, until ${cycles} refresh cycles (at most ${maxMs / 1000} s)`);
  idp.setAccessTokenTtl(TOKEN_TTL_SECONDS);
  const harness = await signedInBroker(ctx.env, { profiles: { soak: idpProfile(idp) } });
  const clients: BrokerClient[] = [];
  const seen = new Map<string, Seen>();
  let expired = 0;
  let answers = 0;
  let failures = 0;
  const failureSamples = new Set<string>();
  let introspectionErrors = 0;
  let inactiveAtFirstSight = 0;
  const refreshBefore = idp.counts.refreshToken;
  const errorsBefore = idp.counts.tokenEndpointErrors;
  const start = Date.now();
  let stop = false;

  const check = (entry: Seen, at: number) => {
    if (entry.exp === undefined) {
      entry.unchecked.push(at);
      return;
    }
    if (at >= entry.exp) expired++;
    entry.minLeft = Math.min(entry.minLeft, entry.exp - at);
  };

  const receive = (token: string, at: number) => {
    answers++;
    let entry = seen.get(token);
    if (!entry) {
      entry = { first: at, last: at, answers: 0, exp: undefined, unchecked: [], minLeft: Infinity };
      seen.set(token, entry);
      const fresh = entry;
      idp.introspect(token).then(
        (result) => {
          if (!result.active || result.exp === undefined) {
            inactiveAtFirstSight++;
            fresh.exp = fresh.first; // dead on arrival: every answer with it counts
          } else fresh.exp = result.exp * 1000;
          for (const t of fresh.unchecked.splice(0)) check(fresh, t);
        },
        () => {
          introspectionErrors++;
        },
      );
    }
    entry.last = at;
    entry.answers++;
    check(entry, at);
  };

  const loop = async (client: BrokerClient) => {
    while (!stop) {
      try {
        const token = await client.getToken();
        receive(token.accessToken, Date.now());
      } catch (error) {
        failures++;
        if (failureSamples.size < 5) failureSamples.add((error as Error).message);
      }
    }
  };

  let refreshCalls: number;
  try {
    for (let i = 0; i < CLIENTS; i++) clients.push(await connect({ socketPath: harness.daemon.socketPath, clientName: 'bench-soak' }));
    const loops = clients.map((c) => loop(c));
    let lastReport = 0;
    while (!stop) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const observed = seen.size - 1;
      if (observed >= cycles || Date.now() - start > maxMs) stop = true;
      if (observed >= lastReport + 10) {
        lastReport = observed;
        ctx.log(`  ${observed} cycles, ${answers} answers, ${expired} expired`);
      }
    }
    await Promise.all(loops);
    refreshCalls = idp.counts.refreshToken - refreshBefore; // refreshes while clients were asking
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the last introspections land
  } finally {
    stop = true;
    await Promise.all(clients.map((c) => c.close()));
    await harness.stop();
    idp.setAccessTokenTtl(3600);
  }
  const durationMs = Date.now() - start;
  const tokenErrors = idp.counts.tokenEndpointErrors - errorsBefore;
  const observedCycles = seen.size - 1;
  const unchecked = [...seen.values()].filter((s) => s.exp === undefined).length;
  const minLeft = Math.min(...[...seen.values()].map((s) => s.minLeft));
  const lifetimes = [...seen.values()].map((s) => s.last - s.first);
  const targets: TargetCheck[] = [
    { what: `4. refresh cycles observed`, target: `≥ ${cycles}`, value: String(observedCycles), met: observedCycles >= cycles, breakage: true },
    {
      what: '4. expired tokens handed out',
      target: '0',
      value: String(expired + unchecked),
      met: expired + unchecked === 0 && inactiveAtFirstSight === 0,
      breakage: true,
    },
    {
      what: '4. IdP refresh calls',
      target: `≤ cycles + 1 (${observedCycles + 1})`,
      value: String(refreshCalls),
      met: refreshCalls <= observedCycles + 1,
      breakage: true,
    },
    { what: '4. failed requests', target: '0', value: String(failures), met: failures === 0, breakage: true },
  ];
  const report = [
    `${CLIENTS} clients (client library) asking back to back for ${fmt(durationMs / 1000, 1)} s; the IdP issues ${TOKEN_TTL_SECONDS}-second access tokens; the profile uses the defaults (lead 60 s and minValidSeconds 30, both capped by the token's lifetime).`,
    '',
    table(
      [
        'refresh cycles',
        'answers',
        'expired handed out',
        'IdP refresh calls',
        'IdP token errors',
        'failed requests',
        'least validity left at hand-out',
        'token in use (median)',
      ],
      [
        [
          String(observedCycles),
          answers.toLocaleString('en-US'),
          String(expired + unchecked),
          String(refreshCalls),
          String(tokenErrors),
          String(failures),
          `${fmt(minLeft, 0)} ms`,
          `${fmt(lifetimes.sort((a, b) => a - b)[lifetimes.length >> 1]! / 1000, 2)} s`,
        ],
      ],
    ),
  ].join('\n');
  return {
    name: 'soak',
    title: '4. Soak: 5-second tokens, continuous clients',
    report,
    targets,
    data: {
      tokenTtlSeconds: TOKEN_TTL_SECONDS,
      clients: CLIENTS,
      durationMs,
      cycles: observedCycles,
      answers,
      expired,
      unchecked,
      inactiveAtFirstSight,
      introspectionErrors,
      refreshCalls,
      tokenEndpointErrors: tokenErrors,
      failures,
      failureSamples: [...failureSamples],
      minLeftMs: minLeft,
    },
  };
}
