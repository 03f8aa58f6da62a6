/**
 * git with `tokenbroker git-credential` as its credential helper: the real git clones and pushes over
 * HTTP from git http-backend behind a server that requires Basic auth whose password is a live token
 * (introspection at the test IdP). HOME points at a temp dir, so the user's git config is never touched.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, runCommand, tempDir, type CliResult } from '../support/daemon.js';
import { startGitHttpServer, type GitHttpServer } from '../support/git-http-server.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

let s: SignedIn;
let server: GitHttpServer;
let dir: string;
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s = await startSignedIn();
  dir = tempDir('tb-git-');
  home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const root = path.join(dir, 'srv');
  fs.mkdirSync(root);
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', path.join(root, 'repo.git')]);
  execFileSync('git', ['-C', path.join(root, 'repo.git'), 'config', 'http.receivepack', 'true']);
  server = await startGitHttpServer(s.idp, root);
  env = {
    PATH: process.env['PATH'],
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0', // never a prompt: a missing credential fails at once
    GIT_AUTHOR_NAME: 'Ada',
    GIT_AUTHOR_EMAIL: 'ada@example.com',
    GIT_COMMITTER_NAME: 'Ada',
    GIT_COMMITTER_EMAIL: 'ada@example.com',
    ...s.env,
  };
}, 90_000);
afterAll(async () => {
  await server?.close();
  await s?.close();
});

const git = (args: string[], cwd = dir, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  runCommand(['git', ...args], { env: { ...env, ...extraEnv }, cwd, timeoutMs: 30_000 });
const credential = (operation: string, input: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}) =>
  runCli(['git-credential', ...args, operation], { env: { ...env, ...extraEnv }, input });

describe('tokenbroker setup-git', () => {
  it('--dry-run prints the git config commands and writes nothing', async () => {
    const r = await runCli(['setup-git', '--host', server.origin, '--profile', 'main', '--dry-run'], { env });
    expect(r.code).toBe(0);
    const key = `credential.${server.origin}.helper`;
    expect(r.stdout).toContain(`git config --global --replace-all ${key} ''`);
    expect(r.stdout).toContain(`git config --global --add ${key} '!`);
    expect(fs.existsSync(path.join(home, '.gitconfig'))).toBe(false);
    // The printed commands are shell-ready: run them in another temp HOME and read back what they set.
    const other = tempDir('tb-git-home-');
    execFileSync('sh', ['-c', r.stdout], { env: { ...env, HOME: other } });
    const helpers = execFileSync('git', ['config', '--global', '--get-all', key], { env: { ...env, HOME: other }, encoding: 'utf8' });
    expect(helpers).toBe(`\n!'${process.execPath}' '${CLI}' git-credential --username 'oauth2' --profile 'main'\n`);
  });

  it('writes credential.<url>.helper into the (temp) global git config', async () => {
    const r = await runCli(['setup-git', '--host', server.origin, '--profile', 'main'], { env });
    expect(r.code).toBe(0);
    const helpers = execFileSync('git', ['config', '--global', '--get-all', `credential.${server.origin}.helper`], { env, encoding: 'utf8' }).split('\n');
    expect(helpers[0]).toBe('');
    expect(helpers[1]).toBe(`!'${process.execPath}' '${CLI}' git-credential --username 'oauth2' --profile 'main'`);
  });

  it('refuses plain http to a non-loopback host', async () => {
    const r = await runCli(['setup-git', '--host', 'http://git.example.com', '--dry-run'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('must use https');
  });
});

describe('git clone and push over HTTP with the broker’s token', () => {
  it('clone, commit, push: the server saw the broker’s token as the password', async () => {
    const current = await s.app.getToken();
    const r = await git(['clone', '-q', `${server.origin}/repo.git`, 'work']);
    expect(r.stderr).not.toMatch(/fatal/);
    expect(r.code).toBe(0);
    const work = path.join(dir, 'work');
    fs.writeFileSync(path.join(work, 'README'), 'hello\n');
    expect((await git(['add', 'README'], work)).code).toBe(0);
    expect((await git(['commit', '-q', '-m', 'first'], work)).code).toBe(0);
    const push = await git(['push', '-q', 'origin', 'HEAD:main'], work);
    expect(push.stderr).not.toMatch(/fatal/);
    expect(push.code).toBe(0);
    const authed = server.requests.filter((q) => q.status === 200);
    expect(authed.length).toBeGreaterThan(0);
    expect(authed.every((q) => q.username === 'oauth2' && q.password === current.accessToken)).toBe(true);
    const log = execFileSync('git', ['--git-dir', path.join(dir, 'srv', 'repo.git'), 'log', '--format=%s', 'main'], { encoding: 'utf8' });
    expect(log.trim()).toBe('first');
  });

  it('a 401 for the token: git erases it (the daemon refreshes once), and the next git command succeeds with a fresh token', async () => {
    const old = await s.app.getToken();
    server.reject(old.accessToken);
    const grants = s.idp.counts.refreshToken;
    const seen = server.requests.length;
    const work = path.join(dir, 'work');

    const first = await git(['fetch', '-q', 'origin'], work);
    expect(first.code).not.toBe(0);
    expect(s.idp.counts.refreshToken - grants).toBe(1); // erase reported the refused token

    const second = await git(['fetch', '-q', 'origin'], work);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    const after = server.requests.slice(seen);
    expect(after.filter((q) => q.password === old.accessToken).every((q) => q.status === 401)).toBe(true);
    const fresh = after.filter((q) => q.status === 200);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((q) => q.password !== old.accessToken)).toBe(true);
    expect((await s.idp.introspect(fresh[0]!.password!)).active).toBe(true);
    expect(s.idp.counts.refreshToken - grants).toBe(1);
  });
});

describe('tokenbroker git-credential (the protocol)', () => {
  it('get for a host in the config: username and password from the mapping', async () => {
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ credentials: { git: [{ host: 'git.example.com', profile: 'main', username: 'x-access-token' }] } }));
    const current = await s.app.getToken();
    const r = await credential('get', 'protocol=https\nhost=git.example.com\n\n', ['--config', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`username=x-access-token\npassword=${current.accessToken}\npassword_expiry_utc=${Math.floor(current.expiresAt / 1000)}\n`);
  });

  it('an unknown host, or the right host over the wrong protocol: no output, exit 0', async () => {
    const config = path.join(dir, 'config.json');
    for (const input of ['protocol=https\nhost=other.example.com\n', 'protocol=http\nhost=git.example.com\n']) {
      const r = await credential('get', input, ['--config', config]);
      expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    }
  });

  it('store is a no-op; an operation git may add later is silently ignored (gitcredentials(7))', async () => {
    const r = await credential('store', 'protocol=https\nhost=git.example.com\nusername=oauth2\npassword=whatever\n', ['--profile', 'main']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const future = await credential('capability', 'protocol=https\nhost=git.example.com\n', ['--profile', 'main']);
    expect(future).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('a broken credentials section: exit 6 naming the field', async () => {
    const config = path.join(dir, 'bad.json');
    fs.writeFileSync(config, JSON.stringify({ credentials: { git: [{ host: 'git.example.com', profle: 'x' }] } }));
    const r = await credential('get', 'protocol=https\nhost=git.example.com\n', ['--config', config]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('credentials.git[0].profle');
  });

  it('no daemon: our message on stderr, no credential; git fails without a prompt', async () => {
    const noDaemon = { TOKENBROKER_SOCKET: path.join(dir, 'none.sock') };
    const r = await credential('get', 'protocol=http\nhost=127.0.0.1\n', ['--profile', 'main'], noDaemon);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('[DAEMON_NOT_RUNNING]');
    const clone = await git(['clone', '-q', `${server.origin}/repo.git`, 'nodaemon'], dir, noDaemon);
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toContain('[DAEMON_NOT_RUNNING]');
  });

  it('nobody signed in: the message says to run tokenbroker login, without hanging', async () => {
    const signedOut = await startSignedIn({ signIn: false });
    try {
      const started = Date.now();
      const r = await credential('get', 'protocol=http\nhost=127.0.0.1\n', ['--profile', 'main'], signedOut.env);
      expect(r.code).toBe(5);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('tokenbroker login');
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await signedOut.close();
    }
  }, 90_000);
});
