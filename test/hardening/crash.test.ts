/**
 * Crash safety (issue 7, item 4). The real daemon is killed with SIGKILL at random moments and started again:
 *
 * - **login**: between the browser's redirect and the end of sign-in — before the redirect is delivered, while
 *   the code exchange is in flight (the token endpoint is slowed by a random 0–400 ms to widen that window), and
 *   around the keychain write that ends it;
 * - **refresh**, with refresh-token rotation on at the IdP: at a random offset around a forced refresh
 *   (`token.get { rejected }`; the token endpoint slowed by 0–300 ms, a slow provider);
 * - **keychain-write**: 0–20 ms after the IdP's answer to a rotating refresh left the IdP, i.e. right before or
 *   right after the daemon writes the new refresh token to the keychain (some 5 ms after that answer);
 * - **logout**: at a random offset into a logout (the revocation endpoint slowed by 0–300 ms).
 *
 * After every restart, checked:
 * - start-up never breaks; every answer for the profile is a valid token or LOGIN_REQUIRED, never another error;
 * - a session that was **active** before the kill needs no new sign-in: token.get gives a token the IdP calls
 *   active, and a forced refresh works. "Active" means its sign-in had completed — the app had received
 *   `loggedIn` before the kill (refresh, keychain-write and logout trials start from an active session);
 * - a logout cut short leaves the session logged out or still active (with a working refresh token), never broken;
 * - the other profile is never affected.
 *
 * The one loss no client can prevent: with rotation, the old refresh token is spent once the refresh request has
 * left the daemon (the IdP handles it whether or not its sender lives), and the new one exists only in the answer
 * until the keychain write has finished. A kill in between — the provider's latency plus a few ms — loses the
 * session (oidc-provider also revokes the grant when the old token comes back). Such losses are counted apart,
 * accepted only when the kill fell in that window (request sent, new refresh token not in the keychain: read
 * straight from the keychain after the kill), and the window's width is measured.
 *
 * Separately, entries that are not valid (truncated JSON, garbage, wrong types, a newer version) are written with
 * keytar under the daemon's keychain service: the daemon starts, logs each one, those profiles read as logged out,
 * and the valid profile is unaffected.
 *
 * Size: TOKENBROKER_CRASH_TRIALS (default 12 = 3 of each kind; the full run: 60), TOKENBROKER_CRASH_SEED to
 * replay a run. Full run:
 *   TOKENBROKER_CRASH_TRIALS=60 node scripts/with-keyring.mjs vitest run test/hardening/crash.test.ts
 */
import keytar from 'keytar';
import { describe, expect, it } from 'vitest';
import { BrokerError, connect, type BrokerClient, type BrokerEvent, type TokenResult } from '../../client/index.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import type { DaemonProcess } from '../support/daemon.js';
import { sleep, storedEntry, useRefreshWorld } from '../support/refresh-e2e.js';
import { createRng } from '../support/fuzz.js';

