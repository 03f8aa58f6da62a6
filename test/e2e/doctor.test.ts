/**
 * `tokenbroker doctor`: a healthy setup is all green, and each broken setup fails the check that names
 * it, with the fix. Real parts: the compiled CLI, a running daemon, oidc-provider as the IdP, the Secret
 * Service (run this file through scripts/with-keyring.mjs), xdg-mime for the scheme handler. Only
 * `systemctl` is a stand-in (a script on PATH), since a container has no systemd user instance.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { runCli, tempDir } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

interface Check {
  id: string;
  title: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  checks: Check[];
}

const FAKE_SYSTEMCTL = `#!/bin/sh
# Stands in for "systemctl --user is-active tokenbroker.service": answers $FAKE_SYSTEMD_STATE (default active).
state="\${FAKE_SYSTEMD_STATE:-active}"
case "$*" in
  *is-active*) echo "$state"; [ "$state" = active ] ;;
  *is-enabled*) echo enabled ;;
  *) exit 0 ;;
esac
`;

let idp: TestIdp;
let broker: BrokerHarness;
let root: string;
/** A desktop session of its own: HOME and XDG dirs in a temp dir, fake systemctl first on PATH. */
let env: NodeJS.ProcessEnv;
let configPath: string;

beforeAll(async () => {
  root = tempDir('tb-doctor-');
  const home = path.join(root, 'home');
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'systemctl'), FAKE_SYSTEMCTL, { mode: 0o755 });
  const unitDir = path.join(home, '.config', 'systemd', 'user');
  fs.mkdirSync(unitDir, { recursive: true });
  fs.writeFileSync(path.join(unitDir, 'tokenbroker.service'), '[Unit]\nDescription=tokenbroker (doctor test)\n');

  idp = await startTestIdp();
  broker = await startBroker({ profiles: { main: idpProfile(idp) } });
  configPath = broker.daemon.configPath!;
  env = {
    ...broker.env, // TOKENBROKER_SOCKET and TOKENBROKER_KEYCHAIN_SERVICE of this daemon
    TOKENBROKER_CONFIG: '',
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    XDG_DATA_DIRS: path.join(root, 'system'),
    PATH: `${bin}${path.delimiter}${process.env['PATH'] ?? ''}`,
  };
  const registered = await runCli(['scheme', 'register', '--scheme', 'com.example.broker'], { env });
  expect(registered.code, registered.stderr).toBe(0);
});

