/**
 * No secrets leak (issue 7, item 3). Two parts:
 *
 * - Unit: a Secret and a StoredTokens object print as "[redacted]" through every way Node turns a value
 *   into text; pino's redact list (the second layer) catches tokens under the known keys; a real got
 *   error from a token request, logged as `err`, does not carry the request's secrets into the log.
 * - End to end, with the daemon at `--log-level trace`: sign-in through the custom scheme, apps asking for
 *   tokens, refreshes (forced and by the timer, with refresh-token rotation on), failed callbacks (forged
 *   state, a replayed code, a provider error), a restart, logout. Then every daemon log line, every CLI
 *   stdout/stderr, every `status --json`, every error message and every event a subscribed app received is
 *   scanned for every secret the IdP issued or was sent in that run (`idp.issuedSecrets`: access,
 *   refresh and ID tokens, authorization codes, PKCE verifiers). Target: 0 hits.
 *
 * Not scanned, because they carry a secret by design: `tokenbroker token` stdout and `token.get` results
 * (the access token is the product). The provider logout URL is scanned too: it carries no
 * `id_token_hint` (it reaches the browser's command line). See docs/security.md.
 *
 *   node scripts/with-keyring.mjs vitest run test/hardening/secrets.test.ts
 */
import { Console } from 'node:console';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { format, inspect } from 'node:util';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient, type BrokerEvent } from '../../client/index.js';
import { createLogger, REDACT_PATHS } from '../../daemon/log.js';
import { Secret } from '../../daemon/secret.js';
import type { StoredTokens } from '../../daemon/store/keychain.js';
import { launchBrowserUser, type BrowserUser } from '../support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { runCli, waitFor, type CliResult } from '../support/daemon.js';
import { closedPort } from '../support/closed-port.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

const RAW = 'raw-secret-7f3a9c1e5b2d4f6a8c0e';

