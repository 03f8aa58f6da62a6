/**
 * 8. Fleet view, by simulation: 100,000 desktops on one provider, one day, a simulated clock in one
 * process. What the provider's token endpoint sees is decided by the session's scheduling rules, so the
 * simulation calls the real ones, as built in dist/ — `plannedRefreshAt`, `conservativeExpiry`, `nextAttemptAt`
 * (daemon/session/schedule.ts) and the in-request retry delay `backoffDelay` (daemon/oauth/http.ts) — and
 * models only what happens between them the way session.ts and broker.ts do:
 *
 * - a refresh is one token-endpoint request, retried in-request `retry.limit` times after
 *   `backoffDelay(attempt, base, min(10 s, max))` on a 5xx (got, http.ts);
 * - after the last in-request retry fails the session counts a failure and arms its timer at
 *   `nextAttemptAt(now, failures, refresh)` (session.ts refreshFailed → arm);
 * - after a success the timer is armed at `plannedRefreshAt(savedAt, expiresAt, refresh)`;
 * - a laptop's timers do not run while it sleeps; on waking, the clock watch's next tick (every 5 s,
 *   broker.ts) sees the jump and an expired session refreshes at once (session.ts onClockJump).
 *
 * Pure computation with a seeded PRNG: the figures do not depend on the machine, and a run reproduces
 * them exactly. Writes bench/fleet-day.svg and bench/fleet-outage.svg (hand-written SVG).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SectionResult, TargetCheck } from './lib/context.js';
import { ROOT } from './lib/env.js';
import { fmt, table } from './lib/stats.js';

/** daemon/config.ts RefreshConfig (the benchmarks use the product as built, from dist/). */
interface RefreshConfig {
  readonly leadSeconds: number;
  readonly jitterSeconds: number;
  readonly minValidSeconds: number;
  readonly retry: { readonly limit: number; readonly baseDelayMs: number; readonly maxDelayMs: number };
}

/** The scheduling functions under test, from the build (dist/daemon/session/schedule.js, dist/daemon/oauth/http.js). */
export interface ScheduleFunctions {
  readonly plannedRefreshAt: (issuedAt: number, expiresAt: number, refresh: RefreshConfig, random?: () => number) => number;
  readonly conservativeExpiry: (expiresAt: number, sentAt: number, receivedAt: number) => number;
  readonly nextAttemptAt: (now: number, failures: number, refresh: RefreshConfig, retryAfterMs?: number, random?: () => number) => number;
  readonly backoffDelay: (attempt: number, base: number, max: number, random?: () => number) => number;
}

export async function loadScheduleFunctions(): Promise<ScheduleFunctions> {
  const load = (file: string) => import(pathToFileURL(path.join(ROOT, 'dist/daemon', file)).href);
  const schedule = (await load('session/schedule.js')) as Omit<ScheduleFunctions, 'backoffDelay'>;
  const http = (await load('oauth/http.js')) as Pick<ScheduleFunctions, 'backoffDelay'>;
  return {
    plannedRefreshAt: schedule.plannedRefreshAt,
    conservativeExpiry: schedule.conservativeExpiry,
    nextAttemptAt: schedule.nextAttemptAt,
    backoffDelay: http.backoffDelay,
  };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The population and the day (every figure in the report is derived from these). */
export const FLEET = {
  clients: 100_000,
  /** Always-on machines (their sessions were signed in long ago: refresh phases spread over the hour). */
  desktopShare: 0.25,
  /** Of the laptops: woken in the first five minutes after 9:00 (docking for the 9:00 stand-up). */
  sharpShare: 0.5,
  /** The other laptops wake around 9:00, normally distributed with this spread (within 7:00–11:00). */
  arrivalSpreadMs: 30 * MINUTE,
  /** Laptops go to sleep around 17:30 (σ 30 min): no requests until the next morning. */
  departureAt: 17.5 * HOUR,
  departureSpreadMs: 30 * MINUTE,
  /** Access-token lifetime (`expires_in`). */
  tokenLifetimeMs: HOUR,
  /** The provider answers every token request with 503 from 13:00 to 14:00. */
  outage: { from: 13 * HOUR, to: 14 * HOUR },
  /** The broker's clock watch (broker.ts). */
  clockWatchMs: 5 * SECOND,
  /** got's in-request waits are capped here (http.ts IN_REQUEST_MAX_WAIT_MS). */
  inRequestMaxWaitMs: 10 * SECOND,
  seed: 20_261_130,
} as const;

const DEFAULT_REFRESH: RefreshConfig = {
  leadSeconds: 60,
  jitterSeconds: 5,
  minValidSeconds: 30,
  retry: { limit: 3, baseDelayMs: 1_000, maxDelayMs: 300_000 },
};

export interface FleetScenario {
  readonly key: string;
  readonly label: string;
  readonly refresh: RefreshConfig;
  /** Every random draw of the scheduling functions replaced by a constant: no jitter anywhere. */
  readonly noRandom?: boolean;
}

export const SCENARIOS: readonly FleetScenario[] = [
  { key: 'old', label: 'old default: jitter 5 s, backoff 1 s … 5 min', refresh: DEFAULT_REFRESH },
  { key: 'nojitter', label: 'no jitter (timers and backoff)', refresh: { ...DEFAULT_REFRESH, jitterSeconds: 0 }, noRandom: true },
  { key: 'shortbackoff', label: 'backoff capped at 10 s', refresh: { ...DEFAULT_REFRESH, retry: { ...DEFAULT_REFRESH.retry, maxDelayMs: 10_000 } } },
  { key: 'new', label: 'new default: jitter 300 s, backoff 1 s … 5 min', refresh: { ...DEFAULT_REFRESH, jitterSeconds: 300 } },
];

/** mulberry32: small, seeded, good enough for spreading timers. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function normal(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

interface Population {
  readonly wakeAt: Float64Array;
  readonly sleepAt: Float64Array;
  /** When each desktop's current token was issued (NaN for laptops: theirs expired overnight). */
  readonly issuedAt: Float64Array;
}

