/**
 * Another local user must not be able to sign our daemon in to *their* account (or end our sign-in).
 *
 * The attack this guards against: `open` used to put the whole authorization URL (state, nonce, PKCE
 * challenge, loopback port) on the command line of xdg-open and the browser, where any local user reads
 * it in /proc/<pid>/cmdline; that user completed the same request as themselves and delivered their
 * code to our loopback listener (PKCE and nonce pass): our apps then got the attacker's tokens.
 *
 * Here a real second Unix account (useradd + setpriv, as in hardening-other-users) scans /proc for the
 * browser's command line, replays what it finds, and delivers forged callbacks — with the real state
 * and a code the real IdP issued to it for our very authorization request. Every one must get 403 and
 * change nothing; the victim's own sign-in then completes as the victim. Also: the one-time launcher
 * (a second fetch aborts the sign-in), account switches (event + status), fixed-port loopback URIs.
 *
 *   node scripts/with-keyring.mjs vitest run test/hardening/signin-takeover.test.ts
 * Rounds: TOKENBROKER_TAKEOVER_ROUNDS (default 5). The other-user part needs root (skipped otherwise).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerEvent } from '../../client/index.js';
import { launchBrowserUser, LAUNCHER_URL, waitForBrowserUrl, type BrowserUser } from '../support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { runCli, startDaemon, tempDir } from '../support/daemon.js';
import { signInWithDevForm } from '../support/dev-form-login.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { canRunAsOtherUser, createOtherUser, otherUserSkipReason, type OtherUser } from '../support/other-user.js';

const ROUNDS = Number(process.env['TOKENBROKER_TAKEOVER_ROUNDS'] ?? 5);

let idp: TestIdp;
let user: BrowserUser;
let harnesses: BrokerHarness[] = [];
let scratch: string;
/** A browser stand-in that records its whole argv (one JSON line per run) and stays alive a moment. */
let recordingBrowser: string;
const figures: string[] = [];

const RECORDING_BROWSER = `#!/usr/bin/env node
import { appendFileSync } from 'node:fs';
const log = process.env.TOKENBROKER_TEST_BROWSER_LOG;
appendFileSync(log + '.argv', JSON.stringify({ pid: process.pid, argv: process.argv.slice(2) }) + '\\n');
appendFileSync(log, String(process.argv[2]).replace(/[\\r\\n]/g, '') + '\\n');
// Like a real browser, it keeps running: its command line stays readable in /proc meanwhile.
setTimeout(() => {}, Number(process.env.TB_BROWSER_LINGER_MS ?? 0));
`;

beforeAll(async () => {
  idp = await startTestIdp({ accessTokenTtl: 600 });
  user = await launchBrowserUser();
  scratch = tempDir('tb-takeover-');
  recordingBrowser = path.join(scratch, 'recording-browser.mjs');
  fs.writeFileSync(recordingBrowser, RECORDING_BROWSER, { mode: 0o755 });
});
afterAll(async () => {
  await user?.close();
  await idp?.close();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  if (figures.length > 0) console.log(['### Sign-in takeover — figures', '', ...figures.map((f) => `- ${f}`)].join('\n'));
});
afterEach(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
  harnesses = [];
  await user.clearSession();
});

async function broker(profiles: Record<string, Record<string, unknown>>, lingerMs = 0): Promise<BrokerHarness> {
  const harness = await startBroker({ profiles }, { env: { BROWSER: recordingBrowser, TB_BROWSER_LINGER_MS: String(lingerMs) } });
  harnesses.push(harness);
  return harness;
}

async function profileStatus(harness: BrokerHarness, name = 'main'): Promise<Record<string, unknown>> {
  const result = await runCli(['status', '--json'], { env: harness.env });
  return (JSON.parse(result.stdout) as { profiles: Array<Record<string, unknown>> }).profiles.find((p) => p['name'] === name)!;
}

/** Each run of the browser stand-in: its argv. */
function browserRuns(harness: BrokerHarness): Array<{ pid: number; argv: string[] }> {
  const file = path.join(harness.dir, 'browser.log.argv');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { pid: number; argv: string[] });
}

/** The URL the daemon opened last, as it was opened (not followed). */
async function openedUrl(harness: BrokerHarness, index: number): Promise<string> {
  return waitForBrowserUrl(path.join(harness.dir, 'browser.log'), { after: index, timeoutMs: 15_000 });
}

// ---- the other user's side ----------------------------------------------------------------------

