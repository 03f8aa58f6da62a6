import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../client/index.js';
import { CLI, runCli, startDaemon, tempDir, type DaemonProcess } from '../support/daemon.js';
import { requireOrSkip } from '../support/prerequisites.js';

let daemons: DaemonProcess[] = [];
afterEach(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
  daemons = [];
});

async function start(options: Parameters<typeof startDaemon>[0] = {}): Promise<DaemonProcess> {
  const daemon = await startDaemon(options);
  daemons.push(daemon);
  return daemon;
}

describe('socket permissions', () => {
  it('creates the socket directory 0700 and the socket 0600', async () => {
    const daemon = await start();
    expect(fs.statSync(path.dirname(daemon.socketPath)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(daemon.socketPath).mode & 0o777).toBe(0o600);
  });

  it('refuses a socket directory that others can read, naming the fix', async () => {
    const dir = tempDir();
    const runDir = path.join(dir, 'run');
    fs.mkdirSync(runDir, { mode: 0o755 });
    fs.chmodSync(runDir, 0o755);
    const result = await runCli(['daemon', '--socket', path.join(runDir, 'broker.sock')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/has mode 755/);
    expect(result.stderr).toMatch(/chmod 700/);
    expect(fs.existsSync(path.join(runDir, 'broker.sock'))).toBe(false);
  });

  it.skipIf(requireOrSkip(process.getuid?.() === 0, 'daemon-lifecycle: a directory owned by another user needs root to chown'))(
    'refuses a socket directory owned by another user',
    async () => {
      const dir = tempDir();
      const runDir = path.join(dir, 'run');
      fs.mkdirSync(runDir, { mode: 0o700 });
      fs.chownSync(runDir, 65534, 65534);
      const result = await runCli(['daemon', '--socket', path.join(runDir, 'broker.sock')]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/owned by uid 65534, not by you/);
    },
  );

  it('refuses a symlinked socket directory', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'real'), { mode: 0o700 });
    fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    const result = await runCli(['daemon', '--socket', path.join(dir, 'link', 'broker.sock')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a real directory/);
  });
});

describe('single instance', () => {
  it('a second daemon on the same socket exits 4 naming the running one', async () => {
    const daemon = await start();
    const second = await runCli(['daemon', '--socket', daemon.socketPath]);
    expect(second.code).toBe(4);
    expect(second.stderr).toContain(`another daemon (pid ${daemon.child.pid}) is already listening on ${daemon.socketPath}`);
    // The first one is untouched.
    const client = await connect({ socketPath: daemon.socketPath });
    expect((await client.status()).pid).toBe(daemon.child.pid);
    await client.close();
  });

  it('replaces a stale socket left by a crashed daemon', async () => {
    const crashed = await start();
    await crashed.stop('SIGKILL');
    expect(fs.existsSync(crashed.socketPath)).toBe(true); // left behind
    const next = await start({ dir: crashed.dir, socketPath: crashed.socketPath });
    expect(next.output()).toMatch(/replaced a stale socket/);
    const client = await connect({ socketPath: next.socketPath });
    expect((await client.status()).pid).toBe(next.child.pid);
    await client.close();
  });

  it('refuses to replace a path that is not a socket', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'broker.sock');
    fs.writeFileSync(socketPath, 'precious');
    const result = await runCli(['daemon', '--socket', socketPath]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/exists and is not a socket/);
    expect(fs.readFileSync(socketPath, 'utf8')).toBe('precious');
  });
});

describe('shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: closes connections, removes the socket, exits 0`, async () => {
      const daemon = await start();
      const client = await connect({ socketPath: daemon.socketPath, reconnect: false });
      await client.status();
      expect(await daemon.stop(signal)).toBe(0);
      expect(fs.existsSync(daemon.socketPath)).toBe(false);
      expect(daemon.output()).toMatch(/"msg":"stopped"/);
      // DAEMON_NOT_RUNNING once the client has seen its connection close; CONNECTION_LOST if it sends first.
      await expect(client.status()).rejects.toMatchObject({ code: expect.stringMatching(/^(DAEMON_NOT_RUNNING|CONNECTION_LOST)$/) as unknown });
      await client.close();
    });
  }
});