const TRIALS = Number(process.env['TOKENBROKER_CRASH_TRIALS'] ?? 12);
const SEED = Number(process.env['TOKENBROKER_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const KINDS = ['login', 'refresh', 'keychain-write', 'logout'] as const;
type Kind = (typeof KINDS)[number];
const TOKEN_ENDPOINT = /^\/token$/;
const REVOCATION_ENDPOINT = /^\/token\/revocation$/;
/** Long-lived access tokens: every refresh in these trials is one the test forced, at a known moment. */
const ACCESS_TOKEN_TTL = 600;

const random = createRng(SEED).next; // seeded (mulberry32): a failing run replays with its seed
const between = (min: number, max: number) => Math.round(min + random() * (max - min));

const world = useRefreshWorld({ accessTokenTtl: ACCESS_TOKEN_TTL, rotateRefreshTokens: true, frontProxy: true });

// ---- the pieces ------------------------------------------------------------------------------------------------

interface App {
  readonly client: BrokerClient;
  readonly events: BrokerEvent[];
}

async function connectApp(harness: BrokerHarness): Promise<App> {
  const client = await connect({ socketPath: harness.daemon.socketPath, reconnect: false, timeoutMs: 15_000 });
  const events: BrokerEvent[] = [];
  await client.subscribe((event) => events.push(event));
  return { client, events };
}

/**
 * Signs `profile` in: the daemon's authorization URL, Chromium at the IdP, the redirect handed back. oidc-provider
 * keeps one grant per browser session and client, and revoking a refresh token ends its whole grant: the other
 * profile signs in as another world.user, in a browser session of its own, so that "main"'s logouts leave it alone.
 */
async function signInProfile(app: App, profile: string, login = 'alice'): Promise<void> {
  const pending = await app.client.request('login', { profile, wait: false, openBrowser: false });
  const { redirectUrl } = await world.user.signIn(pending.authorizationUrl!, { login });
  await app.client.callback(redirectUrl);
}
async function signInOther(app: App, profile = 'other'): Promise<void> {
  await world.user.clearSession();
  await signInProfile(app, profile, 'bob');
  await world.user.clearSession();
}

type Answer = { readonly token: TokenResult } | { readonly code: string; readonly message: string };

async function tokenGet(app: App, profile: string, rejected?: string): Promise<Answer> {
  try {
    return { token: await app.client.getToken({ profile, ...(rejected === undefined ? {} : { rejected }) }) };
  } catch (error) {
    if (error instanceof BrokerError) return { code: error.code, message: error.message };
    return { code: 'THROWN', message: String(error) };
  }
}

function lines(output: string): Array<Record<string, unknown>> {
  const parsed: Array<Record<string, unknown>> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      parsed.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the kill
    }
  }
  return parsed;
}
const logTime = (line: Record<string, unknown>) => Date.parse(String(line['time']));

/**
 * Waits `ms` — for short waits by polling with setImmediate: a timer of a few ms in this busy process (IdP, proxy,
 * browser driver) fires late, and short offsets are where the interesting kills are.
 */
function after(ms: number): Promise<void> {
  if (ms >= 30) return sleep(ms);
  const target = performance.now() + ms;
  return new Promise((resolve) => {
    const spin = () => (performance.now() >= target ? resolve() : setImmediate(spin));
    spin();
  });
}

/** SIGKILL now (synchronously, so it can be called at an exact moment); `dead` resolves with all it wrote. */
function kill9(daemon: DaemonProcess): { killedAt: number; dead: Promise<Array<Record<string, unknown>>> } {
  const closed = new Promise<void>((resolve) => daemon.child.once('close', () => resolve()));
  const killedAt = Date.now();
  daemon.child.kill('SIGKILL');
  return { killedAt, dead: closed.then(() => lines(daemon.output())) };
}

/** The IdP's answers at the token endpoint (taken at the proxy, the moment they leave the IdP). */
const answers: Array<{ at: number; status: number }> = [];
function slowTokenEndpoint(delayMs: number, onAnswer?: () => void): void {
  world.idp.faults!.setFault(TOKEN_ENDPOINT, {
    kind: 'forward',
    delayMs,
    onAnswer: (status) => {
      answers.push({ at: Date.now(), status });
      onAnswer?.();
    },
  });
}
/**
 * Token-endpoint POSTs the killed daemon had sent. Sent is enough: the IdP handles a request whose sender died (the
 * proxy passes it on after its delay, as a real server would), so from then on the old refresh token is spent.
 * Counted once the daemon is dead and the proxy has had time to read what it wrote: the proxy runs in this (busy)
 * process, and its arrival time can come after the kill for a request written before it.
 */
async function sentTokenRequests(since: number): Promise<number> {
  await sleep(100);
  return world.idp.requests.filter((r) => r.method === 'POST' && r.path === '/token' && r.at >= since).length;
}