/**
 * Scans /proc for command lines of the daemon's descendants (xdg-open, the browser) that carry a
 * loopback URL, as an attacker polling /proc would; then fetches each URL found (a replay).
 */
const SCAN_AND_REPLAY = `
import fs from 'node:fs';
import http from 'node:http';
const { daemonPid, scanMs } = JSON.parse(process.env.PROBE);
const parentOf = (pid) => { try { return Number(fs.readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1]); } catch { return 0; } };
const descends = (pid) => { for (let p = pid, n = 0; p > 1 && n < 20; p = parentOf(p), n++) if (p === daemonPid) return true; return false; };
const cmdlines = new Map();
const deadline = Date.now() + scanMs;
let firstSeen = 0;
while (Date.now() < deadline && !(firstSeen && Date.now() - firstSeen > 400)) {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let text;
    try { text = fs.readFileSync('/proc/' + entry + '/cmdline', 'utf8').split('\\0').join(' '); } catch { continue; }
    if (!text.includes('http://127.0.0.1:') || !descends(Number(entry))) continue;
    if (!cmdlines.has(entry)) cmdlines.set(entry, text);
    firstSeen ||= Date.now();
  }
  await new Promise((r) => setTimeout(r, 5));
}
const urls = [...new Set([...cmdlines.values()].flatMap((t) => t.match(/http:\\/\\/127\\.0\\.0\\.1:\\d+\\/\\S*/g) ?? []))];
const get = (url) => new Promise((resolve) => {
  http.get(url, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location ?? null })); })
    .on('error', (e) => resolve({ status: e.code, location: null }));
});
const replays = [];
for (const url of urls) replays.push({ url, ...(await get(url)) });
console.log(JSON.stringify({ uid: process.getuid(), cmdlines: [...cmdlines.values()], urls, replays }));
`;

/** Delivers each URL with a GET (a forged callback, or a launcher replay); reports status and Location. */
const DELIVER = `
import http from 'node:http';
const { urls } = JSON.parse(process.env.PROBE);
const get = (url) => new Promise((resolve) => {
  http.get(url, { agent: false }, (res) => { let body = ''; res.setEncoding('utf8').on('data', (c) => body += c); res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location ?? null, body: body.slice(0, 2000) })); })
    .on('error', (e) => resolve({ status: e.code, location: null, body: '' }));
});
const results = [];
for (const url of urls) results.push(await get(url));
console.log(JSON.stringify({ uid: process.getuid(), results }));
`;

