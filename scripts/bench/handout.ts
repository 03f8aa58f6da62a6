/**
 * 1. Hand-out throughput and latency: a cached token through the client library over the real socket,
 *    1/16/64 concurrent clients, against the floor (floor-server.mjs) in the same rounds.
 * 2. The peer: oidc-agent handing out its cached token to the same client counts (one request per
 *    connection is all it serves), against our persistent and our one-connection-per-request cases.
 *
 * Every round runs every system at every concurrency, in a rotating order; figures are medians over
 * rounds, ratios are medians of the per-round (paired) ratios.
 */
import type { OidcAgent } from './lib/agent.js';
import type { BenchContext, SectionResult, TargetCheck } from './lib/context.js';
import { runLoad, startFloor, type LoadConfig, type LoadResult } from './lib/load.js';
import { fmt, fmtRatio, median, table } from './lib/stats.js';

export const CONCURRENCY = [1, 16, 64] as const;

export interface System {
  readonly key: string;
  readonly label: string;
  readonly config: Omit<LoadConfig, 'clients' | 'durationMs' | 'warmupMs'>;
}

export type Samples = Record<string, Record<number, LoadResult[]>>;

/** Runs `rounds` rounds of every system at every concurrency, rotating the order each round. */
export async function measureRounds(
  systems: readonly System[],
  options: { rounds: number; durationMs: number; warmupMs: number; concurrency: readonly number[]; log: (m: string) => void },
): Promise<Samples> {
  const samples: Samples = {};
  for (const s of systems) samples[s.key] = {};
  for (let round = 0; round < options.rounds; round++) {
    for (const clients of options.concurrency) {
      const shift = round % systems.length;
      let order = [...systems.slice(shift), ...systems.slice(0, shift)];
      if (round % 2 === 1) order = order.reverse();
      for (const system of order) {
        const result = await runLoad({ ...system.config, clients, durationMs: options.durationMs, warmupMs: options.warmupMs });
        (samples[system.key]![clients] ??= []).push(result);
      }
    }
    options.log(`  round ${round + 1}/${options.rounds} done`);
  }
  return samples;
}

/** Median of a field over rounds. */
export function med(results: readonly LoadResult[] | undefined, field: keyof LoadResult): number {
  return median((results ?? []).map((r) => Number(r[field])));
}

/** Median of the per-round ratio a[field] / b[field] (same round, measured back to back). */
export function pairedRatio(a: readonly LoadResult[] | undefined, b: readonly LoadResult[] | undefined, field: keyof LoadResult): number {
  if (!a || !b) return Number.NaN;
  return median(a.map((r, i) => Number(r[field]) / Number(b[i]?.[field])));
}

export function total(results: readonly LoadResult[] | undefined, field: 'errors' | 'connectErrors' | 'wrongToken' | 'completed'): number {
  return (results ?? []).reduce((sum, r) => sum + r[field], 0);
}

export async function handout(ctx: BenchContext, agent: OidcAgent | undefined): Promise<{ handout: SectionResult; peer: SectionResult }> {
  const rounds = ctx.smoke ? 1 : 5;
  const durationMs = ctx.smoke ? 300 : 2000;
  const warmupMs = ctx.smoke ? 100 : 300;
  const floor = await startFloor(ctx.token);
  const daemonPid = ctx.main.daemon.child.pid!;
  const socketPath = ctx.main.daemon.socketPath;
  const expectToken = ctx.token.accessToken;
  const systems: System[] = [
    { key: 'floor', label: 'floor (node:net ping-pong)', config: { target: 'floor', socketPath: floor.socketPath, serverPid: floor.pid, expectToken } },
    { key: 'broker', label: 'tokenbroker (client library)', config: { target: 'broker', socketPath, serverPid: daemonPid, expectToken } },
    { key: 'raw', label: 'tokenbroker (minimal client)', config: { target: 'broker-raw', socketPath, serverPid: daemonPid, expectToken } },
    {
      key: 'perConn',
      label: 'tokenbroker, new connection per request',
      config: { target: 'broker', perRequest: true, socketPath, serverPid: daemonPid, expectToken },
    },
  ];
  if (agent) {
    systems.push({
      key: 'agent',
      label: agent.version,
      config: { target: 'agent', socketPath: agent.socketPath, serverPid: agent.pid, account: agent.account },
    });
  }
  ctx.log(`1+2. hand-out: ${rounds} round(s) × ${CONCURRENCY.join('/')} clients × ${systems.length} systems × ${durationMs} ms`);
  let samples: Samples;
  try {
    samples = await measureRounds(systems, { rounds, durationMs, warmupMs, concurrency: CONCURRENCY, log: ctx.log });
  } finally {
    await floor.stop();
  }
  return { handout: handoutReport(samples, rounds, durationMs), peer: peerReport(samples, agent) };
}