// ---- trials ----------------------------------------------------------------------------------------------------

interface Trial {
  readonly n: number;
  readonly kind: Kind;
  readonly delayMs: number;
  readonly offsetMs: number;
  /** Where the kill fell, from the dead daemon's log and the IdP's side. */
  readonly phase: string;
  /** Sign-in complete before the kill (loggedIn received, or signed in before the trial). */
  readonly activeBefore: boolean;
  /** Within the rotation window: the IdP had the refresh, the keychain write had not finished. */
  readonly inWindow: boolean;
  outcome?: 'active' | 'logged-out' | 'lost-in-window' | 'lost' | 'broken';
  detail?: string;
  startupMs?: number;
  /** Logout trials: signed out locally, the refresh token still alive at the IdP (the kill came before revocation). */
  unrevoked?: boolean;
  /** Keychain-write trials: when the kill actually came, after the IdP's answer. */
  afterAnswerMs?: number;
}

interface Rig {
  harness: BrokerHarness;
  app: App;
}

async function ensureActive(rig: Rig): Promise<void> {
  const answer = await tokenGet(rig.app, 'main');
  if ('token' in answer) return;
  await signInProfile(rig.app, 'main');
}

async function ensureLoggedOut(rig: Rig): Promise<void> {
  const status = (await rig.app.client.status()).profiles.find((p) => p.name === 'main')!;
  if (status.expiresAt !== undefined) await rig.app.client.logout({ profile: 'main', openBrowser: false });
  await rig.app.client.cancelLogin({ profile: 'main' });
}

interface Killed {
  readonly killedAt: number;
  readonly dead: Array<Record<string, unknown>>;
  readonly phase: string;
  readonly activeBefore: boolean;
  readonly inWindow: boolean;
  /** Login trials killed before the redirect was delivered: it is delivered to the restarted daemon. */
  readonly undelivered?: string;
  readonly refreshTokenBefore?: string;
  /** Keychain-write trials: when the kill actually came, after the IdP's answer. */
  readonly afterAnswerMs?: number;
}

async function killDuringLogin(rig: Rig, delayMs: number, offsetMs: number): Promise<Killed> {
  const { app } = rig;
  const pending = await app.client.request('login', { profile: 'main', wait: false, openBrowser: false });
  const { redirectUrl } = await world.user.signIn(pending.authorizationUrl!);
  slowTokenEndpoint(delayMs);
  if (offsetMs < 0) {
    // The browser redirected; the daemon dies before `tokenbroker callback` reaches it.
    const { killedAt, dead } = kill9(rig.harness.daemon);
    return { killedAt, dead: await dead, phase: 'redirect not yet delivered', activeBefore: false, inWindow: false, undelivered: redirectUrl };
  }
  const from = app.events.length;
  const sent = Date.now();
  app.client.callback(redirectUrl).catch(() => undefined);
  await after(offsetMs);
  const activeBefore = app.events.slice(from).some((e) => e.event === 'loggedIn' && (e.data as { profile: string }).profile === 'main');
  const { killedAt, dead } = kill9(rig.harness.daemon);
  const log = await dead;
  const written = (await storedEntry(rig.harness)) !== undefined; // "main" had no entry before this sign-in
  const answered = answers.some((a) => a.at >= sent && a.at <= killedAt);
  const exchangeSent = (await sentTokenRequests(sent)) > 0;
  const phase = activeBefore
    ? 'after loggedIn'
    : written
      ? 'keychain written, loggedIn not yet received'
      : answered
        ? 'IdP answered, keychain not written'
        : exchangeSent
          ? 'code exchange sent, not answered'
          : 'redirect delivered, exchange not sent';
  return { killedAt, dead: log, phase, activeBefore, inWindow: false };
}