function capture(): { stream: Writable; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

describe('secrets never print (unit)', () => {
  const secret = new Secret(RAW);
  const tokens: StoredTokens = {
    accessToken: new Secret(`${RAW}-access`),
    refreshToken: new Secret(`${RAW}-refresh`),
    idToken: new Secret(`${RAW}-id`),
    expiresAt: 1,
    scopes: ['openid'],
    tokenType: 'Bearer',
    subject: 'alice',
    savedAt: 1,
  };

  it('a Secret is "[redacted]" through String, templates, JSON, inspect, format and console.log', () => {
    const renderings: Record<string, string> = {
      'String()': String(secret),
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- the test renders a Secret as a careless log line would
      template: `${secret}`,
      // eslint-disable-next-line @typescript-eslint/restrict-plus-operands -- the test renders a Secret as a careless log line would
      concatenation: '' + secret,
      'JSON.stringify': JSON.stringify(secret),
      'JSON.stringify (nested)': JSON.stringify({ a: [secret] }),
      'util.inspect': inspect(secret),
      'util.inspect showHidden': inspect(secret, { showHidden: true, depth: Infinity }),
      'util.inspect without custom inspect': inspect(secret, { customInspect: false, showHidden: true }),
      'format %s': format('%s', secret),
      'format %o': format('%o', secret),
      'format %O': format('%O', secret),
      'format %j': format('%j', secret),
      'Object.entries': JSON.stringify(Object.entries(secret)),
      spread: inspect({ ...secret }),
      structuredClone: inspect(structuredClone(secret)),
    };
    const logged = capture();
    const console2 = new Console(logged.stream);
    console2.log(secret);
    console2.log({ secret });
    console2.error('%s', secret);
    console2.dir(secret, { showHidden: true });
    renderings['console.log/error/dir'] = logged.text();
    for (const [how, text] of Object.entries(renderings)) expect(text, how).not.toContain(RAW);
    expect(String(secret)).toBe('[redacted]');
    expect(JSON.stringify(secret)).toBe('"[redacted]"');
    expect(inspect(secret)).toBe('[redacted]');
    expect(secret.reveal()).toBe(RAW); // the one way out, at the place the value is sent
  });

  it('a StoredTokens object shows every token as "[redacted]"', () => {
    const texts = [
      inspect(tokens),
      inspect(tokens, { depth: Infinity, showHidden: true }),
      JSON.stringify(tokens),
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the test renders the tokens as a careless log line would
      String(tokens),
      // eslint-disable-next-line @typescript-eslint/no-base-to-string, @typescript-eslint/restrict-template-expressions -- as above
      `${tokens}`,
      format('%o %O %j', tokens, tokens, tokens),
    ];
    for (const text of texts) expect(text).not.toContain(RAW);
    expect(JSON.parse(JSON.stringify(tokens))).toMatchObject({
      accessToken: '[redacted]',
      refreshToken: '[redacted]',
      idToken: '[redacted]',
      subject: 'alice',
    });
    expect(inspect(tokens)).toMatch(/accessToken: \[redacted\]/);
  });

  it("pino's redact list catches raw tokens under the known keys, up to two levels down", () => {
    const out = capture();
    const log = createLogger('trace', out.stream);
    log.info({ accessToken: RAW, refresh_token: RAW, code_verifier: RAW }, 'top level');
    log.info({ response: { id_token: RAW, access_token: RAW }, request: { authorization: `Bearer ${RAW}`, password: RAW } }, 'one level down');
    log.info({ a: { body: { refreshToken: RAW, codeVerifier: RAW, authorizationCode: RAW, client_secret: RAW, token: RAW } } }, 'two levels down');
    log.info({ tokens }, 'wrapped secrets (first layer)');
    const text = out.text();
    expect(text.split('\n').filter(Boolean)).toHaveLength(4);
    expect(text).not.toContain(RAW);
    expect(text.match(/\[redacted\]/g)!.length).toBe(3 + 4 + 5 + 3);
    // The documented edge of the second layer: three levels down is not in the list. The first layer
    // (Secret) is what protects tokens there; the daemon never logs raw provider objects.
    expect(REDACT_PATHS).not.toContain('*.*.*.token');
    const deep = capture();
    createLogger('trace', deep.stream).info({ a: { b: { c: { token: 'three-levels-down' } } } }, 'deep');
    expect(deep.text()).toContain('three-levels-down');
  });

  it('a got error from a token request, logged as err, carries none of the request or response secrets', async () => {
    const server = http.createServer((_request, response) => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'invalid_grant', echo: `${RAW}-echoed` }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const out = capture();
    const log = createLogger('trace', out.stream);
    try {
      for (const url of [`http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, `http://127.0.0.1:${await closedPort()}/token`]) {
        const error = await got
          .post(url, {
            form: { grant_type: 'refresh_token', refresh_token: `${RAW}-rt`, code_verifier: `${RAW}-v` },
            headers: { authorization: `Basic ${RAW}` },
            retry: { limit: 0 },
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        log.error({ err: error }, 'unexpected error'); // as ipc-server.ts and session.ts do for non-BrokerErrors
      }
    } finally {
      server.close();
    }
    expect(out.text().split('\n').filter(Boolean)).toHaveLength(2);
    expect(out.text()).not.toContain(RAW);
  });
});

// ---- end to end ------------------------------------------------------------------------------------

let idp: TestIdp;
let user: BrowserUser;
let harness: BrokerHarness;

beforeAll(async () => {
  idp = await startTestIdp({ accessTokenTtl: 600, rotateRefreshTokens: true });
  user = await launchBrowserUser();
  harness = await startBroker({ profiles: { main: idpProfile(idp) } }, { logLevel: 'trace' });
});
afterAll(async () => {
  await harness?.stop();
  await user?.close();
  await idp?.close();
});

describe('no secret in any output of a whole session (trace logging)', () => {
  it('login, apps, refreshes, failed callbacks, restart, logout: 0 hits', async () => {
    const scanned: Array<{ source: string; text: string }> = [];
    const keep = (source: string, result: CliResult | string) =>
      scanned.push(
        typeof result === 'string' ? { source, text: result } : { source: `${source} stdout`, text: result.stdout },
        ...(typeof result === 'string' ? [] : [{ source: `${source} stderr`, text: result.stderr }]),
      );
    const cli = (args: string[], timeoutMs = 30_000) => runCli(args, { env: harness.env, timeoutMs });
    const daemons = [harness.daemon];
    const events: BrokerEvent[] = [];
    const errors: string[] = [];
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => expect.unreachable('should have failed'),
        (error: Error) => errors.push(error.message),
      );

    const watcher = await connect({ socketPath: harness.daemon.socketPath, clientName: 'watcher' });
    await watcher.subscribe((event) => events.push(event));
    await failure(watcher.getToken()); // LOGIN_REQUIRED before sign-in

    // Sign in through the custom scheme: tokenbroker login → browser → tokenbroker callback.
    const login = cli(['login'], 60_000);
    const { redirectUrl: firstRedirect } = await user.signIn(await harness.nextBrowserUrl());
    keep('callback', await cli(['callback', firstRedirect]));
    const loggedIn = await login;
    expect(loggedIn.code).toBe(0);
    keep('login', loggedIn);
    keep('status --json', await cli(['status', '--json']));

    // Apps ask for tokens; the CLI prints one (its stdout is the product: only stderr is scanned).
    const apps: BrokerClient[] = await Promise.all([1, 2, 3].map((n) => connect({ socketPath: harness.daemon.socketPath, clientName: `app-${n}` })));
    let current = (await Promise.all(apps.map((app) => app.getToken())))[0]!.accessToken;
    const token = await cli(['token']);
    expect(token.code).toBe(0);
    scanned.push({ source: 'token stderr', text: token.stderr });

    // Refreshes forced by an API's 401, with rotation on at the IdP...
    for (let i = 0; i < 2; i++) {
      const fresh = await apps[i % 3]!.getToken({ rejected: current });
      expect(fresh.accessToken).not.toBe(current);
      current = fresh.accessToken;
    }
    // ...and by the timer, once tokens live 6 s.
    idp.setAccessTokenTtl(6);
    await apps[0]!.getToken({ rejected: current });
    const refreshedSoFar = events.filter((e) => e.event === 'tokenRefreshed').length;
    await waitFor(
      () => events.filter((e) => e.event === 'tokenRefreshed').length >= refreshedSoFar + 2,
      20_000,
      () => 'two timer refreshes',
    );
    idp.setAccessTokenTtl(600);
    keep('status --json (refreshed)', await cli(['status', '--json']));
    keep('status', await cli(['status']));

    // Failed callbacks: a forged state; a real code replayed into a new sign-in; the provider's error.
    keep('callback forged', await cli(['callback', `com.example.broker:/callback?code=forged&state=${'f'.repeat(43)}`]));
    const replayLogin = cli(['login'], 60_000);
    const replayUrl = new URL(await harness.nextBrowserUrl());
    const replayed = new URL(firstRedirect); // its code was redeemed at the first sign-in
    replayed.searchParams.set('state', replayUrl.searchParams.get('state')!);
    const replay = await cli(['callback', replayed.toString()]);
    expect(replay.code).toBe(1);
    keep('callback replayed code', replay);
    keep('login (replayed code)', await replayLogin);
    const deniedLogin = cli(['login'], 60_000);
    const deniedUrl = new URL(await harness.nextBrowserUrl());
    keep(
      'callback error=',
      await cli([
        'callback',
        `com.example.broker:/callback?error=access_denied&error_description=no&state=${deniedUrl.searchParams.get('state')}&iss=${encodeURIComponent(idp.issuer)}`,
      ]),
    );
    keep('login (denied)', await deniedLogin);

    // A restart brings the session back from the keychain.
    await Promise.all([...apps, watcher].map((c) => c.close()));
    await harness.restart();
    daemons.push(harness.daemon);
    const after = await connect({ socketPath: harness.daemon.socketPath, clientName: 'after-restart' });
    await after.subscribe((event) => events.push(event));
    await after.getToken();
    keep('status --json (restored)', await cli(['status', '--json']));

    // Logout: keychain, revocation, provider logout page.
    const logout = await cli(['logout', '--json']);
    expect(logout.code).toBe(0);
    const outcome = JSON.parse(logout.stdout) as { revoked: boolean; logoutUrl?: string };
    expect(outcome.revoked).toBe(true);
    const logoutUrl = outcome.logoutUrl ?? '';
    scanned.push({ source: 'logout --json stdout', text: logout.stdout });
    scanned.push({ source: 'logout stderr', text: logout.stderr });
    keep('logout (again, human)', await cli(['logout', '--no-browser']));
    keep('token after logout', await cli(['token']));
    await failure(after.getToken());
    await waitFor(() => events.some((e) => e.event === 'loggedOut'));
    await after.close();
    await harness.stop();

    for (const [i, d] of daemons.entries()) scanned.push({ source: `daemon #${i + 1} log`, text: d.output() });
    scanned.push({ source: 'events', text: events.map((e) => JSON.stringify(e)).join('\n') });
    scanned.push({ source: 'client error messages', text: errors.join('\n') });

    // The scan: every secret, whole and by its last 24 characters (a truncated print would still show).
    const secrets = [...idp.issuedSecrets];
    const needles = secrets.flatMap((s) => (s.length >= 32 ? [s, s.slice(-24)] : [s]));
    const hits: string[] = [];
    let lines = 0;
    for (const { source, text } of scanned) {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        lines++;
        for (const needle of needles) if (line.includes(needle)) hits.push(`${source}: …${needle.slice(0, 6)}… in ${line.slice(0, 120)}`);
      }
    }
    // The logout URL reaches the browser's command line: it must carry no token (no id_token_hint).
    const idTokenInLogoutUrl = secrets.some((s) => logoutUrl.includes(s));
    const jwts = secrets.filter((s) => s.split('.').length === 3).length;
    const codes = secrets.filter((s) => new URL(firstRedirect).searchParams.get('code') === s).length;
    const logLines = daemons.reduce((n, d) => n + d.output().split('\n').filter(Boolean).length, 0);
    console.log(
      [
        '### No secrets leak — end-to-end scan at --log-level trace',
        '',
        '| figure | value |',
        '|---|---:|',
        `| distinct secrets issued or sent in the run (tokens, codes, verifiers) | ${secrets.length} (${jwts} JWTs) |`,
        `| refreshes (tokenRefreshed events) | ${events.filter((e) => e.event === 'tokenRefreshed').length} |`,
        `| sources scanned | ${scanned.length} |`,
        `| lines scanned | ${lines} (daemon log lines: ${logLines}; events: ${events.length}) |`,
        `| hits (whole secret or its last 24 characters) | ${hits.length} |`,
        `| the provider logout URL carries a token | ${idTokenInLogoutUrl ? 'yes' : 'no'} |`,
        '',
      ].join('\n'),
    );
    expect(codes).toBe(1);
    expect(secrets.length).toBeGreaterThanOrEqual(15);
    expect(events.filter((e) => e.event === 'tokenRefreshed').length).toBeGreaterThanOrEqual(5);
    expect(hits).toEqual([]);
    expect(idTokenInLogoutUrl).toBe(false);
  }, 180_000);
});