function handoutReport(samples: Samples, rounds: number, durationMs: number): SectionResult {
  const targets: TargetCheck[] = [];
  const rows: string[][] = [];
  const cpuRows: string[][] = [];
  for (const c of CONCURRENCY) {
    const f = samples['floor']![c];
    const b = samples['broker']![c];
    const raw = samples['raw']![c];
    const rpsRatio = pairedRatio(b, f, 'rps');
    const p99Ratio = pairedRatio(b, f, 'p99');
    const maxOverP99 = median((b ?? []).map((r) => r.max / r.p99));
    const worstMaxOverP99 = Math.max(...(b ?? []).map((r) => r.max / r.p99));
    const floorMaxOverP99 = median((f ?? []).map((r) => r.max / r.p99));
    const connErrors = total(b, 'connectErrors');
    const errors = total(b, 'errors') + total(b, 'wrongToken');
    rows.push([
      String(c),
      fmt(med(f, 'rps'), 0),
      fmt(med(b, 'rps'), 0),
      fmtRatio(rpsRatio),
      `${fmt(med(f, 'p50'), 3)} / ${fmt(med(b, 'p50'), 3)}`,
      `${fmt(med(f, 'p99'), 3)} / ${fmt(med(b, 'p99'), 3)}`,
      fmtRatio(p99Ratio),
      `${fmt(med(f, 'max'))} / ${fmt(med(b, 'max'))}`,
      `${maxOverP99.toFixed(1)}× (worst ${worstMaxOverP99.toFixed(1)}×; floor ${floorMaxOverP99.toFixed(1)}×)`,
      `${connErrors} / ${errors}`,
    ]);
    cpuRows.push([
      String(c),
      `${fmt(med(f, 'serverCpuUsPerRequest'), 1)}`,
      `${fmt(med(raw, 'serverCpuUsPerRequest'), 1)}`,
      `${fmt(med(b, 'serverCpuUsPerRequest'), 1)}`,
      `${fmt(med(f, 'clientCpuUsPerRequest'), 1)}`,
      `${fmt(med(b, 'clientCpuUsPerRequest'), 1)}`,
      `${fmt(med(raw, 'rps'), 0)} (${fmtRatio(pairedRatio(raw, f, 'rps'))})`,
    ]);
    targets.push(
      { what: `1. throughput, ${c} client${c > 1 ? 's' : ''}`, target: '≥ 0.80× floor', value: fmtRatio(rpsRatio), met: rpsRatio >= 0.8 },
      { what: `1. p99, ${c} client${c > 1 ? 's' : ''}`, target: '≤ 2× floor', value: fmtRatio(p99Ratio), met: p99Ratio <= 2 },
      {
        what: `1. max / own p99, ${c} client${c > 1 ? 's' : ''}`,
        target: '≤ 10×',
        value: `${maxOverP99.toFixed(1)}× (median of rounds; worst ${worstMaxOverP99.toFixed(1)}×; the floor's own: ${floorMaxOverP99.toFixed(1)}×)`,
        met: maxOverP99 <= 10,
      },
      { what: `1. connection errors, ${c} client${c > 1 ? 's' : ''}`, target: '0', value: String(connErrors), met: connErrors === 0, breakage: true },
      { what: `1. failed or wrong answers, ${c} client${c > 1 ? 's' : ''}`, target: '0', value: String(errors), met: errors === 0, breakage: true },
    );
  }
  const report = [
    `Cached token, persistent connections, each client one request at a time; ${rounds} round(s) of ${durationMs} ms per system and concurrency; medians over rounds, ratios are medians of per-round ratios. Latencies in ms. "max / own p99" is per round (median over rounds), with the floor's own for comparison: a single scheduling hiccup of the shared machine lands in the max of whatever runs.`,
    '',
    table(
      [
        'clients',
        'floor req/s',
        'tokenbroker req/s',
        'ratio',
        'p50 floor / ours',
        'p99 floor / ours',
        'p99 ratio',
        'max floor / ours',
        'max / own p99',
        'conn. errors / failures',
      ],
      rows,
    ),
    '',
    'Where the time goes (CPU µs per request, from /proc; server = floor server or daemon, client = the load process):',
    '',
    table(
      [
        'clients',
        'floor server',
        'daemon (minimal client)',
        'daemon (client library)',
        'floor client',
        'client library',
        'daemon via minimal client, req/s (ratio to floor)',
      ],
      cpuRows,
    ),
  ].join('\n');
  return {
    name: 'handout',
    title: '1. Hand-out throughput and latency vs the node:net floor',
    report,
    targets,
    data: { rounds, durationMs, samples: pick(samples, ['floor', 'broker', 'raw']) },
  };
}