describe('config file', () => {
  it('a missing default config is no error: the daemon starts with no profiles', async () => {
    const daemon = await start();
    const client = await connect({ socketPath: daemon.socketPath });
    const status = await client.status();
    expect(status.profiles).toEqual([]);
    expect(status.configPath).toBeNull();
    await client.close();
  });

  it('lists configured profiles with their state', async () => {
    const daemon = await start({
      config: {
        defaultProfile: 'work',
        profiles: {
          work: { issuer: 'https://login.example.com', clientId: 'abc', redirectUri: 'com.example.broker:/callback' },
          home: { wristband: { applicationVanityDomain: 'app-co.us.wristband.dev', tenantName: 'home' }, clientId: 'def' },
        },
      },
    });
    const client = await connect({ socketPath: daemon.socketPath });
    const status = await client.status();
    expect(status.configPath).toBe(daemon.configPath);
    expect(status.profiles).toEqual([
      expect.objectContaining({ name: 'work', isDefault: true, state: 'logged-out', provider: 'oidc', issuer: 'https://login.example.com' }),
      expect.objectContaining({ name: 'home', isDefault: false, state: 'logged-out', provider: 'wristband', issuer: 'https://app-co.us.wristband.dev' }),
    ]);
    await client.close();
  });

  it('a broken config stops the daemon with exit 6 and names the field', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ profiles: { main: { issuer: 'ftp://x', clientId: 'a' } } }));
    const result = await runCli(['daemon', '--config', config, '--socket', path.join(dir, 'run', 's.sock')]);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('profiles.main.issuer');
  });

  it('an explicit --config that does not exist is an error', async () => {
    const dir = tempDir();
    const result = await runCli(['daemon', '--config', path.join(dir, 'nope.json'), '--socket', path.join(dir, 'run', 's.sock')]);
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/cannot read the config file/);
  });
});

describe('the CLI', () => {
  it('status --json prints the protocol status result', async () => {
    const daemon = await start();
    const result = await runCli(['status', '--json', '--socket', daemon.socketPath]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pid: daemon.child.pid, socketPath: daemon.socketPath, profiles: [] });
  });

  it('status prints a human summary', async () => {
    const daemon = await start({ config: { profiles: { main: { issuer: 'https://login.example.com', clientId: 'abc' } } } });
    const result = await runCli(['status'], { env: { TOKENBROKER_SOCKET: daemon.socketPath } });
    expect(result.code).toBe(5); // the profile needs sign-in
    expect(result.stdout).toMatch(/tokenbroker \d+\.\d+\.\d+ \(protocol 1\), pid \d+/);
    expect(result.stdout).toMatch(/PROFILE\s+STATE/);
    expect(result.stdout).toMatch(/main \*\s+logged-out/);
  });

  it('status without a daemon exits 3 and says how to start one; --json gives the error as JSON', async () => {
    const dir = tempDir();
    const human = await runCli(['status', '--socket', path.join(dir, 'none.sock')]);
    expect(human.code).toBe(3);
    expect(human.stderr).toMatch(/tokenbroker daemon/);
    const json = await runCli(['status', '--json', '--socket', path.join(dir, 'none.sock')]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'DAEMON_NOT_RUNNING' } });
  });

  it('--help, --version, usage errors', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: tokenbroker <command>/);
    expect(help.stdout).toMatch(/Exit codes/);
    const statusHelp = await runCli(['status', '--help']);
    expect(statusHelp.stdout).toMatch(/--json/);
    const version = await runCli(['--version']);
    const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(CLI), '../../../package.json'), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(pkg.version);
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const badFlag = await runCli(['status', '--nope']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/status: Unknown option '--nope'/);
    const badLevel = await runCli(['daemon', '--log-level', 'loud']);
    expect(badLevel.code).toBe(2);
    expect(badLevel.stderr).toMatch(/--log-level must be one of/);
  });
});