export function population(n: number = FLEET.clients): Population {
  const random = rng(FLEET.seed);
  const wakeAt = new Float64Array(n);
  const sleepAt = new Float64Array(n);
  const issuedAt = new Float64Array(n).fill(Number.NaN);
  const desktops = Math.round(n * FLEET.desktopShare);
  for (let i = 0; i < n; i++) {
    if (i < desktops) {
      wakeAt[i] = -Infinity;
      sleepAt[i] = Infinity;
      // Refresh phases spread over the hour before the day starts (steady state); warm-up from −3 h.
      issuedAt[i] = -3 * HOUR - random() * FLEET.tokenLifetimeMs;
      continue;
    }
    const sharp = random() < FLEET.sharpShare;
    wakeAt[i] = sharp ? 9 * HOUR + random() * 5 * MINUTE : Math.min(11 * HOUR, Math.max(7 * HOUR, 9 * HOUR + normal(random) * FLEET.arrivalSpreadMs));
    sleepAt[i] = Math.max(wakeAt[i]! + HOUR, FLEET.departureAt + normal(random) * FLEET.departureSpreadMs);
  }
  return { wakeAt, sleepAt, issuedAt };
}

/** A binary min-heap of client indices keyed by each client's one pending event time. */
class EventHeap {
  private readonly heap: Int32Array;
  private size = 0;
  constructor(
    capacity: number,
    private readonly at: Float64Array,
  ) {
    this.heap = new Int32Array(capacity);
  }
  get length(): number {
    return this.size;
  }
  push(client: number): void {
    const { heap, at } = this;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (at[heap[parent]!]! <= at[client]!) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = client;
  }
  pop(): number {
    const { heap, at } = this;
    const top = heap[0]!;
    const last = heap[--this.size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && at[heap[child + 1]!]! < at[heap[child]!]!) child++;
      if (at[heap[child]!]! >= at[last]!) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

export interface FleetRun {
  readonly scenario: FleetScenario;
  /** Token-endpoint requests in each second of the day (index 0 = 00:00:00). */
  readonly perSecond: Uint32Array;
  readonly requests: number;
  readonly failedRequests: number;
  /** Per client that was awake at the outage's end: ms from recovery until it held a fresh token. */
  readonly recoveryWaits: Float64Array;
  readonly simulatedEvents: number;
}

export function simulate(scenario: FleetScenario, pop: Population, fns: ScheduleFunctions): FleetRun {
  const { plannedRefreshAt, conservativeExpiry, nextAttemptAt, backoffDelay } = fns;
  const n = pop.wakeAt.length;
  const { refresh } = scenario;
  const random = scenario.noRandom ? () => 1 : rng(FLEET.seed ^ 0x5eed);
  const timerRandom = scenario.noRandom ? () => 0 : random;
  const inRequestMax = Math.min(FLEET.inRequestMaxWaitMs, Math.max(refresh.retry.baseDelayMs, refresh.retry.maxDelayMs));
  const nextAt = new Float64Array(n);
  /** 0 = a wake-up (clock-watch tick) is pending; k ≥ 1 = the k-th attempt of a refresh request. */
  const attempt = new Uint8Array(n);
  const failures = new Uint16Array(n);
  const freshAt = new Float64Array(n).fill(Number.NaN);
  const perSecond = new Uint32Array(DAY / SECOND);
  const heap = new EventHeap(n, nextAt);
  const { outage } = FLEET;
  const wakeTick = scenario.noRandom ? () => FLEET.clockWatchMs : () => random() * FLEET.clockWatchMs;

  for (let i = 0; i < n; i++) {
    const issued = pop.issuedAt[i]!;
    if (Number.isNaN(issued)) {
      nextAt[i] = pop.wakeAt[i]! + wakeTick();
      attempt[i] = 0;
    } else {
      const expiresAt = conservativeExpiry(issued + FLEET.tokenLifetimeMs, issued, issued);
      nextAt[i] = plannedRefreshAt(issued, expiresAt, refresh, timerRandom);
      attempt[i] = 1;
    }
    heap.push(i);
  }

  let requests = 0;
  let failedRequests = 0;
  let events = 0;
  while (heap.length > 0) {
    const c = heap.pop();
    const t = nextAt[c]!;
    if (t >= DAY) continue;
    events++;
    if (t >= pop.sleepAt[c]!) continue; // asleep: no timer runs until tomorrow
    if (attempt[c] === 0) {
      // The clock watch saw the jump; the token expired overnight: refresh at once (onClockJump).
      attempt[c] = 1;
      heap.push(c);
      continue;
    }
    if (t >= 0) {
      perSecond[Math.floor(t / SECOND)]!++;
      requests++;
    }
    const down = t >= outage.from && t < outage.to;
    if (!down) {
      failures[c] = 0;
      attempt[c] = 1;
      if (t >= outage.to && Number.isNaN(freshAt[c]!)) freshAt[c] = t;
      const expiresAt = conservativeExpiry(t + FLEET.tokenLifetimeMs, t, t);
      nextAt[c] = plannedRefreshAt(t, expiresAt, refresh, timerRandom);
    } else {
      if (t >= 0) failedRequests++;
      const k = attempt[c]!;
      if (k <= refresh.retry.limit) {
        // got's retry (http.ts): attemptCount k, the same equal-jitter backoff, capped in-request.
        nextAt[c] = t + backoffDelay(k, refresh.retry.baseDelayMs, inRequestMax, random);
        attempt[c] = k + 1;
      } else {
        failures[c]!++;
        attempt[c] = 1;
        nextAt[c] = nextAttemptAt(t, failures[c]!, refresh, undefined, random);
      }
    }
    heap.push(c);
  }

  const waits: number[] = [];
  for (let i = 0; i < n; i++) {
    const awake = pop.wakeAt[i]! < outage.from && pop.sleepAt[i]! > outage.to;
    if (awake && !Number.isNaN(freshAt[i]!)) waits.push(freshAt[i]! - outage.to);
  }
  return { scenario, perSecond, requests, failedRequests, recoveryWaits: Float64Array.from(waits).sort(), simulatedEvents: events };
}

// ---- figures --------------------------------------------------------------------------------------

/** Mean request rate (req/s) in buckets of `bucketS` seconds over [fromS, toS). */
function rates(perSecond: Uint32Array, fromS: number, toS: number, bucketS: number): Float64Array {
  const out = new Float64Array(Math.ceil((toS - fromS) / bucketS));
  for (let s = fromS; s < toS; s++) out[Math.floor((s - fromS) / bucketS)]! += perSecond[s]! / bucketS;
  return out;
}

function peak(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]!);
  return max;
}

