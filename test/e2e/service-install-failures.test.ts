/**
 * `service install` and `scheme register` where the environment is missing a piece: no user bus, a
 * service manager that refuses a step, no config file. Each gets a stable code and a message that says
 * what to do, and a failed install leaves nothing half-installed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli, runCommand, tempDir } from '../support/daemon.js';

/** A temp HOME with XDG dirs and no config file. `bin` is put first on PATH. */
function home(bin?: string) {
  const dir = tempDir('tb-home-');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, '.config'),
    XDG_DATA_HOME: path.join(dir, '.local/share'),
    // no session bus, no user manager: an empty runtime dir
    XDG_RUNTIME_DIR: tempDir('tb-run-'),
    TOKENBROKER_CONFIG: '',
    PATH: bin === undefined ? process.env['PATH'] : `${bin}:${process.env['PATH']}`,
  };
  delete env['DBUS_SESSION_BUS_ADDRESS'];
  return { dir, env, unit: path.join(dir, '.config/systemd/user/tokenbroker.service') };
}

/** A fake systemctl that records its calls, answers the probe and fails `failing` (e.g. "restart"). */
function refusingSystemctl(failing: string): { bin: string; calls: () => string[] } {
  const bin = tempDir('tb-bin-');
  const log = path.join(bin, 'calls.log');
  fs.writeFileSync(
    path.join(bin, 'systemctl'),
    `#!/bin/sh\necho "systemctl $*" >> '${log}'\ncase "$2" in ${failing}) echo "Job for tokenbroker.service failed because the control process exited with error code." >&2; exit 1;; esac\nexit 0\n`,
    { mode: 0o755 },
  );
  return { bin, calls: () => fs.readFileSync(log, 'utf8').trim().split('\n') };
}

describe('service install without a user service manager', () => {
  it('the real systemctl with no user bus: SERVICE_MANAGER_ERROR, exit 7, what to do, and no unit file left', async () => {
    const box = home();
    // exactly this environment: no DBUS_SESSION_BUS_ADDRESS, an empty XDG_RUNTIME_DIR
    const result = await runCommand([process.execPath, CLI, 'service', 'install'], { env: box.env });
    expect(result.stderr).toMatch(/\[SERVICE_MANAGER_ERROR\]/);
    expect(result.stderr).toMatch(/Failed to connect to bus/);
    expect(result.stderr).toMatch(/loginctl enable-linger|tokenbroker daemon/);
    expect(result.stderr).toMatch(/Nothing was installed/);
    expect(result.stderr).not.toMatch(/INTERNAL/);
    expect(result.code).toBe(7);
    expect(fs.existsSync(box.unit)).toBe(false);
  });

  it("a session bus without a systemd user manager (the test keyring's bus): the same code, nothing left", async () => {
    expect(process.env['DBUS_SESSION_BUS_ADDRESS'], 'run through scripts/with-keyring.mjs').toBeTruthy();
    const box = home();
    const result = await runCli(['service', 'install'], { env: { ...box.env, DBUS_SESSION_BUS_ADDRESS: process.env['DBUS_SESSION_BUS_ADDRESS'] } });
    expect(result.stderr).toMatch(/org\.freedesktop\.systemd1/);
    expect(result.stderr).toMatch(/\[SERVICE_MANAGER_ERROR\]/);
    expect(result.code).toBe(7);
    expect(fs.existsSync(box.unit)).toBe(false);
  });

  it('--json reports the same code', async () => {
    const box = home();
    const result = await runCli(['service', 'install', '--json'], { env: box.env });
    expect(result.code).toBe(7);
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'SERVICE_MANAGER_ERROR' } });
  });
});

describe('a service manager that refuses a step', () => {
  it('a first install is rolled back: the unit file is removed again', async () => {
    const systemctl = refusingSystemctl('restart');
    const box = home(systemctl.bin);
    const result = await runCli(['service', 'install'], { env: box.env });
    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(/systemctl --user restart tokenbroker.service" failed \(exit 1\)/);
    expect(result.stderr).toContain(`${box.unit} was removed again`);
    expect(fs.existsSync(box.unit)).toBe(false);
    // enabled before the failure: disabled again while the file still existed, then the manager reloaded
    expect(systemctl.calls()).toEqual([
      'systemctl --user show --property=Version',
      'systemctl --user daemon-reload',
      'systemctl --user enable tokenbroker.service',
      'systemctl --user restart tokenbroker.service',
      'systemctl --user disable tokenbroker.service',
      'systemctl --user daemon-reload',
    ]);
  });

  it('a failed reinstall puts the previous unit file back', async () => {
    const box = home(refusingSystemctl('enable').bin);
    fs.mkdirSync(path.dirname(box.unit), { recursive: true });
    const previous = '[Service]\nExecStart=/old/node /old/cli.js daemon\n';
    fs.writeFileSync(box.unit, previous);
    const result = await runCli(['service', 'install'], { env: box.env });
    expect(result.code).toBe(7);
    expect(result.stderr).toContain('was restored to the previous install');
    expect(fs.readFileSync(box.unit, 'utf8')).toBe(previous);
  });
});

describe('scheme register with no config file', () => {
  it('a missing default config is no error by itself: the message asks for --profile or --scheme (no raw ENOENT, not exit 6)', async () => {
    const box = home();
    const result = await runCli(['scheme', 'register', '--dry-run'], { env: box.env });
    expect(result.stderr).not.toMatch(/ENOENT|CONFIG_INVALID/);
    expect(result.stderr).toMatch(/--scheme/);
    expect(result.stderr).toContain(`no config file at ${path.join(box.dir, '.config/tokenbroker/config.json')}`);
    expect(result.code).toBe(1);
  });

  it('with --scheme it works without any config', async () => {
    const box = home();
    const result = await runCli(['scheme', 'register', '--dry-run', '--scheme', 'com.example.noconfig'], { env: box.env });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Dry run: register com.example.noconfig/);
  });

  it('a config file named explicitly must exist (as for the daemon)', async () => {
    const box = home();
    const result = await runCli(['scheme', 'register', '--dry-run', '--config', path.join(box.dir, 'missing.json')], { env: box.env });
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/cannot read the config file/);
  });
});
