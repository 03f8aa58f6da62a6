/**
 * What the service definitions set, checked against what applies to a *user* service: the systemd unit
 * only uses settings that take effect in a user unit (systemd.exec(5) marks the others "only available
 * for system services"), forbids core dumps and caps memory and tasks; the launchd agent forbids core
 * dumps. docs/security.md, "The service unit", explains each choice.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import keytar from 'keytar';
import { describe, expect, it } from 'vitest';
import { renderLaunchdPlist, renderSystemdUnit } from '../../daemon/service/index.js';
import { CLI, runCli, tempDir, waitFor } from '../support/daemon.js';

const NODE = process.execPath;

/**
 * Settings that need a mount (or other) namespace, which a user manager cannot create: systemd.exec(5)
 * (systemd 252) says of each "only available for system services, or for services running in per-user
 * instances of the service manager when PrivateUsers= is enabled" (or only for system services), and
 * of ProtectSystem= and the path settings that they "are not available" in user services. Older systemd
 * ignores them silently in a user unit; newer systemd turns on PrivateUsers= for them (systemd#25233).
 */
const NOT_FOR_USER_UNITS = [
  'ProtectSystem',
  'ProtectHome',
  'PrivateTmp',
  'PrivateDevices',
  'PrivateNetwork',
  'PrivateIPC',
  'PrivateMounts',
  'PrivateUsers',
  'ReadWritePaths',
  'ReadOnlyPaths',
  'InaccessiblePaths',
  'ExecPaths',
  'NoExecPaths',
  'BindPaths',
  'BindReadOnlyPaths',
  'TemporaryFileSystem',
  'ProtectKernelTunables',
  'ProtectKernelModules',
  'ProtectKernelLogs',
  'ProtectControlGroups',
  'ProtectClock',
  'ProtectHostname',
  'ProtectProc',
  'RootDirectory',
  'RootImage',
  'MountFlags',
  'RemoveIPC',
  'PAMName',
  'SecureBits',
  'User',
  'Group',
  'DynamicUser',
];

function directives(unit: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) found.set(match[1]!, match[2]!);
  }
  return found;
}

describe('systemd user unit: what applies to a user service', () => {
  const unit = renderSystemdUnit(NODE, CLI);
  const set = directives(unit);

  it('uses no setting that needs a namespace a user manager cannot create', () => {
    expect(NOT_FOR_USER_UNITS.filter((name) => set.has(name))).toEqual([]);
  });

  it('forbids core dumps and caps memory and tasks, and systemd-analyze verify accepts it', () => {
    expect(set.get('LimitCORE')).toBe('0');
    expect(set.get('MemoryMax')).toBe('512M');
    expect(set.get('TasksMax')).toBe('64');
    expect(set.get('NoNewPrivileges')).toBe('yes');
    expect(set.get('ExecReload')).toBe('/bin/kill -HUP $MAINPID'); // systemctl --user reload = SIGHUP = reload the config
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'tokenbroker.service'), unit);
    const verify = spawnSync('systemd-analyze', ['verify', '--user', path.join(dir, 'tokenbroker.service')], {
      env: { ...process.env, XDG_RUNTIME_DIR: tempDir() },
      encoding: 'utf8',
    });
    expect(verify.error, 'systemd-analyze is needed (Debian package systemd)').toBeUndefined();
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });

  it('systemd-analyze verify parses each of these settings (a broken value is reported), so the check above is not vacuous', () => {
    const dir = tempDir();
    const broken = { LimitCORE: 'zero', MemoryMax: 'lots', TasksMax: 'many', NoNewPrivileges: 'perhaps' };
    for (const [name, value] of Object.entries(broken)) {
      const file = path.join(dir, `broken-${name}.service`);
      fs.writeFileSync(file, unit.replace(new RegExp(`^${name}=.*$`, 'm'), `${name}=${value}`));
      const verify = spawnSync('systemd-analyze', ['verify', '--user', file], { env: { ...process.env, XDG_RUNTIME_DIR: tempDir() }, encoding: 'utf8' });
      expect(verify.stderr, name).toContain(value);
    }
  });
});

