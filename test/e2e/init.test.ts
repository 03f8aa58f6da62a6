/**
 * `tokenbroker init` scripted, as a setup script or a dotfiles installer would run it: the real CLI
 * process in a temp HOME / XDG_CONFIG_HOME, without a terminal, against the real OpenID provider.
 * (`service install` itself is tested in service*.test.ts; here it is declined with --no-service, so the
 * test never touches the machine's service manager.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config.js';
import { runCli, tempDir } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';

function home(): { env: NodeJS.ProcessEnv; file: string } {
  const root = tempDir('tb-init-');
  const env = {
    HOME: path.join(root, 'home'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_DATA_HOME: path.join(root, 'data'),
    XDG_DATA_DIRS: path.join(root, 'system'),
    TOKENBROKER_CONFIG: '',
    TOKENBROKER_SOCKET: path.join(root, 'run', 'broker.sock'), // no daemon listens there
  };
  fs.mkdirSync(env.HOME, { recursive: true });
  return { env, file: path.join(env.XDG_CONFIG_HOME, 'tokenbroker', 'config.json') };
}

describe('tokenbroker init, scripted', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await startTestIdp();
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('init --yes writes one checked profile as the default, and says what comes next', async () => {
    const { env, file } = home();
    const result = await runCli(['init', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId, '--yes', '--no-service', '--no-login'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`config file ${file}`);
    expect(result.stdout).toMatch(/ok\s+pkce/);
    expect(result.stdout).toContain('tokenbroker service install');
    expect(result.stdout).toContain('tokenbroker login');
    const config = loadConfig(file);
    expect(config.defaultProfile).toBe('work');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      profiles: { work: { issuer: idp.issuer, clientId: idp.clientId } },
      defaultProfile: 'work',
    });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('init next to existing profiles adds one and makes it the default, keeping the others', async () => {
    const { env, file } = home();
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const old = { issuer: 'https://login.example.com', clientId: 'old' };
    fs.writeFileSync(file, JSON.stringify({ defaultProfile: 'old', profiles: { old } }, null, 2), { mode: 0o600 });
    const result = await runCli(['init', '--issuer', idp.issuer, '--client-id', idp.clientId, '--yes', '--no-service', '--no-login', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { profile: { profile: string; defaultProfile: string }; service: { ran: boolean }; login: { ran: boolean } };
    expect(report.profile).toMatchObject({ profile: 'main', defaultProfile: 'main' });
    expect(report.service.ran).toBe(false);
    expect(report.login.ran).toBe(false);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      defaultProfile: 'main',
      profiles: { old, main: { issuer: idp.issuer, clientId: idp.clientId } },
    });
  });

  it('without a terminal it never asks: a missing flag is an error naming it, and nothing is written', async () => {
    const { env, file } = home();
    const result = await runCli(['init'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('missing --issuer URL (or --wristband-domain HOST --tenant NAME) and --client-id ID');
    expect(result.stderr).toContain('no terminal to ask on');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('--yes offers the sign-in too: with no daemon running it ends with exit 3 and the profile kept', async () => {
    const { env, file } = home();
    const result = await runCli(['init', 'work', '--issuer', idp.issuer, '--client-id', idp.clientId, '--yes', '--no-service'], { env });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('DAEMON_NOT_RUNNING');
    expect(loadConfig(file).profiles.has('work')).toBe(true);
  });

  it.skipIf(requireOrSkip(onPath('xdg-mime'), 'needs xdg-mime (apt-get install xdg-utils)'))(
    'a custom-scheme redirect: init --yes registers the scheme handler',
    async () => {
      const { env } = home();
      const result = await runCli(
        [
          'init',
          'work',
          '--issuer',
          idp.issuer,
          '--client-id',
          idp.clientId,
          '--redirect',
          'com.example.broker:/callback',
          '--yes',
          '--no-service',
          '--no-login',
        ],
        { env },
      );
      expect(result.code, result.stderr).toBe(0);
      const status = await runCli(['scheme', 'status', '--profile', 'work', '--json'], { env });
      expect(status.code, status.stderr).toBe(0);
      expect((JSON.parse(status.stdout) as { registered: boolean }).registered).toBe(true);
    },
  );
});