function peerReport(samples: Samples, agent: OidcAgent | undefined): SectionResult {
  if (!agent) {
    return {
      name: 'peer',
      title: '2. Peer: oidc-agent',
      report: 'oidc-agent is not installed (Debian: apt-get install oidc-agent-cli); skipped.',
      targets: [{ what: '2. oidc-agent comparison', target: 'run', value: 'skipped (not installed)', met: false }],
      data: { skipped: true },
    };
  }
  const targets: TargetCheck[] = [];
  const rows: string[][] = [];
  for (const c of CONCURRENCY) {
    const a = samples['agent']![c];
    const b = samples['broker']![c];
    const pc = samples['perConn']![c];
    const persistentRatio = pairedRatio(b, a, 'rps');
    const perConnRatio = pairedRatio(pc, a, 'rps');
    rows.push([
      String(c),
      fmt(med(a, 'rps'), 0),
      `${fmt(med(a, 'p50'), 3)} / ${fmt(med(a, 'p99'), 3)} / ${fmt(med(a, 'max'))}`,
      String(total(a, 'connectErrors')),
      fmt(med(b, 'rps'), 0),
      fmtRatio(persistentRatio),
      fmt(med(pc, 'rps'), 0),
      `${fmt(med(pc, 'p50'), 3)} / ${fmt(med(pc, 'p99'), 3)} / ${fmt(med(pc, 'max'))}`,
      fmtRatio(perConnRatio),
      String(total(pc, 'connectErrors')),
    ]);
    targets.push({
      what: `2. vs oidc-agent, persistent, ${c} client${c > 1 ? 's' : ''}`,
      target: '≥ 10× its req/s',
      value: fmtRatio(persistentRatio),
      met: persistentRatio >= 10,
    });
    targets.push({
      what: `2. vs oidc-agent, one connection per request, ${c} client${c > 1 ? 's' : ''}`,
      target: 'report',
      value: fmtRatio(perConnRatio),
      met: true,
    });
    const pcErrors = total(pc, 'connectErrors') + total(pc, 'errors');
    targets.push({
      what: `2. our connection errors, new connection per request, ${c} client${c > 1 ? 's' : ''}`,
      target: '0',
      value: String(pcErrors),
      met: pcErrors === 0,
      breakage: true,
    });
  }
  const report = [
    `${agent.version} serves one request per connection; it is driven from the same Node load process through its plain-JSON socket mode (no process start-up, no encryption: the cheapest way to ask it). "EAGAIN retries" counts connection attempts refused because its listen backlog was full (retried after 1 ms; the latency includes the wait).`,
    '',
    table(
      [
        'clients',
        'oidc-agent req/s',
        'agent p50 / p99 / max',
        'agent EAGAIN retries',
        'ours persistent req/s',
        'ratio',
        'ours new conn./req req/s',
        'ours/conn p50 / p99 / max',
        'ratio',
        'our conn. errors',
      ],
      rows,
    ),
  ].join('\n');
  return {
    name: 'peer',
    title: '2. Peer: oidc-agent handing out a cached token',
    report,
    targets,
    data: { samples: pick(samples, ['agent', 'broker', 'perConn']) },
  };
}

function pick(samples: Samples, keys: string[]): Samples {
  return Object.fromEntries(keys.filter((k) => samples[k]).map((k) => [k, samples[k]!]));
}