describe('launchd agent: no core dumps', () => {
  it('sets Core = 0 in SoftResourceLimits and HardResourceLimits', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'agent.plist'), renderLaunchdPlist(NODE, CLI, '/Users/ada'));
    const parsed = JSON.parse(
      execFileSync('python3', ['-c', 'import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],"rb"))))', path.join(dir, 'agent.plist')], {
        encoding: 'utf8',
      }),
    ) as Record<string, unknown>;
    expect(parsed['SoftResourceLimits']).toEqual({ Core: 0 });
    expect(parsed['HardResourceLimits']).toEqual({ Core: 0 });
  });
});

/**
 * Why LimitCORE=0: the daemon holds tokens in memory, so its core file does too. The daemon restores a
 * session from the keychain, hands its token out once, and is crashed (SIGSEGV) under RLIMIT_CORE
 * unlimited and under the unit's LimitCORE value (applied with prlimit, as systemd would). Needs a
 * core_pattern that writes a file in the working directory (Debian's default "core"; a pipe such as
 * systemd-coredump stores cores elsewhere).
 */
const corePattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
describe.skipIf(corePattern.startsWith('|') || corePattern.includes('/'))('a crashed daemon and its core file', () => {
  it("holds the refresh token without the limit, and leaves no core file with the unit's LimitCORE", { timeout: 90_000 }, async () => {
    const limit = directives(renderSystemdUnit(NODE, CLI)).get('LimitCORE');
    expect(limit).toBe('0');
    const keychainService = `tokenbroker-core-${randomBytes(4).toString('hex')}`;
    const refreshToken = `rt-${randomBytes(24).toString('base64url')}`;
    const accessToken = `at-${randomBytes(24).toString('base64url')}`;
    const now = Date.now();
    await keytar.setPassword(
      keychainService,
      'main',
      JSON.stringify({
        v: 1,
        accessToken,
        refreshToken,
        expiresAt: now + 3_600_000,
        scopes: ['openid'],
        tokenType: 'Bearer',
        savedAt: now,
        issuer: 'https://login.example.com',
        clientId: 'c',
      }),
    );
    try {
      const crash = async (coreLimit: string) => {
        const dir = tempDir('tb-core-');
        const config = path.join(dir, 'config.json');
        fs.writeFileSync(
          config,
          JSON.stringify({ profiles: { main: { issuer: 'https://login.example.com', clientId: 'c', redirectUri: 'com.example.core:/callback' } } }),
        );
        const socket = path.join(dir, 'run', 'broker.sock');
        const env = { ...process.env, TOKENBROKER_KEYCHAIN_SERVICE: keychainService, TOKENBROKER_CONFIG: '', XDG_CONFIG_HOME: path.join(dir, 'xdg') };
        const child = spawn('prlimit', [`--core=${coreLimit}`, process.execPath, CLI, 'daemon', '--socket', socket, '--config', config], {
          cwd: dir,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
        await waitFor(
          () => output.includes('session restored'),
          30_000,
          () => `the session restored; daemon said: ${output}`,
        );
        const token = await runCli(['token', '--profile', 'main'], { env: { ...env, TOKENBROKER_SOCKET: socket } });
        expect(token.stdout.trim()).toBe(accessToken);
        child.kill('SIGSEGV');
        expect(await exited).toBe('SIGSEGV');
        const coreFile = path.join(dir, corePattern);
        const core = fs.existsSync(coreFile) ? fs.readFileSync(coreFile) : undefined;
        fs.rmSync(dir, { recursive: true, force: true });
        return core;
      };
      const unlimited = await crash('unlimited');
      expect(unlimited, 'a core file without the limit').toBeDefined();
      expect(unlimited!.indexOf(refreshToken)).toBeGreaterThanOrEqual(0);
      expect(await crash(limit!)).toBeUndefined();
    } finally {
      await keytar.deletePassword(keychainService, 'main');
    }
  });
});
