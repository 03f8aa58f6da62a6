/**
 * kubectl with `tokenbroker token --format exec-credential` as its exec credential plugin: the real
 * kubectl on PATH (Debian's kubernetes-client in CI) against a small HTTPS API server that accepts only
 * tokens the test IdP issued (introspection). kubectl runs exec plugins only for TLS servers, hence the
 * self-signed certificate and `insecure-skip-tls-verify`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCommand, tempDir, type CliResult } from '../support/daemon.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';
import { startTlsApi, VERSION_BODY, type TlsApi } from '../support/tls-api.js';

let s: SignedIn;
let api: TlsApi;
let dir: string;
let kubectlMinor: number;

beforeAll(async () => {
  const version = await runCommand(['kubectl', 'version', '--client', '-o', 'json'], { env: process.env });
  kubectlMinor = Number.parseInt((JSON.parse(version.stdout) as { clientVersion: { minor: string } }).clientVersion.minor, 10);
  s = await startSignedIn();
  dir = tempDir('tb-kubectl-');
  api = await startTlsApi(s.idp, dir);
}, 90_000);
afterAll(async () => {
  await api?.close();
  await s?.close();
});

/** exec.apiVersion v1 exists from kubectl 1.22 (v1beta1 from 1.11). */
const apiVersions = () =>
  kubectlMinor >= 22 ? ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] : ['client.authentication.k8s.io/v1beta1'];

function kubeconfig(apiVersion: string): string {
  const file = path.join(dir, `kubeconfig-${apiVersion.split('/')[1]}`);
  const exec = {
    apiVersion,
    command: process.execPath,
    args: [CLI, 'token', '--format', 'exec-credential'],
    ...(apiVersion.endsWith('/v1') ? { interactiveMode: 'Never' } : {}),
  };
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'test',
      clusters: [{ name: 'test', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'tokenbroker' } }],
      users: [{ name: 'tokenbroker', user: { exec } }],
    }),
  );
  return file;
}

function kubectl(apiVersion: string, env: NodeJS.ProcessEnv = s.env): Promise<CliResult> {
  return runCommand(['kubectl', 'get', '--raw', '/version'], {
    env: { PATH: process.env['PATH'], HOME: dir, KUBECONFIG: kubeconfig(apiVersion), ...env },
    timeoutMs: 30_000,
  });
}

describe('kubectl get --raw /version', () => {
  it('succeeds with the broker’s token, for each ExecCredential version this kubectl supports', async () => {
    const current = await s.app.getToken();
    for (const apiVersion of apiVersions()) {
      const seen = api.requests.length;
      const r = await kubectl(apiVersion);
      expect(r.stderr, apiVersion).toBe('');
      expect(r.code, apiVersion).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(VERSION_BODY);
      // (kubectl 1.32 asks for /version twice in this command; 1.20 once.)
      const requests = api.requests.slice(seen);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests).toEqual(requests.map(() => ({ path: '/version', token: current.accessToken, status: 200 })));
    }
  });

  it('a 401: kubectl fails that command and re-runs the plugin, which reports the token; the next kubectl succeeds with a fresh one', async () => {
    const apiVersion = apiVersions()[0]!;
    const old = await s.app.getToken();
    api.reject(old.accessToken);
    const grants = s.idp.counts.refreshToken;
    const seen = api.requests.length;

    const first = await kubectl(apiVersion);
    expect(first.code).not.toBe(0);
    expect(first.stderr).toMatch(/Unauthorized/);
    expect(s.idp.counts.refreshToken - grants).toBe(1); // the plugin's second run in that kubectl reported the token
    // What it remembered for that: hashes only, in a 0600 file next to the socket.
    const memory = path.join(path.dirname(s.harness.daemon.socketPath), 'kubectl-handouts.json');
    expect(fs.statSync(memory).mode & 0o777).toBe(0o600);
    const remembered = fs.readFileSync(memory, 'utf8');
    expect(remembered).not.toContain(old.accessToken);
    expect(remembered).not.toContain((await s.app.getToken()).accessToken);
    expect(Object.values(JSON.parse(remembered) as Record<string, { sha256: string }>).every((e) => /^[0-9a-f]{64}$/.test(e.sha256))).toBe(true);

    const second = await kubectl(apiVersion);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    const requests = api.requests.slice(seen);
    const refused = requests.filter((r) => r.status === 401);
    const accepted = requests.at(-1);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused).toEqual(refused.map(() => ({ path: '/version', token: old.accessToken, status: 401 })));
    expect(accepted!.status).toBe(200);
    expect(accepted!.token).not.toBe(old.accessToken);
    expect((await s.idp.introspect(accepted!.token!)).active).toBe(true);
    expect(s.idp.counts.refreshToken - grants).toBe(1);
  });

  it('two kubectl runs in a row without a 401 cause no refresh', async () => {
    const grants = s.idp.counts.refreshToken;
    expect((await kubectl(apiVersions()[0]!)).code).toBe(0);
    expect((await kubectl(apiVersions()[0]!)).code).toBe(0);
    expect(s.idp.counts.refreshToken).toBe(grants);
  });
});

describe('bad input: kubectl shows our message', () => {
  it('no daemon', async () => {
    const started = Date.now();
    const r = await kubectl(apiVersions()[0]!, { TOKENBROKER_SOCKET: path.join(dir, 'no-daemon.sock') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('tokenbroker: ');
    expect(r.stderr).toContain('[DAEMON_NOT_RUNNING]');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('nobody signed in: the message says to run tokenbroker login, without hanging', async () => {
    const signedOut = await startSignedIn({ signIn: false });
    try {
      const started = Date.now();
      const r = await kubectl(apiVersions()[0]!, signedOut.env);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('[LOGIN_REQUIRED]');
      expect(r.stderr).toContain('tokenbroker login');
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await signedOut.close();
    }
  }, 90_000);
});

describe('outside kubectl', () => {
  it('repeated runs from one shell (no KUBERNETES_EXEC_INFO) never count as a 401: no refresh', async () => {
    const grants = s.idp.counts.refreshToken;
    const current = await s.app.getToken();
    const r = await runCommand(['sh', '-c', `for i in 1 2 3; do "$0" "$1" token --format exec-credential || exit 1; done`, process.execPath, CLI], {
      env: { PATH: process.env['PATH'], ...s.env },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(0);
    const printed = r.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { status: { token: string } }).status.token);
    expect(printed).toEqual([current.accessToken, current.accessToken, current.accessToken]);
    expect(s.idp.counts.refreshToken).toBe(grants);
  });
});