afterAll(async () => {
  await broker?.stop();
  await idp?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

async function doctor(args: string[], overrides: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; report: Report; check: (id: string) => Check }> {
  const run = await runCli(['doctor', '--json', ...args], { env: { ...env, ...overrides } });
  expect(run.stderr).toBe('');
  const report = JSON.parse(run.stdout) as Report;
  const check = (id: string): Check => {
    const found = report.checks.find((c) => c.id === id);
    if (found === undefined) throw new Error(`no check "${id}" in ${run.stdout}`);
    return found;
  };
  return { code: run.code, report, check };
}

const failing = (report: Report): string[] =>
  report.checks
    .filter((c) => c.status === 'fail')
    .map((c) => c.id)
    .sort();

function writeConfig(name: string, config: unknown): string {
  const file = path.join(root, name);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

describe('a healthy setup', () => {
  it('is all green: every check ok, exit 0', async () => {
    const { code, report, check } = await doctor(['--config', configPath]);
    expect(report.checks.map((c) => c.id)).toEqual(['node', 'config', 'socket-dir', 'daemon', 'keychain', 'service', 'scheme:main', 'provider:main']);
    expect(report.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(report.ok).toBe(true);
    expect(code).toBe(0);
    expect(check('node').detail).toContain(process.versions.node);
    expect(check('config').detail).toBe(`${configPath}: 1 profile: main (default)`);
    expect(check('daemon').detail).toMatch(new RegExp(`^running: pid ${broker.daemon.child.pid}, version \\S+, up \\d+s, 1 profile`));
    expect(check('keychain').detail).toContain(`service "${broker.keychainService}"`);
    expect(check('service').detail).toMatch(/installed .* and running under systemd/);
    expect(check('scheme:main').detail).toMatch(/^registered: .*tokenbroker-com\.example\.broker\.desktop/);
    expect(check('provider:main').detail).toMatch(/^discovery and JWKS reachable \(1 key, http:\/\/127\.0\.0\.1:\d+\/jwks\); clock skew [+-]\d+\.\d s$/);
  });

  it('prints one line per check with ✓, and no fix lines', async () => {
    const run = await runCli(['doctor', '--config', configPath], { env });
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 8).map((line) => line[0])).toEqual(Array(8).fill('✓'));
    expect(run.stdout).not.toContain('fix:');
    expect(lines.at(-1)).toBe('All checks passed.');
  });

  it('--help explains every check', async () => {
    const run = await runCli(['doctor', '--help']);
    expect(run.code).toBe(0);
    for (const id of ['node', 'config', 'socket-dir', 'daemon', 'keychain', 'service', 'scheme:<profile>', 'provider:<profile>']) {
      expect(run.stdout).toMatch(new RegExp(`^  ${id.replace(/[<>]/g, '\\$&')} `, 'm'));
    }
  });
});

describe('a broken setup fails the check that names it, with the fix', () => {
  it('no daemon: "daemon" fails with DAEMON_NOT_RUNNING and how to start one; exit 1', async () => {
    const socket = path.join(root, 'no-daemon', 'broker.sock');
    const { code, report, check } = await doctor(['--config', configPath, '--socket', socket]);
    expect(failing(report)).toEqual(['daemon']);
    expect(check('daemon').detail).toBe(`not running: nothing answers on ${socket} [DAEMON_NOT_RUNNING]`);
    expect(check('daemon').fix).toMatch(/"tokenbroker service install".*"tokenbroker daemon"/);
    expect(check('socket-dir').detail).toMatch(/does not exist yet; the daemon creates it/);
    expect(report.ok).toBe(false);
    expect(code).toBe(1);

    const human = await runCli(['doctor', '--config', configPath, '--socket', socket], { env });
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^✗ daemon +not running: .*\n +fix: start it: "tokenbroker service install"/m);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe('1 failed.');
  });

  it('bad config: "config" fails naming the field, and no profile checks run', async () => {
    const file = writeConfig('bad.json', { profiles: { main: { ...idpProfile(idp), issuer: 'http://login.example.com' } } });
    const { code, report, check } = await doctor(['--config', file]);
    expect(failing(report)).toEqual(['config']);
    expect(check('config').detail).toMatch(new RegExp(`^${file}: profiles\\.main\\.issuer: must use https`));
    expect(check('config').fix).toBe(`edit ${file}: correct the field "profiles.main.issuer" (see the README, section "Configuration")`);
    expect(report.checks.some((c) => c.id.includes(':'))).toBe(false);
    expect(code).toBe(1);
  });

  it('no config file at the default path: only a warning, pointing at the README and the path; exit 0', async () => {
    const home = path.join(root, 'fresh-home');
    const { code, check } = await doctor([], { XDG_CONFIG_HOME: path.join(home, '.config') });
    const expected = path.join(home, '.config', 'tokenbroker', 'config.json');
    expect(check('config')).toMatchObject({ status: 'warn', detail: `no config file at ${expected}: no profiles configured` });
    expect(check('config').fix).toMatch(new RegExp(`^create ${expected} .*README, section "Configuration"`));
    // That HOME has no unit file either: a warning too, not a failure.
    expect(check('service')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/^tokenbroker service install/) as unknown });
    expect(code).toBe(0);
  });

  it('world-readable socket directory: "socket-dir" fails with chmod 700', async () => {
    const dir = path.join(root, 'open');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    const { code, report, check } = await doctor(['--config', configPath, '--socket', path.join(dir, 'broker.sock')]);
    // No daemon listens there either.
    expect(failing(report)).toEqual(['daemon', 'socket-dir']);
    expect(check('socket-dir').detail).toBe(`${dir} has mode 755: other users can reach the socket (it must be 0700)`);
    expect(check('socket-dir').fix).toBe(`chmod 700 ${dir}`);
    expect(code).toBe(1);
  });

  it('no keychain: "keychain" fails with the hint of KEYCHAIN_UNAVAILABLE', async () => {
    const { code, report, check } = await doctor(['--config', configPath], { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', DISPLAY: '' });
    expect(failing(report)).toEqual(['keychain']);
    expect(check('keychain').detail).toMatch(/^Cannot use the OS keychain \(service "tokenbroker-test-\w+"\): .* \[KEYCHAIN_UNAVAILABLE\]$/);
    expect(check('keychain').fix).toMatch(/^there is no D-Bus session bus: run tokenbroker inside your desktop session/);
    expect(code).toBe(1);
  });

  it('service installed but not running: "service" fails, pointing at the logs and a restart', async () => {
    const { code, report, check } = await doctor(['--config', configPath], { FAKE_SYSTEMD_STATE: 'failed' });
    expect(failing(report)).toEqual(['service']);
    expect(check('service').detail).toMatch(/^installed \(.*tokenbroker\.service\) but not running/);
    expect(check('service').fix).toBe('see why with "tokenbroker service logs", then systemctl --user restart tokenbroker');
    expect(code).toBe(1);
  });

  it('scheme handler not registered: "scheme:<profile>" fails with the register command; loopback profiles skip', async () => {
    const file = writeConfig('other-scheme.json', {
      profiles: {
        other: idpProfile(idp, { redirectUri: 'com.example.other:/callback', postLogoutRedirectUri: 'com.example.other:/logged-out' }),
        local: idpProfile(idp, { redirectUri: 'loopback', postLogoutRedirectUri: 'http://127.0.0.1/logged-out' }),
      },
    });
    const { code, report, check } = await doctor(['--config', file]);
    expect(failing(report)).toEqual(['scheme:other']);
    expect(check('scheme:other').detail).toMatch(/^com\.example\.other: not registered/);
    expect(check('scheme:other').fix).toBe(`tokenbroker scheme register --profile other --config ${file}`);
    expect(check('scheme:local')).toMatchObject({ status: 'skip', detail: 'loopback redirect (loopback): no scheme handler needed' });
    // The daemon runs with another config than the one checked: worth a warning.
    expect(check('daemon')).toMatchObject({ status: 'warn', detail: expect.stringContaining(`while these checks used ${file}`) as unknown });
    expect(code).toBe(1);
  });

  it('unreachable provider: "provider:<profile>" fails naming the URL and the error code', async () => {
    const port = await closedPort();
    const file = writeConfig('down.json', { profiles: { down: { issuer: `http://127.0.0.1:${port}`, clientId: 'x', redirectUri: 'loopback' } } });
    const started = Date.now();
    const { code, report, check } = await doctor(['--config', file]);
    expect(failing(report)).toEqual(['provider:down']);
    expect(check('provider:down').detail).toBe(`discovery http://127.0.0.1:${port}/.well-known/openid-configuration failed: ECONNREFUSED`);
    expect(check('provider:down').fix).toMatch(new RegExp(`^check that 127\\.0\\.0\\.1:${port} is reachable .* profiles\\.down\\.issuer is right`));
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000); // no retries with backoff
  });

  it('clock skew: 10 minutes off fails ("sign-ins will fail"), 45 s off warns', async () => {
    const skewed = await startSkewedIssuer({ '/ahead': 600_000, '/behind': -45_000 });
    try {
      const file = writeConfig('skew.json', {
        profiles: {
          ahead: { issuer: `${skewed.origin}/ahead`, clientId: 'x', redirectUri: 'loopback' },
          behind: { issuer: `${skewed.origin}/behind`, clientId: 'x', redirectUri: 'loopback' },
        },
      });
      const { code, report, check } = await doctor(['--config', file]);
      expect(failing(report)).toEqual(['provider:ahead']);
      expect(check('provider:ahead').detail).toMatch(
        /^discovery and JWKS reachable \(1 key, .*\/ahead\/jwks\), but this machine's clock is (599|600|601) s behind the provider's \(more than 60 s\): sign-ins will fail and token expiry checks will be wrong$/,
      );
      expect(check('provider:ahead').fix).toMatch(/^synchronise this machine's clock: enable NTP \(systemd: timedatectl set-ntp true/);
      expect(check('provider:behind')).toMatchObject({
        status: 'warn',
        detail: expect.stringMatching(/this machine's clock is (44|45|46) s ahead of the provider's \(more than 30 s\)/) as unknown,
      });
      expect(code).toBe(1);
    } finally {
      await skewed.close();
    }
  });
});

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A minimal OpenID provider posing as several issuers (`<origin>/<name>`), each answering with a `Date`
 * header that is off by its offset.
 */
async function startSkewedIssuer(offsets: Record<string, number>): Promise<{ origin: string; close(): Promise<void> }> {
  let origin = '';
  const server = http.createServer((request, response) => {
    const [, name = '', ...rest] = (request.url ?? '').split('/');
    const prefix = `/${name}`;
    const offset = offsets[prefix];
    if (offset === undefined) {
      response.writeHead(404).end();
      return;
    }
    const issuer = `${origin}${prefix}`;
    const route = `/${rest.join('/')}`;
    const body =
      route === '/.well-known/openid-configuration'
        ? {
            issuer,
            authorization_endpoint: `${issuer}/auth`,
            token_endpoint: `${issuer}/token`,
            jwks_uri: `${issuer}/jwks`,
            response_types_supported: ['code'],
          }
        : route === '/jwks'
          ? { keys: [{ kty: 'RSA', kid: 'k1', use: 'sig', alg: 'RS256', n: 'sXchw', e: 'AQAB' }] }
          : undefined;
    if (body === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.setHeader('Date', new Date(Date.now() + offset).toUTCString());
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