async function killDuringRefresh(rig: Rig, delayMs: number, offsetMs: number, aimAtKeychain: boolean): Promise<Killed> {
  const { app } = rig;
  const current = await app.client.getToken({ profile: 'main', minValidSeconds: 0 });
  const refreshTokenBefore = (await storedEntry(rig.harness))!['refreshToken'] as string;
  const daemon = rig.harness.daemon;
  let kill: ReturnType<typeof kill9> | undefined;
  let fired!: () => void;
  const killed = new Promise<void>((resolve) => (fired = resolve));
  const killNow = () => {
    kill ??= kill9(daemon);
    fired();
  };
  // Aimed at the keychain write: counted from the moment the IdP's answer leaves it. setImmediate polling, not a
  // timer: a timer of a few ms in this busy process (IdP, proxy, browser driver) fires late.
  let answeredAt: number | undefined;
  const aim = () => {
    answeredAt = Date.now();
    if (offsetMs === 0) killNow();
    else void after(offsetMs).then(killNow);
  };
  slowTokenEndpoint(delayMs, aimAtKeychain ? aim : undefined);
  const sent = Date.now();
  app.client.getToken({ profile: 'main', rejected: current.accessToken }).catch(() => undefined);
  if (!aimAtKeychain) void after(offsetMs).then(killNow);
  await Promise.race([killed, sleep(10_000).then(killNow)]);
  const { killedAt } = kill!;
  const log = await kill!.dead;
  const completed = log.some((l) => l['msg'] === 'access token refreshed' && l['profile'] === 'main' && logTime(l) >= sent);
  // Read straight from the keychain while no daemon runs: did the rotated refresh token get there?
  const written = (await storedEntry(rig.harness))?.['refreshToken'] !== refreshTokenBefore;
  const answered = answers.some((a) => a.at >= sent && a.at <= killedAt);
  const refreshSent = (await sentTokenRequests(sent)) > 0;
  const phase = completed
    ? 'refresh completed'
    : written
      ? 'keychain written, refresh not completed'
      : answered
        ? 'IdP answered, keychain not written'
        : refreshSent
          ? 'refresh sent, not answered'
          : 'before the refresh was sent';
  return {
    killedAt,
    dead: log,
    phase,
    activeBefore: true,
    inWindow: !written && refreshSent,
    refreshTokenBefore,
    ...(answeredAt === undefined ? {} : { afterAnswerMs: killedAt - answeredAt }),
  };
}

async function killDuringLogout(rig: Rig, delayMs: number, offsetMs: number): Promise<Killed> {
  const { app } = rig;
  const refreshTokenBefore = (await storedEntry(rig.harness))!['refreshToken'] as string;
  world.idp.faults!.setFault(REVOCATION_ENDPOINT, { kind: 'forward', delayMs });
  const sent = Date.now();
  app.client.logout({ profile: 'main', openBrowser: false }).catch(() => undefined);
  await after(offsetMs);
  const { killedAt, dead } = kill9(rig.harness.daemon);
  const log = await dead;
  world.idp.faults!.setFault(REVOCATION_ENDPOINT, null);
  const done = log.some((l) => l['msg'] === 'signed out' && logTime(l) >= sent);
  const deleted = (await storedEntry(rig.harness)) === undefined;
  await sleep(100); // as in sentTokenRequests: a request written before the kill may be read after it
  const revocation = world.idp.requests.find((r) => r.path === '/token/revocation' && r.at >= sent);
  const phase = done
    ? 'logout finished'
    : revocation?.status !== undefined
      ? 'revoked, logout not finished'
      : revocation
        ? 'keychain entry deleted, revocation sent'
        : deleted
          ? 'keychain entry deleted, revocation not sent'
          : 'before the keychain entry was deleted';
  return { killedAt, dead: log, phase, activeBefore: true, inWindow: false, refreshTokenBefore };
}

/**
 * Refresh timings for the window figure: from the IdP's answer (and from the request's arrival) to the daemon's
 * "access token refreshed" line, which it logs just after the keychain write: an upper bound of the window.
 */
