/**
 * `tokenbroker token --format …` and `--force-refresh` against the real daemon, signed in at the test IdP.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatToken, rfc3339, shellQuote } from '../../daemon/cli/token-format.js';
import { CLI, runCli, runCommand } from '../support/daemon.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

let s: SignedIn;
beforeAll(async () => {
  s = await startSignedIn();
}, 90_000);
afterAll(async () => {
  await s?.close();
});

const token = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(['token', ...args], { env: { ...s.env, ...env } });
/**
 * As kubectl runs it: each run from a parent process of its own (a second run from the same parent with
 * KUBERNETES_EXEC_INFO set is kubectl's retry after a 401, see integration-kubectl).
 */
const tokenAsKubectl = (args: string[], env: NodeJS.ProcessEnv) =>
  runCommand(['sh', '-c', '"$@"; exit $?', 'sh', process.execPath, CLI, 'token', ...args], { env: { ...process.env, ...s.env, ...env } });

describe('tokenbroker token --format', () => {
  it('token (the default) prints the access token alone', async () => {
    const current = await s.app.getToken();
    const r = await token([]);
    expect(r).toMatchObject({ code: 0, stdout: `${current.accessToken}\n`, stderr: '' });
    expect((await token(['--format', 'token'])).stdout).toBe(`${current.accessToken}\n`);
  });

  it('header prints an RFC 6750 Authorization header', async () => {
    const current = await s.app.getToken();
    expect((await token(['--format', 'header'])).stdout).toBe(`Authorization: Bearer ${current.accessToken}\n`);
  });

  it('json and its alias --json print the token result', async () => {
    const current = await s.app.getToken();
    for (const args of [['--format', 'json'], ['--json']]) {
      const r = await token(args);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ ...current });
    }
  });

  it('env prints export lines a POSIX shell evaluates back to the exact values', async () => {
    const current = await s.app.getToken();
    const r = await token(['--format', 'env']);
    expect(r.code).toBe(0);
    const shell = spawnSync(
      'sh',
      [
        '-c',
        'eval "$1"; printf "%s\\n%s\\n%s\\n%s" "$TOKENBROKER_ACCESS_TOKEN" "$TOKENBROKER_TOKEN_TYPE" "$TOKENBROKER_EXPIRES_AT" "$TOKENBROKER_PROFILE"',
        'sh',
        r.stdout,
      ],
      { encoding: 'utf8' },
    );
    expect(shell.stdout.split('\n')).toEqual([current.accessToken, current.tokenType, rfc3339(current.expiresAt), 'main']);
  });

  it('env quoting survives quotes, spaces, $ and backticks (shell round trip)', () => {
    const nasty = `a'b "c" $(touch /tmp/x) \`id\` \\ $HOME`;
    const shell = spawnSync(
      'sh',
      [
        '-c',
        `eval "export V=${shellQuote(nasty).replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$').replaceAll('`', '\\`')}"; printf %s "$V"`,
      ],
      { encoding: 'utf8' },
    );
    expect(shell.stdout).toBe(nasty);
    const lines = formatToken({ profile: "it's", accessToken: nasty, tokenType: 'Bearer', expiresAt: 0, scopes: [] }, 'env');
    const evaluated = spawnSync('sh', ['-c', 'eval "$1"; printf %s "$TOKENBROKER_ACCESS_TOKEN|$TOKENBROKER_PROFILE"', 'sh', lines], { encoding: 'utf8' });
    expect(evaluated.stdout).toBe(`${nasty}|it's`);
  });

  it('exec-credential answers in the apiVersion kubectl asks for, v1 when KUBERNETES_EXEC_INFO is absent', async () => {
    const current = await s.app.getToken();
    const expected = (apiVersion: string) => ({
      apiVersion,
      kind: 'ExecCredential',
      status: { token: current.accessToken, expirationTimestamp: rfc3339(current.expiresAt) },
    });
    for (const apiVersion of ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1']) {
      const info = JSON.stringify({ kind: 'ExecCredential', apiVersion, spec: { interactive: false } });
      const r = await tokenAsKubectl(['--format', 'exec-credential'], { KUBERNETES_EXEC_INFO: info });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(expected(apiVersion));
    }
    const r = await token(['--format', 'exec-credential'], { KUBERNETES_EXEC_INFO: '' });
    expect(JSON.parse(r.stdout)).toEqual(expected('client.authentication.k8s.io/v1'));
    expect((JSON.parse(r.stdout) as { status: { expirationTimestamp: string } }).status.expirationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('exec-credential refuses an apiVersion it cannot answer, naming the supported ones (exit 2)', async () => {
    const info = JSON.stringify({ kind: 'ExecCredential', apiVersion: 'client.authentication.k8s.io/v1alpha1', spec: {} });
    const r = await tokenAsKubectl(['--format', 'exec-credential'], { KUBERNETES_EXEC_INFO: info });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('client.authentication.k8s.io/v1alpha1');
    expect(r.stderr).toContain('supported: client.authentication.k8s.io/v1, client.authentication.k8s.io/v1beta1');
  });

  it('an unknown format, or --json with another format, is a usage error', async () => {
    const r = await token(['--format', 'yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--format must be one of token, header, json, env, exec-credential');
    expect((await token(['--json', '--format', 'header'])).code).toBe(2);
  });
});

describe('tokenbroker token --force-refresh', () => {
  it('reports the current token as rejected: one refresh, and the new token is printed', async () => {
    const before = await s.app.getToken();
    const grants = s.idp.counts.refreshToken;
    const r = await token(['--force-refresh']);
    expect(r.code).toBe(0);
    const printed = r.stdout.trim();
    expect(printed).not.toBe(before.accessToken);
    expect(s.idp.counts.refreshToken - grants).toBe(1);
    expect((await s.idp.introspect(printed)).active).toBe(true);
    expect((await s.app.getToken()).accessToken).toBe(printed);
  });
});

describe('tokenbroker token: bad input', () => {
  it('no daemon: exit 3 and a message on stderr, nothing on stdout', async () => {
    const r = await runCli(['token', '--format', 'exec-credential'], { env: { TOKENBROKER_SOCKET: `${s.harness.dir}/nothing-here.sock` } });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/DAEMON_NOT_RUNNING/);
  });
});