function meanOf(perSecond: Uint32Array, fromS: number, toS: number): number {
  let total = 0;
  for (let s = fromS; s < toS; s++) total += perSecond[s]!;
  return total / (toS - fromS);
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export interface FleetFigures {
  readonly key: string;
  readonly label: string;
  readonly requests: number;
  readonly failedRequests: number;
  readonly meanDay: number;
  /** 9:30–12:30: office hours, before the outage. */
  readonly meanOffice: number;
  readonly peak1s: number;
  readonly peak1min: number;
  readonly wakePeak1min: number;
  readonly outageMean: number;
  readonly recoveryPeak1s: number;
  readonly recoveryPeak1min: number;
  readonly recoveryP50s: number;
  readonly recoveryP99s: number;
  readonly recoveryMaxS: number;
  /** 15:00–17:00, long after the outage: the highest minute against that window's mean. */
  readonly echoPeakToMean: number;
  /** 10:00–12:00, after the 9:00 wake: the same ratio. */
  readonly morningEchoPeakToMean: number;
}

const H = 3600;

export function figures(run: FleetRun): FleetFigures {
  const p = run.perSecond;
  const perMinute = rates(p, 0, DAY / SECOND, 60);
  const window = (fromH: number, toH: number) => {
    const r = rates(p, fromH * H, toH * H, 60);
    return peak(r) / meanOf(p, fromH * H, toH * H);
  };
  return {
    key: run.scenario.key,
    label: run.scenario.label,
    requests: run.requests,
    failedRequests: run.failedRequests,
    meanDay: run.requests / (DAY / SECOND),
    meanOffice: meanOf(p, 9.5 * H, 12.5 * H),
    peak1s: peak(p),
    peak1min: peak(perMinute),
    wakePeak1min: peak(rates(p, 9 * H, 9.5 * H, 60)),
    outageMean: meanOf(p, 13 * H, 14 * H),
    recoveryPeak1s: peak(p.subarray(14 * H, 14.5 * H)),
    recoveryPeak1min: peak(rates(p, 14 * H, 14.5 * H, 60)),
    recoveryP50s: quantile(run.recoveryWaits, 0.5) / 1000,
    recoveryP99s: quantile(run.recoveryWaits, 0.99) / 1000,
    recoveryMaxS: quantile(run.recoveryWaits, 1) / 1000,
    echoPeakToMean: window(15, 17),
    morningEchoPeakToMean: window(10, 12),
  };
}

// ---- SVG (hand-written: no dependency) ------------------------------------------------------------------

interface Panel {
  readonly title: string;
  readonly values: Float64Array;
  readonly color: string;
}

const COLORS: Record<string, string> = { old: '#c0392b', nojitter: '#7f8c8d', shortbackoff: '#d68910', new: '#1f618d' };

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Small multiples, one panel per alternative, stacked, on one shared y scale (so a herd is seen as
 * height) — with `logY` when the alternatives differ by orders of magnitude.
 */
export function svgChart(options: {
  readonly title: string;
  readonly subtitle: string;
  readonly panels: readonly Panel[];
  /** x of the first and past-the-last bucket, in seconds of the day. */
  readonly fromS: number;
  readonly toS: number;
  readonly tickEveryS: number;
  readonly yLabel: string;
  readonly shade?: { readonly fromS: number; readonly toS: number; readonly label: string };
  readonly logY?: boolean;
  /** A fixed top of the y axis: higher values are drawn clipped (the panel says so). */
  readonly yMax?: number;
}): string {
  const width = 960;
  const panelH = 150;
  const left = 70;
  const right = 20;
  const top = 56;
  const gap = 34;
  const plotW = width - left - right;
  const height = top + options.panels.length * (panelH + gap) + 10;
  const yMax = options.yMax ?? niceMax(Math.max(...options.panels.map((p) => peak(p.values))));
  const xOf = (s: number) => left + ((s - options.fromS) / (options.toS - options.fromS)) * plotW;
  const logMin = 1;
  const yOf = (v: number, y0: number) =>
    options.logY ? y0 + panelH - (Math.log10(Math.max(v, logMin) / logMin) / Math.log10(yMax / logMin)) * panelH : y0 + panelH - (v / yMax) * panelH;
  const clock = (s: number) => `${String(Math.floor(s / 3600) % 24).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="16" font-weight="bold">${esc(options.title)}</text>`,
    `<text x="${left}" y="40" fill="#555">${esc(options.subtitle)}</text>`,
  );
  const yTicks = options.logY ? Array.from({ length: Math.floor(Math.log10(yMax)) + 1 }, (_, i) => 10 ** i) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);
  options.panels.forEach((panel, index) => {
    const y0 = top + index * (panelH + gap) + 16;
    out.push(`<text x="${left}" y="${y0 - 6}" font-weight="bold" fill="${panel.color}">${esc(panel.title)}</text>`);
    if (options.shade) {
      const x1 = xOf(options.shade.fromS);
      const x2 = xOf(options.shade.toS);
      out.push(`<rect x="${x1.toFixed(1)}" y="${y0}" width="${(x2 - x1).toFixed(1)}" height="${panelH}" fill="#f2d7d5" opacity="0.6"/>`);
      if (index === 0) out.push(`<text x="${(x1 + 4).toFixed(1)}" y="${y0 + 14}" fill="#922b21">${esc(options.shade.label)}</text>`);
    }
    for (const v of yTicks) {
      const y = yOf(v, y0);
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`,
        `<text x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(v, 0)}</text>`,
      );
    }
    for (let s = Math.ceil(options.fromS / options.tickEveryS) * options.tickEveryS; s <= options.toS; s += options.tickEveryS) {
      const x = xOf(s);
      out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y0}" y2="${y0 + panelH}" stroke="#f0f0f0"/>`);
      out.push(`<text x="${x.toFixed(1)}" y="${y0 + panelH + 14}" text-anchor="middle" fill="#555">${clock(s)}</text>`);
    }
    const bucketS = (options.toS - options.fromS) / panel.values.length;
    const points: string[] = [];
    panel.values.forEach((v, i) => {
      const xa = xOf(options.fromS + i * bucketS);
      const xb = xOf(options.fromS + (i + 1) * bucketS);
      const y = yOf(Math.min(v, yMax), y0).toFixed(1);
      points.push(`${xa.toFixed(1)},${y}`, `${xb.toFixed(1)},${y}`);
    });
    out.push(`<polyline fill="none" stroke="${panel.color}" stroke-width="1.2" points="${points.join(' ')}"/>`);
    out.push(`<rect x="${left}" y="${y0}" width="${plotW}" height="${panelH}" fill="none" stroke="#999"/>`);
    out.push(
      `<text x="${left + plotW - 4}" y="${y0 + 14}" text-anchor="end" fill="#333">peak ${fmt(peak(panel.values), 0)} ${esc(options.yLabel)}${peak(panel.values) > yMax ? ' (clipped)' : ''}</text>`,
    );
  });
  out.push(
    `<text x="16" y="${top + 80}" transform="rotate(-90 16 ${top + 80})" fill="#555">${esc(options.yLabel)}${options.logY ? ' (log scale)' : ''}</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}

// ---- the section ------------------------------------------------------------------------------------------

export async function fleet(options: { readonly log: (m: string) => void; readonly chartDir: string; readonly smoke: boolean }): Promise<SectionResult> {
  // The smoke run: a tenth of the fleet, without the costly short-backoff alternative.
  const clients = options.smoke ? FLEET.clients / 10 : FLEET.clients;
  const pop = population(clients);
  const fns = await loadScheduleFunctions();
  const runs: FleetRun[] = [];
  for (const scenario of options.smoke ? SCENARIOS.filter((s) => s.key !== 'shortbackoff') : SCENARIOS) {
    const started = Date.now();
    runs.push(simulate(scenario, pop, fns));
    options.log(`8. fleet: ${scenario.label}: ${runs.at(-1)!.simulatedEvents.toLocaleString('en-US')} events in ${Date.now() - started} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const figs = runs.map(figures);
  const byKey = Object.fromEntries(figs.map((f) => [f.key, f])) as Record<string, FleetFigures>;

  const panels = (fromS: number, toS: number, bucketS: number, keys?: readonly string[]) =>
    runs
      .map((r) => ({ key: r.scenario.key, title: r.scenario.label, values: rates(r.perSecond, fromS, toS, bucketS), color: COLORS[r.scenario.key] ?? '#333' }))
      .filter((p) => !keys || keys.includes(p.key));
  fs.mkdirSync(options.chartDir, { recursive: true });
  fs.writeFileSync(
    path.join(options.chartDir, 'fleet-day.svg'),
    svgChart({
      title: '100,000 desktops on one provider: token-endpoint requests over a day',
      subtitle: 'per-minute mean rate, axis cut at 1,000 req/s; 75% laptops (half woken 9:00–9:05, half 9:00 ± 30 min); provider down 13:00–14:00',
      panels: panels(0, DAY / SECOND, 60, ['old', 'nojitter', 'new']),
      yMax: 1000,
      fromS: 0,
      toS: DAY / SECOND,
      tickEveryS: 2 * H,
      yLabel: 'req/s',
      shade: { fromS: 13 * H, toS: 14 * H, label: 'outage' },
    }),
  );
  fs.writeFileSync(
    path.join(options.chartDir, 'fleet-outage.svg'),
    svgChart({
      title: 'Around the one-hour outage: token-endpoint requests (failed ones included)',
      subtitle: 'per-10-second mean rate, 12:50–14:20; the provider answers 503 from 13:00 to 14:00',
      panels: panels(12 * H + 50 * 60, 14 * H + 20 * 60, 10),
      fromS: 12 * H + 50 * 60,
      toS: 14 * H + 20 * 60,
      tickEveryS: 600,
      yLabel: 'req/s',
      shade: { fromS: 13 * H, toS: 14 * H, label: 'provider down (503)' },
      logY: true,
    }),
  );

  const old = byKey['old']!;
  const now = byKey['new']!;
  const targets: TargetCheck[] = [
    {
      what: '8. fleet: no lasting herd (highest minute 15:00–17:00 vs that window’s mean)',
      target: '≤ 2×',
      value: `${fmt(now.echoPeakToMean)}× (jitter 5 s: ${fmt(old.echoPeakToMean)}×)`,
      met: now.echoPeakToMean <= 2,
    },
  ];

  const rows = figs.map((f) => [
    f.label,
    fmt(f.meanDay, 1),
    fmt(f.meanOffice, 1),
    `${fmt(f.peak1s, 0)} / ${fmt(f.peak1min, 0)}`,
    fmt(f.wakePeak1min, 0),
    `${fmt(f.morningEchoPeakToMean, 1)}×`,
    fmt(f.outageMean, 0),
    `${fmt(f.recoveryPeak1s, 0)} / ${fmt(f.recoveryPeak1min, 0)}`,
    `${fmt(f.recoveryP50s, 0)} / ${fmt(f.recoveryP99s, 0)} / ${fmt(f.recoveryMaxS, 0)}`,
    `${fmt(f.echoPeakToMean, 1)}×`,
    (f.requests / 1e6).toFixed(2),
  ]);
  const report = [
    `${clients.toLocaleString('en-US')} desktops on one provider, one simulated day (the real \`plannedRefreshAt\`, \`conservativeExpiry\`, \`nextAttemptAt\` and \`backoffDelay\` on a simulated clock, seeded PRNG; no machine involved). ${Math.round(FLEET.desktopShare * 100)}% always-on desktops; the laptops sleep overnight and wake — half in the five minutes after 9:00, half around 9:00 (σ 30 min) — and sleep again around 17:30. One-hour access tokens. The provider answers every request with 503 from 13:00 to 14:00 (each refresh: 1 request + ${DEFAULT_REFRESH.retry.limit} in-request retries, then the session's backoff). Rates in token-endpoint requests per second, failed requests included.`,
    '',
    table(
      [
        'settings',
        'mean (day)',
        'mean 9:30–12:30',
        'peak 1 s / 1 min',
        'wake peak (1 min)',
        'echo 10–12 h (peak/mean)',
        'mean during outage',
        'recovery peak 1 s / 1 min',
        'fresh token after recovery: p50 / p99 / max (s)',
        'echo 15–17 h (peak/mean)',
        'requests (M)',
      ],
      rows,
    ),
    '',
    table(
      ['target', 'wanted', 'simulated', ''],
      targets.map((t) => [t.what.replace(/^8\. fleet: /, ''), t.target, t.value, t.met ? 'met' : '**not met**']),
    ),
    '',
    '![requests over the day](fleet-day.svg)',
    '',
    '![around the outage](fleet-outage.svg)',
  ].join('\n');
  return {
    name: 'fleet',
    title: '8. Fleet view: 100,000 desktops, one day, a one-hour outage (simulation)',
    report,
    targets,
    data: { fleet: FLEET, scenarios: SCENARIOS, figures: figs },
  };
}