const windowSamples: Array<{ kind: 'first after start' | 'steady'; fromRequestMs: number; fromAnswerMs: number; jwksFetched: boolean }> = [];

async function forcedRefresh(rig: Rig, token: TokenResult, sample: 'first after start' | 'steady'): Promise<Answer> {
  const sent = Date.now();
  const answersBefore = answers.length;
  const refreshedBefore = lines(rig.harness.daemon.output()).filter((l) => l['msg'] === 'access token refreshed').length;
  const answer = await tokenGet(rig.app, 'main', token.accessToken);
  if ('token' in answer) {
    const refreshedLine = () => lines(rig.harness.daemon.output()).filter((l) => l['msg'] === 'access token refreshed')[refreshedBefore];
    for (let i = 0; i < 50 && !refreshedLine(); i++) await sleep(20); // the log pipe may trail the socket
    const line = refreshedLine();
    const request = world.idp.requests.find((r) => r.method === 'POST' && r.path === '/token' && r.at >= sent);
    const idpAnswer = answers[answersBefore];
    if (line && request && idpAnswer) {
      const jwksFetched = world.idp.requests.some((r) => r.path === '/jwks' && r.at >= idpAnswer.at && r.at <= logTime(line));
      windowSamples.push({ kind: sample, fromRequestMs: logTime(line) - request.at, fromAnswerMs: logTime(line) - idpAnswer.at, jwksFetched });
    }
  }
  return answer;
}

/** After the restart: what the profile answers, and whether an active session survived. */
async function checkAfterRestart(rig: Rig, trial: Trial, killed: Killed): Promise<void> {
  const { app } = rig;
  slowTokenEndpoint(0);
  if (killed.undelivered !== undefined) {
    // The redirect finally arrives, at a daemon that never saw that sign-in: refused, changes nothing.
    const late = await app.client.callback(killed.undelivered).then(
      () => 'accepted',
      (error: unknown) => (error instanceof BrokerError ? error.code : String(error)),
    );
    if (late !== 'LOGIN_FAILED') {
      trial.outcome = 'broken';
      trial.detail = `the late redirect got ${late}, not LOGIN_FAILED`;
      return;
    }
  }
  const first = await tokenGet(app, 'main');
  const lost = (why: string) => {
    if (!trial.activeBefore) trial.outcome = 'logged-out';
    else trial.outcome = killed.inWindow ? 'lost-in-window' : 'lost';
    trial.detail = why;
  };
  if (!('token' in first)) {
    if (first.code !== 'LOGIN_REQUIRED') {
      trial.outcome = 'broken';
      trial.detail = `token.get: ${first.code} ${first.message}`;
      return;
    }
    if (trial.kind === 'logout') trial.outcome = 'logged-out';
    else lost('no session after the restart');
    return;
  }
  const introspected = await world.idp.introspect(first.token.accessToken);
  const refreshed = await forcedRefresh(rig, first.token, 'first after start');
  if ('token' in refreshed && introspected.active && (await world.idp.introspect(refreshed.token.accessToken)).active) {
    trial.outcome = 'active';
    const again = await forcedRefresh(rig, refreshed.token, 'steady');
    if (!('token' in again)) {
      trial.outcome = 'broken';
      trial.detail = `second forced refresh: ${again.code}`;
    }
    return;
  }
  if ('token' in refreshed) {
    trial.outcome = 'broken';
    trial.detail = 'a token the IdP calls inactive was handed out';
    return;
  }
  if (refreshed.code !== 'LOGIN_REQUIRED') {
    trial.outcome = 'broken';
    trial.detail = `forced refresh: ${refreshed.code} ${refreshed.message}`;
    return;
  }
  lost(`the restored session's refresh failed: ${refreshed.message}`);
}

