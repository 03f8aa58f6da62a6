/**
 * `tokenbroker profile add|list|show|use|remove` as a user runs them: the real CLI process, the real
 * OpenID provider (test/support/idp.ts) for the provider check, a real daemon with a signed-in profile
 * for `remove`, the real keychain, and on Linux the real scheme registration (xdg-mime).
 */
import fs from 'node:fs';
import path from 'node:path';
import keytar from 'keytar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerEvent } from '../../client/index.js';
import { loadConfig } from '../../daemon/config.js';
import { runCli, tempDir, waitFor } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';
import { startSignedIn } from '../support/signed-in.js';

/** A private HOME and XDG dirs, so the config and scheme handlers land in a temp dir. */
function userEnv(): { env: NodeJS.ProcessEnv; file: string } {
  const root = tempDir('tb-profile-');
  const env = {
    HOME: path.join(root, 'home'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_DATA_HOME: path.join(root, 'data'),
    XDG_DATA_DIRS: path.join(root, 'system'),
    TOKENBROKER_CONFIG: '',
    TOKENBROKER_SOCKET: path.join(root, 'no-daemon.sock'),
  };
  fs.mkdirSync(env.HOME, { recursive: true });
  return { env, file: path.join(env.XDG_CONFIG_HOME, 'tokenbroker', 'config.json') };
}

function json<T>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

describe('profile add checks the provider before writing', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await startTestIdp({ frontProxy: true });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('passes against a real provider (discovery, PKCE S256, JWKS) and writes the profile, 0600', async () => {
    const { env, file } = userEnv();
    const result = await runCli(
      ['profile', 'add', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId, '--scope', 'openid offline_access email', '--json'],
      {
        env,
      },
    );
    expect(result.code, result.stderr).toBe(0);
    const report = json<{ configPath: string; check: { ok: boolean; steps: Array<{ step: string; ok: boolean }> } }>(result.stdout);
    expect(report.configPath).toBe(file);
    expect(report.check.steps.map((s) => [s.step, s.ok])).toEqual([
      ['discovery', true],
      ['pkce', true],
      ['jwks', true],
    ]);
    expect(idp.requests.some((r) => r.path === '/.well-known/openid-configuration')).toBe(true);
    expect(idp.requests.some((r) => r.path === '/jwks')).toBe(true);
    const config = loadConfig(file);
    expect(config.defaultProfile).toBe('work');
    expect(config.profiles.get('work')).toMatchObject({ issuer: idp.issuer, clientId: idp.clientId, redirectUri: 'loopback' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
  });

  it('fails against a provider without S256, naming code_challenge_methods_supported, and writes nothing', async () => {
    const { env, file } = userEnv();
    const document = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(document['code_challenge_methods_supported']).toEqual(['S256']); // the real one does list it
    idp.faults!.setFault('/.well-known/openid-configuration', {
      kind: 'body',
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ ...document, code_challenge_methods_supported: ['plain'] }),
    });
    try {
      const result = await runCli(['profile', 'add', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId], { env });
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/FAIL\s+pkce/);
      expect(result.stderr).toContain('code_challenge_methods_supported');
      expect(result.stderr).toContain('S256');
      expect(result.stderr).toContain('Nothing was written');
      expect(fs.existsSync(file)).toBe(false);

      // --no-check writes anyway, and says that nothing was checked.
      const unchecked = await runCli(['profile', 'add', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId, '--no-check'], { env });
      expect(unchecked.code, unchecked.stderr).toBe(0);
      expect(unchecked.stdout).toContain('Provider check skipped (--no-check)');
      expect(loadConfig(file).profiles.has('work')).toBe(true);
    } finally {
      idp.faults!.setFault('/.well-known/openid-configuration', null);
    }
  });

  it('an unreachable issuer fails the check, naming the URL', async () => {
    const { env, file } = userEnv();
    const result = await runCli(['profile', 'add', 'work', '--issuer', 'http://127.0.0.1:9/', '--client-id', 'x'], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('http://127.0.0.1:9/.well-known/openid-configuration');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a wrong value names the field, the flag and what was expected (exit 2); a missing one names the flag', async () => {
    const { env, file } = userEnv();
    const bad = await runCli(['profile', 'add', 'work', '--issuer', 'http://login.example.com', '--client-id', 'x', '--no-check'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('profiles.work.issuer: must use https');
    expect(bad.stderr).toContain('--issuer');
    const missing = await runCli(['profile', 'add', 'work', '--issuer', idp.issuer], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing --client-id');
    expect(fs.existsSync(file)).toBe(false);
  });

  it.skipIf(requireOrSkip(onPath('xdg-mime'), 'needs xdg-mime (apt-get install xdg-utils)'))(
    'a custom-scheme redirect: --yes registers the handler (xdg-mime) before writing',
    async () => {
      const { env } = userEnv();
      const result = await runCli(
        ['profile', 'add', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId, '--redirect', 'com.example.broker:/callback', '--yes'],
        { env },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('com.example.broker: handler registered now');
      const status = await runCli(['scheme', 'status', '--scheme', 'com.example.broker', '--json'], { env });
      expect(json<{ registered: boolean }>(status.stdout).registered).toBe(true);
      // Without --yes and without a terminal: not registered, and the command to do it is printed.
      const other = userEnv();
      const noted = await runCli(
        ['profile', 'add', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId, '--redirect', 'com.example.broker:/callback'],
        {
          env: other.env,
        },
      );
      expect(noted.code, noted.stderr).toBe(0);
      expect(noted.stdout).toContain('tokenbroker scheme register --scheme com.example.broker');
    },
  );
});

describe('concurrent changes', () => {
  it('eight profile adds at once: none is lost', async () => {
    const { env, file } = userEnv();
    const names = Array.from({ length: 8 }, (_, i) => `p${i}`);
    const results = await Promise.all(
      names.map((name) =>
        runCli(['profile', 'add', name, '--issuer', 'https://login.example.com', '--client-id', name, '--no-check'], { env, timeoutMs: 60_000 }),
      ),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    expect([...loadConfig(file).profiles.keys()].sort()).toEqual(names);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['config.json']); // no lock or temp file left
  });
});

describe('profile list, show, use and remove with a running daemon', () => {
  it('remove signs a signed-in profile out through the daemon, then removes it; the rest of the file is kept', async () => {
    const world = await startSignedIn();
    try {
      const configPath = world.harness.daemon.configPath!;
      const env = { ...world.env, TOKENBROKER_CONFIG: configPath };
      // A second profile, and a section the CLI does not edit.
      const original = JSON.parse(fs.readFileSync(configPath, 'utf8')) as { profiles: Record<string, unknown> };
      const credentials = { git: [{ host: 'git.example.com', profile: 'main' }] };
      fs.writeFileSync(configPath, JSON.stringify({ ...original, credentials }, null, 4), { mode: 0o600 });
      const add = await runCli(['profile', 'add', 'other', '--issuer', world.idp.issuer, '--client-id', world.idp.clientId], { env });
      expect(add.code, add.stderr).toBe(0);

      const list = await runCli(['profile', 'list', '--json'], { env });
      expect(list.code, list.stderr).toBe(0);
      const listed = json<{ defaultProfile: string | null; profiles: Array<{ name: string; default: boolean }> }>(list.stdout);
      expect(listed.profiles.map((p) => p.name)).toEqual(['main', 'other']);
      expect(listed.defaultProfile).toBeNull();
      const human = await runCli(['profile', 'list'], { env });
      expect(human.stdout).toMatch(/^\s+main\s+oidc/m);

      const use = await runCli(['profile', 'use', 'main'], { env });
      expect(use.code, use.stderr).toBe(0);
      expect(loadConfig(configPath).defaultProfile).toBe('main');

      const show = await runCli(['profile', 'show', 'main', '--json'], { env });
      expect(show.code, show.stderr).toBe(0);
      const shown = json<{ default: boolean; written: Record<string, unknown>; resolved: { refresh: { leadSeconds: number } } }>(show.stdout);
      expect(shown.default).toBe(true);
      expect(shown.written).toEqual(original.profiles['main']);
      expect(shown.resolved.refresh.leadSeconds).toBe(60);
      const unknown = await runCli(['profile', 'show', 'nope'], { env });
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('no profile named "nope"');

      // Signed in, with tokens in the keychain.
      expect(await keytar.getPassword(world.harness.keychainService, 'main')).not.toBeNull();
      const events: BrokerEvent[] = [];
      await world.app.subscribe((event) => events.push(event));
      const revocationsBefore = world.idp.counts.revocation;

      const refused = await runCli(['profile', 'remove', 'main'], { env });
      expect(refused.code).toBe(2); // no terminal to ask on, and no --yes
      expect(refused.stderr).toContain('--yes');
      expect(loadConfig(configPath).profiles.has('main')).toBe(true);

      const remove = await runCli(['profile', 'remove', 'main', '--yes', '--json'], { env, timeoutMs: 60_000 });
      expect(remove.code, remove.stderr).toBe(0);
      const removed = json<{ wasDefault: boolean; signOut: { via: string; keychainCleared: boolean; revoked: boolean } }>(remove.stdout);
      expect(removed.signOut).toMatchObject({ via: 'daemon', keychainCleared: true, revoked: true });
      expect(removed.wasDefault).toBe(true);
      expect(world.idp.counts.revocation).toBe(revocationsBefore + 1);
      expect(await keytar.getPassword(world.harness.keychainService, 'main')).toBeNull();
      await waitFor(
        () => events.some((e) => e.event === 'loggedOut'),
        10_000,
        () => JSON.stringify(events),
      );

      const after = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      expect(after).toEqual({ profiles: { other: { issuer: world.idp.issuer, clientId: world.idp.clientId } }, credentials });
      expect(fs.readFileSync(configPath, 'utf8')).toMatch(/^\{\n {4}"profiles"/); // the file's own indentation
    } finally {
      await world.close();
    }
  });

  it('remove with the daemon stopped: deletes the keychain entry and revokes the refresh token itself', async () => {
    const world = await startSignedIn();
    try {
      const configPath = world.harness.daemon.configPath!;
      const env = { ...world.env, TOKENBROKER_CONFIG: configPath };
      const stored = JSON.parse((await keytar.getPassword(world.harness.keychainService, 'main'))!) as { refreshToken?: string };
      expect(stored.refreshToken).toBeDefined();
      expect((await world.idp.introspect(stored.refreshToken!)).active).toBe(true);
      await world.harness.stop();
      const revocationsBefore = world.idp.counts.revocation;
      const remove = await runCli(['profile', 'remove', 'main', '--yes', '--json'], { env, timeoutMs: 60_000 });
      expect(remove.code, remove.stderr).toBe(0);
      expect(json<{ signOut: unknown }>(remove.stdout).signOut).toEqual({ via: 'keychain', keychainCleared: true, revoked: true });
      expect(world.idp.counts.revocation).toBe(revocationsBefore + 1);
      expect((await world.idp.introspect(stored.refreshToken!)).active).toBe(false);
      expect(await keytar.getPassword(world.harness.keychainService, 'main')).toBeNull();
      expect(loadConfig(configPath).profiles.size).toBe(0);
    } finally {
      await world.close();
    }
  });

  it('remove without a daemon deletes the keychain entry directly', async () => {
    const { env, file } = userEnv();
    const service = `tokenbroker-test-profile-${process.pid}`;
    const withKeychain = { ...env, TOKENBROKER_KEYCHAIN_SERVICE: service };
    const add = await runCli(['profile', 'add', 'gone', '--issuer', 'https://login.example.com', '--client-id', 'x', '--no-check'], { env: withKeychain });
    expect(add.code, add.stderr).toBe(0);
    await keytar.setPassword(service, 'gone', '{"v":1}');
    try {
      const remove = await runCli(['profile', 'remove', 'gone', '--yes'], { env: withKeychain });
      expect(remove.code, remove.stderr).toBe(0);
      expect(remove.stdout).toContain('keychain entry deleted');
      expect(await keytar.getPassword(service, 'gone')).toBeNull();
      expect(loadConfig(file).profiles.size).toBe(0);
    } finally {
      await keytar.deletePassword(service, 'gone');
    }
  });
});
