/**
 * `service install` and `scheme register` where the environment is missing a piece: no user bus, a
 * service manager that refuses a step, no config file. Each gets a stable code and a message that says
 * what to do, and a failed install leaves nothing half-installed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from './support/daemon.js';

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