async function runTrial(rig: Rig, n: number, kind: Kind): Promise<Trial> {
  if (kind === 'login') await ensureLoggedOut(rig);
  else await ensureActive(rig);
  let delayMs: number;
  let offsetMs: number;
  let killed: Killed;
  switch (kind) {
    case 'login':
      delayMs = random() < 0.25 ? 0 : between(50, 400);
      offsetMs = random() < 0.15 ? -1 : between(0, delayMs + 150);
      killed = await killDuringLogin(rig, delayMs, offsetMs);
      break;
    case 'refresh':
      delayMs = random() < 0.25 ? 0 : between(50, 300);
      offsetMs = random() < 0.2 ? between(0, 10) : between(0, delayMs + 80);
      killed = await killDuringRefresh(rig, delayMs, offsetMs, false);
      break;
    case 'keychain-write':
      delayMs = 0;
      offsetMs = between(0, 20);
      killed = await killDuringRefresh(rig, delayMs, offsetMs, true);
      break;
    case 'logout':
      delayMs = random() < 0.25 ? 0 : between(50, 300);
      // A third within the first few ms, where the keychain entry may not be deleted yet.
      offsetMs = random() < 0.33 ? between(0, 4) : between(0, delayMs + 80);
      killed = await killDuringLogout(rig, delayMs, offsetMs);
      break;
  }
  const trial: Trial = { n, kind, delayMs, offsetMs, phase: killed.phase, activeBefore: killed.activeBefore, inWindow: killed.inWindow };
  if (killed.afterAnswerMs !== undefined) trial.afterAnswerMs = killed.afterAnswerMs;
  await rig.app.client.close();
  const startedAt = Date.now();
  try {
    await rig.harness.restart();
  } catch (error) {
    trial.outcome = 'broken';
    trial.detail = `start-up failed: ${(error as Error).message.slice(0, 300)}`;
    throw Object.assign(new Error(`trial ${n} (${kind}): ${trial.detail}`), { trial });
  }
  trial.startupMs = Date.now() - startedAt;
  rig.app = await connectApp(rig.harness);
  await checkAfterRestart(rig, trial, killed);
  if (kind === 'logout' && trial.outcome === 'logged-out' && killed.refreshTokenBefore) {
    trial.unrevoked = (await world.idp.introspect(killed.refreshTokenBefore)).active;
  }
  // The other profile: untouched by whatever happened to "main".
  const other = await tokenGet(rig.app, 'other');
  if (!('token' in other) || !(await world.idp.introspect(other.token.accessToken)).active) {
    trial.outcome = 'broken';
    trial.detail = `profile "other": ${'code' in other ? other.code : 'inactive token'}`;
  }
  return trial;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
}
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(trials: readonly Trial[]): string {
  const rows = [['kind', 'trials', 'active before', 'active after', 'logged out', 'lost (rotation window)', 'lost (other)', 'broken']];
  for (const kind of [...KINDS, 'all'] as const) {
    const of = trials.filter((t) => kind === 'all' || t.kind === kind);
    const count = (outcome: Trial['outcome']) => of.filter((t) => t.outcome === outcome).length;
    rows.push(
      [
        kind,
        of.length,
        of.filter((t) => t.activeBefore).length,
        count('active'),
        count('logged-out'),
        count('lost-in-window'),
        count('lost'),
        count('broken'),
      ].map(String),
    );
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')).join('\n');
  const phases = new Map<string, { n: number; lost: number }>();
  for (const t of trials) {
    const key = `${t.kind}: ${t.phase}`;
    const entry = phases.get(key) ?? { n: 0, lost: 0 };
    entry.n++;
    if (t.outcome === 'lost-in-window' || t.outcome === 'lost') entry.lost++;
    phases.set(key, entry);
  }
  const phaseLines = [...phases].sort().map(([key, v]) => `  ${key}: ${v.n}${v.lost ? ` (${v.lost} lost)` : ''}`);
  const outcomes = (kind: Kind) => [...new Set(trials.filter((t) => t.kind === kind).map((t) => t.outcome))].join(', ');
  const first = windowSamples.filter((s) => s.kind === 'first after start');
  const steady = windowSamples.filter((s) => s.kind === 'steady');
  const fmt = (xs: number[]) => `median ${median(xs)} ms, p90 ${percentile(xs, 90)} ms, max ${Math.max(...xs)} ms`;
  const startups = trials.map((t) => t.startupMs ?? 0);
  return [
    `[crash] seed ${SEED}, ${trials.length} kill -9 trials (rotation on at the IdP)`,
    table,
    'where the kills fell:',
    ...phaseLines,
    `logout trials ended: ${outcomes('logout')}`,
    `rotation window (IdP answer sent → refresh complete), first refresh after a start: ${fmt(first.map((s) => s.fromAnswerMs))}; ` +
      `request arrived at the IdP → refresh complete: ${fmt(first.map((s) => s.fromRequestMs))} (${first.filter((s) => s.jwksFetched).length} of ${first.length} fetched the JWKS meanwhile)`,
    `rotation window, steady state: IdP answer → refresh complete ${fmt(steady.map((s) => s.fromAnswerMs))}; request → refresh complete ${fmt(steady.map((s) => s.fromRequestMs))}`,
    `keychain-write kills, ms after the IdP's answer → outcome: ${trials
      .filter((t) => t.afterAnswerMs !== undefined)
      .sort((a, b) => a.afterAnswerMs! - b.afterAnswerMs!)
      .map((t) => `${t.afterAnswerMs} ${t.outcome === 'active' ? 'ok' : t.outcome}`)
      .join(', ')}`,
    `logouts cut short before revocation (logged out locally, refresh token still alive at the IdP): ${trials.filter((t) => t.unrevoked).length}`,
    `restart to listening: ${fmt(startups)}`,
    ...trials
      .filter((t) => t.detail && t.outcome !== 'logged-out')
      .map((t) => `  trial ${t.n} ${t.kind} (${t.phase}, delay ${t.delayMs} ms, offset ${t.offsetMs} ms): ${t.outcome} — ${t.detail}`),
  ].join('\n');
}

// ---- the tests -------------------------------------------------------------------------------------------------

describe('crash safety: kill -9 at random moments', () => {
  it(
    `${TRIALS} trials across login, refresh (rotation on), the keychain write and logout: no active session lost outside the rotation window, nothing broken`,
    { timeout: 60_000 + TRIALS * 10_000 },
    async () => {
      const harness = await startBroker({
        defaultProfile: 'main',
        profiles: { main: idpProfile(world.idp, { httpTimeoutSeconds: 5 }), other: idpProfile(world.idp) },
      });
      const rig: Rig = { harness, app: await connectApp(harness) };
      const trials: Trial[] = [];
      try {
        await signInOther(rig.app);
        await signInProfile(rig.app, 'main');
        for (let n = 1; n <= TRIALS; n++) trials.push(await runTrial(rig, n, KINDS[(n - 1) % KINDS.length]!));

        // The survivor still refreshes, and "other" too, after all those kills.
        const main = await tokenGet(rig.app, 'main');
        if ('token' in main) expect('token' in (await tokenGet(rig.app, 'main', main.token.accessToken))).toBe(true);
        const other = await tokenGet(rig.app, 'other');
        expect('token' in other).toBe(true);
        if ('token' in other) expect('token' in (await tokenGet(rig.app, 'other', other.token.accessToken))).toBe(true);
      } finally {
        console.log(summary(trials));
        world.idp.faults!.clearFaults();
        await rig.app.client.close().catch(() => undefined);
        await harness.stop();
        for (const name of ['main', 'other']) await keytar.deletePassword(harness.keychainService, name).catch(() => false);
      }
      expect(trials.filter((t) => t.outcome === 'broken')).toEqual([]);
      expect(trials.filter((t) => t.outcome === 'lost')).toEqual([]);
      // Every active session that came back logged out did so inside the rotation window, in a refresh trial.
      for (const t of trials.filter((t) => t.outcome === 'lost-in-window')) expect(['refresh', 'keychain-write']).toContain(t.kind);
      // The sign-ins that had completed before the kill all survived.
      expect(trials.filter((t) => t.kind === 'login' && t.activeBefore && t.outcome !== 'active')).toEqual([]);
    },
  );

  it('entries that are not valid tokens (truncated, garbage, wrong types, newer version): start-up goes on, each is logged, the profile reads logged out, the others are unaffected', async () => {
    const corrupt = ['truncated', 'garbage', 'wrong-types', 'newer', 'empty-object'] as const;
    const profiles: Record<string, unknown> = { good: idpProfile(world.idp) };
    for (const name of corrupt) profiles[name] = idpProfile(world.idp);
    const harness = await startBroker({ defaultProfile: 'good', profiles });
    let app = await connectApp(harness);
    try {
      await signInProfile(app, 'good');
      const valid = (await keytar.getPassword(harness.keychainService, 'good'))!;
      const entry = JSON.parse(valid) as Record<string, unknown>;
      const raw: Record<(typeof corrupt)[number], string> = {
        truncated: valid.slice(0, Math.floor(valid.length / 2)), // a write cut in half
        garbage: 'ÿþ\u0001 not json {{{',
        'wrong-types': JSON.stringify({ ...entry, expiresAt: 'tomorrow' }),
        newer: JSON.stringify({ ...entry, v: 2 }),
        'empty-object': '{}',
      };
      for (const name of corrupt) await keytar.setPassword(harness.keychainService, name, raw[name]);

      await app.client.close();
      await kill9(harness.daemon).dead;
      await harness.restart();
      app = await connectApp(harness);

      const complaints = harness.daemon.logs().filter((l) => l['msg'] === 'ignoring an unreadable keychain entry; sign in again');
      expect(complaints.map((l) => l['profile']).sort()).toEqual([...corrupt].sort());
      expect(complaints.find((l) => l['profile'] === 'wrong-types')).toMatchObject({ field: 'expiresAt', level: 'error' });
      expect(complaints.find((l) => l['profile'] === 'newer')).toMatchObject({ field: 'v' });
      const status = await app.client.status();
      for (const name of corrupt) {
        expect(status.profiles.find((p) => p.name === name)).toMatchObject({ state: 'logged-out' });
        expect(await tokenGet(app, name)).toMatchObject({ code: 'LOGIN_REQUIRED' });
      }
      // The entries' tokens are never quoted in the log, not even the half of one.
      const accessToken = entry['accessToken'] as string;
      expect(harness.daemon.output()).not.toContain(accessToken.slice(0, 24));

      const good = await tokenGet(app, 'good');
      expect('token' in good && (await world.idp.introspect(good.token.accessToken)).active).toBe(true);
      if ('token' in good) expect('token' in (await tokenGet(app, 'good', good.token.accessToken))).toBe(true);

      // The next sign-in replaces a corrupt entry with a valid one.
      await signInProfile(app, 'truncated');
      expect(JSON.parse((await keytar.getPassword(harness.keychainService, 'truncated'))!)).toMatchObject({ v: 1, tokenType: 'Bearer' });
      expect('token' in (await tokenGet(app, 'truncated'))).toBe(true);
      console.log(
        `[crash] ${corrupt.length} corrupt keychain entries (${corrupt.join(', ')}): daemon started, ${complaints.length} logged, ${corrupt.length} profiles logged out, the valid profile active`,
      );
    } finally {
      await app.client.close().catch(() => undefined);
      await harness.stop();
      for (const name of [...corrupt, 'good']) await keytar.deletePassword(harness.keychainService, name).catch(() => false);
    }
  }, 60_000);
});
