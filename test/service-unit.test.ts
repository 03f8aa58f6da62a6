/**
 * What the service definitions set, checked against what applies to a *user* service: the systemd unit
 * only uses settings that take effect in a user unit (systemd.exec(5) marks the others "only available
 * for system services"), forbids core dumps and caps memory and tasks; the launchd agent forbids core
 * dumps. docs/security.md, "The service unit", explains each choice.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderLaunchdPlist, renderSystemdUnit } from '../daemon/service/index.js';
import { CLI, tempDir } from './support/daemon.js';

const NODE = process.execPath;

/**
 * Settings that need a mount (or other) namespace, which a user manager cannot create: systemd.exec(5)
 * (systemd 252) says of each "only available for system services, or for services running in per-user
 * instances of the service manager when PrivateUsers= is enabled" (or only for system services), and
 * of ProtectSystem= and the path settings that they "are not available" in user services. Older systemd
 * ignores them silently in a user unit; newer systemd turns on PrivateUsers= for them (systemd#25233).
 */
const NOT_FOR_USER_UNITS = [
  'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'PrivateNetwork', 'PrivateIPC', 'PrivateMounts', 'PrivateUsers',
  'ReadWritePaths', 'ReadOnlyPaths', 'InaccessiblePaths', 'ExecPaths', 'NoExecPaths', 'BindPaths', 'BindReadOnlyPaths', 'TemporaryFileSystem',
  'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'ProtectClock', 'ProtectHostname', 'ProtectProc',
  'RootDirectory', 'RootImage', 'MountFlags', 'RemoveIPC', 'PAMName', 'SecureBits', 'User', 'Group', 'DynamicUser',
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
      execFileSync('python3', ['-c', 'import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],"rb"))))', path.join(dir, 'agent.plist')], { encoding: 'utf8' }),
    ) as Record<string, unknown>;
    expect(parsed['SoftResourceLimits']).toEqual({ Core: 0 });
    expect(parsed['HardResourceLimits']).toEqual({ Core: 0 });
  });
});