describe.skipIf(!canRunAsOtherUser)('another local user against a loopback sign-in (real second user)', () => {
  let other: OtherUser;
  beforeAll(() => {
    other = createOtherUser();
    expect(other.uid).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await other?.remove();
  });

  async function asOther<T>(source: string, probe: unknown, timeoutMs = 30_000): Promise<T & { uid: number }> {
    const result = await other.runNode(source, { PROBE: JSON.stringify(probe) }, timeoutMs);
    expect(result.stderr).toBe('');
    const parsed = JSON.parse(result.stdout.trim().split('\n').pop()!) as T & { uid: number };
    expect(parsed.uid).toBe(other.uid);
    return parsed;
  }

  it(
    `reads only a launcher on the command lines; its replays and forged callbacks get 403 and change nothing; the victim's sign-in completes (${ROUNDS} rounds)`,
    async () => {
      const harness = await broker({ main: idpProfile(idp, { redirectUri: 'loopback' }) }, 2_500);
      const daemonPid = harness.daemon.child.pid!;
      const tally = { commandLines: 0, launcherReplays: 0, forged: 0, refused: 0, victimSignIns: 0, exchangesByAttacker: 0 };
      let previousToken: string | undefined;

      for (let round = 0; round < ROUNDS; round++) {
        // The attacker is already watching /proc when the victim starts signing in.
        const scan = asOther<{ cmdlines: string[]; urls: string[]; replays: Array<{ url: string; status: number | string; location: string | null }> }>(
          SCAN_AND_REPLAY,
          { daemonPid, scanMs: 20_000 },
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        const login = runCli(['login'], { env: harness.env, timeoutMs: 90_000 });
        const seen = await scan;

        // What the browser was given: the launcher only — no state, nonce or PKCE value.
        const opened = await openedUrl(harness, round);
        expect(opened).toMatch(LAUNCHER_URL);
        const run = browserRuns(harness)[round]!;
        expect(run.argv).toEqual([opened]);
        for (const secret of ['state=', 'nonce=', 'code_challenge=', '/auth?']) expect(run.argv.join(' ')).not.toContain(secret);
        // What the attacker read in /proc (xdg-open's and the browser's command lines): the same.
        expect(seen.cmdlines.length).toBeGreaterThanOrEqual(1);
        // Every loopback URL it saw is a launcher, ours among them (an earlier round's may still be on the
        // command line of its stand-in browser, which lives 2.5 s).
        expect(seen.urls).toContain(opened);
        for (const url of seen.urls) expect(url).toMatch(LAUNCHER_URL);
        for (const text of seen.cmdlines) for (const secret of ['state=', 'nonce=', 'code_challenge=']) expect(text).not.toContain(secret);
        tally.commandLines += seen.cmdlines.length;
        // Its replay of the launcher: 403, no authorization URL.
        // A launcher of an earlier round (its stand-in browser still alive) finds its listener closed.
        for (const replay of seen.replays) {
          expect(replay.url === opened ? [403] : [403, 'ECONNREFUSED']).toContain(replay.status);
          expect(replay.location).toBeNull();
        }
        expect(seen.replays.find((replay) => replay.url === opened)?.status).toBe(403);
        tally.launcherReplays += seen.replays.length;

        const pendingBefore = await profileStatus(harness);
        expect(pendingBefore['loginStartedAt']).toEqual(expect.any(Number));
        const exchangesBefore = idp.counts.authorizationCode;

        // The victim's browser follows the launcher (it was not used up by the attacker's attempt).
        const authorizeUrl = await harness.nextBrowserUrl();
        const authorize = new URL(authorizeUrl);
        const state = authorize.searchParams.get('state')!;
        const redirectUri = new URL(authorize.searchParams.get('redirect_uri')!);
        expect(redirectUri.origin).toBe(new URL(opened).origin);

        // Worst case: the attacker has the whole authorization URL anyway, completes that very request at
        // the real IdP as itself ("mallory") and gets a code bound to our PKCE challenge and nonce.
        const mallory = new URL(await signInWithDevForm(authorizeUrl, 'mallory'));
        expect(mallory.searchParams.get('state')).toBe(state);
        expect(mallory.searchParams.get('code')).toBeTruthy();
        const callbackBase = `${redirectUri.origin}${redirectUri.pathname}`;
        const forged = [
          mallory.toString(), // its code, our state: the takeover
          `${callbackBase}?error=access_denied&state=${state}&iss=${encodeURIComponent(idp.issuer)}`, // "the user said no"
          `${callbackBase}?code=${mallory.searchParams.get('code')}&state=${state}&iss=${encodeURIComponent('https://evil.example')}`, // bad iss
          `${callbackBase}?code=forged&state=${'x'.repeat(43)}`, // unknown state
          `${redirectUri.origin}/callback-elsewhere?code=forged&state=${state}`, // wrong path
          opened, // the launcher again
        ];
        const delivered = await asOther<{ results: Array<{ status: number | string; location: string | null; body: string }> }>(DELIVER, { urls: forged });
        delivered.results.forEach((r, i) => {
          expect(r.status, forged[i]).toBe(403);
          expect(r.location, forged[i]).toBeNull();
          expect(r.body).toMatch(/belongs to another user/);
        });
        tally.forged += forged.length - 1;
        tally.launcherReplays += 1;
        tally.refused += seen.replays.length + delivered.results.length;

        // Nothing changed: the same sign-in is pending, nobody's code was redeemed, the session (after
        // round 1) is still the victim's.
        const pendingAfter = await profileStatus(harness);
        expect(pendingAfter['loginStartedAt']).toBe(pendingBefore['loginStartedAt']);
        expect(pendingAfter['subject']).toBe(pendingBefore['subject']);
        expect(idp.counts.authorizationCode).toBe(exchangesBefore);
        if (previousToken !== undefined) expect((await runCli(['token'], { env: harness.env })).stdout.trim()).toBe(previousToken);

        // The victim signs in in its own browser: the redirect reaches the listener from the victim's uid.
        const { redirectUrl } = await user.signIn(authorizeUrl, { login: 'alice' });
        expect(redirectUrl.startsWith(callbackBase)).toBe(true);
        const done = await login;
        expect(done.code, done.stderr).toBe(0);
        expect(done.stdout).toMatch(/Signed in to main as alice/);
        expect(idp.counts.authorizationCode - exchangesBefore).toBe(1);
        const token = (await runCli(['token'], { env: harness.env })).stdout.trim();
        expect(await idp.introspect(token)).toMatchObject({ active: true, sub: 'alice' });
        const after = await profileStatus(harness);
        expect(after).toMatchObject({ state: 'active', subject: 'alice' });
        expect(after).not.toHaveProperty('previousSubject'); // never signed in as anyone else
        previousToken = token;
        tally.victimSignIns += 1;
        await user.clearSession();
      }

      expect(tally.victimSignIns).toBe(ROUNDS);
      figures.push(
        `other uid, ${ROUNDS} rounds: ${tally.commandLines} command lines read in /proc (xdg-open, browser) — each with the launcher only, 0 with state/nonce/code_challenge; ` +
          `${tally.launcherReplays} launcher replays + ${tally.forged} forged callbacks (its own IdP code with our state, error=access_denied, bad iss, unknown state, wrong path) → ${tally.refused} × 403; ` +
          `0 sign-ins changed or ended, 0 codes redeemed for the attacker; ${tally.victimSignIns} of ${ROUNDS} victim sign-ins completed as the victim`,
      );
    },
    60_000 + ROUNDS * 30_000,
  );
});

describe('the one-time launcher (same user)', () => {
  for (const kind of ['loopback', 'custom-scheme'] as const) {
    it(`a second fetch aborts the ${kind} sign-in with LOGIN_FAILED ("opened twice"), visibly`, async () => {
      const redirectUri = kind === 'loopback' ? 'loopback' : 'com.example.broker:/callback';
      const harness = await broker({ main: idpProfile(idp, { redirectUri }) });
      const client = await connect({ socketPath: harness.daemon.socketPath });
      const events: BrokerEvent[] = [];
      await client.subscribe((event) => events.push(event));
      const login = runCli(['login'], { env: harness.env, timeoutMs: 60_000 });
      const opened = await openedUrl(harness, 0);
      expect(opened).toMatch(LAUNCHER_URL);
      const authorizeUrl = await harness.nextBrowserUrl(); // the first fetch: the browser
      expect(new URL(authorizeUrl).searchParams.get('state')).toHaveLength(43);

      const second = await fetch(opened, { redirect: 'manual' });
      expect(second.status).toBe(410);
      expect(second.headers.get('location')).toBeNull();
      expect(await second.text()).toMatch(/opened twice/);

      const done = await login;
      expect(done.code).toBe(1);
      expect(done.stderr).toMatch(/LOGIN_FAILED/);
      expect(done.stderr).toMatch(/sign-in link was opened twice/);
      await expect
        .poll(() => events.find((e) => e.event === 'loginFailed')?.data)
        .toMatchObject({ profile: 'main', code: 'LOGIN_FAILED', message: expect.stringMatching(/opened twice/) as unknown });
      expect(await profileStatus(harness)).toMatchObject({ state: 'logged-out' });
      expect(await profileStatus(harness)).not.toHaveProperty('loginStartedAt');
      // The listener is gone with the sign-in.
      await expect(fetch(opened)).rejects.toThrow();
      await client.close();
    }, 60_000);
  }

  it('a custom-scheme sign-in completes through its launcher, and the launcher listener closes with it', async () => {
    const harness = await broker({ main: idpProfile(idp) });
    const login = runCli(['login'], { env: harness.env, timeoutMs: 60_000 });
    const opened = await openedUrl(harness, 0);
    const { redirectUrl } = await user.signIn(opened); // Chromium follows the launcher itself
    expect(redirectUrl).toMatch(/^com\.example\.broker:\/callback\?/);
    expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
    expect((await login).code).toBe(0);
    await expect(fetch(opened)).rejects.toThrow();
  }, 60_000);
});

describe('an account switch is never silent', () => {
  it('a sign-in as another subject is logged, published (accountChanged) and shown in status — also after a restart', async () => {
    const harness = await broker({ main: idpProfile(idp) });
    const signIn = async (login: string) => {
      const running = runCli(['login'], { env: harness.env, timeoutMs: 60_000 });
      const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl(), { login });
      expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
      await user.clearSession();
      return running;
    };
    const first = await signIn('alice');
    expect(first.code).toBe(0);
    expect(first.stderr).not.toMatch(/different account/);
    expect(await profileStatus(harness)).not.toHaveProperty('previousSubject');

    const client = await connect({ socketPath: harness.daemon.socketPath });
    const events: BrokerEvent[] = [];
    await client.subscribe((event) => events.push(event));
    const second = await signIn('bob');
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/different account than the previous session of main \(was alice, now bob\)/);
    await expect
      .poll(() => events.find((e) => e.event === 'accountChanged')?.data)
      .toMatchObject({ profile: 'main', previousSubject: 'alice', subject: 'bob', at: expect.any(Number) as unknown });
    const status = await profileStatus(harness);
    expect(status).toMatchObject({ subject: 'bob', previousSubject: 'alice', accountChangedAt: expect.any(Number) as unknown });
    const text = await runCli(['status'], { env: harness.env });
    expect(text.stdout).toMatch(/ACCOUNT CHANGED: main was signed in as alice; since .* it is bob/);
    const warned = harness.daemon.logs().filter((l) => l['msg'] === 'signed in to a different account than the previous session');
    expect(warned).toEqual([expect.objectContaining({ profile: 'main', previousSubject: 'alice', subject: 'bob' })]);
    await client.close();

    // The same subject again: no switch. After a restart the keychain's subject is the previous one.
    await harness.restart();
    const restarted = await connect({ socketPath: harness.daemon.socketPath });
    const afterRestart: BrokerEvent[] = [];
    await restarted.subscribe((event) => afterRestart.push(event));
    expect((await signIn('bob')).code).toBe(0);
    expect((await signIn('carol')).code).toBe(0);
    await expect
      .poll(() => afterRestart.filter((e) => e.event === 'accountChanged').map((e) => e.data))
      .toEqual([expect.objectContaining({ previousSubject: 'bob', subject: 'carol' })]);
    expect(await profileStatus(harness)).toMatchObject({ subject: 'carol', previousSubject: 'bob' });
    await restarted.close();
  }, 120_000);
});

describe('a fixed-port loopback redirect (http://127.0.0.1:<port>/callback)', () => {
  async function freePort(): Promise<number> {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return port;
  }

  it('binds the configured port and path, and signs in through it with the URI sent exactly as configured', async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const harness = await broker({ main: idpProfile(idp, { redirectUri }) });
    const login = runCli(['login'], { env: harness.env, timeoutMs: 60_000 });
    const opened = await openedUrl(harness, 0);
    expect(new URL(opened).port).toBe(String(port));
    const authorizeUrl = await harness.nextBrowserUrl();
    expect(new URL(authorizeUrl).searchParams.get('redirect_uri')).toBe(redirectUri);
    const { redirectUrl } = await user.signIn(authorizeUrl);
    expect(redirectUrl.startsWith(`${redirectUri}?`)).toBe(true);
    expect((await login).code).toBe(0);
    expect(await profileStatus(harness)).toMatchObject({ state: 'active', subject: 'alice' });
  }, 60_000);

  it('a port held by another program fails the sign-in with LOGIN_FAILED naming the port; nothing is opened', async () => {
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const harness = await broker({ main: idpProfile(idp, { redirectUri: `http://127.0.0.1:${port}/callback` }) });
      const login = await runCli(['login'], { env: harness.env, timeoutMs: 30_000 });
      expect(login.code).toBe(1);
      expect(login.stderr).toMatch(/LOGIN_FAILED/);
      expect(login.stderr).toContain(`port ${port} on 127.0.0.1`);
      expect(login.stderr).toMatch(/in use by another program/);
      expect(browserRuns(harness)).toEqual([]);
      expect(await profileStatus(harness)).not.toHaveProperty('loginStartedAt');
    } finally {
      squatter.close();
    }
  }, 60_000);

  it('localhost, [::1] and loopback URIs with a query are refused: CONFIG_INVALID naming the field', async () => {
    for (const redirectUri of [
      'http://localhost:18080/callback',
      'http://[::1]:18080/callback',
      'http://127.0.0.1:18080/callback?x=1',
      'http://127.0.0.1:0/callback',
      'http://127.0.0.1:18080/a/../callback',
    ]) {
      const dir = tempDir('tb-config-');
      try {
        const started = await startDaemon({ dir, config: { profiles: { main: idpProfile(idp, { redirectUri }) } } }).then(
          (d) => d.stop().then(() => 'started'),
          (error: Error) => error.message,
        );
        expect(started, redirectUri).toMatch(/exited with 6/);
        expect(started, redirectUri).toMatch(/CONFIG_INVALID|profiles\.main\.redirectUri/);
        expect(started, redirectUri).toContain('profiles.main.redirectUri: a loopback redirect must be http://127.0.0.1[:port]/path');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }, 60_000);
});

if (!canRunAsOtherUser) console.log(`hardening-signin-takeover: the other-user part is SKIPPED — ${otherUserSkipReason}. Run it as root (CI does).`);
