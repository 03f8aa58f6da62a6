import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { installService, renderLaunchdPlist, renderSystemdUnit, uninstallService } from '../../daemon/service/index.js';
import { CLI, runCli, tempDir } from '../support/daemon.js';

const NODE = process.execPath;

/** A temp HOME with XDG dirs, a config with one custom-scheme profile, and fake service managers on PATH. */
function sandbox() {
  const home = tempDir('tb-home-');
  const bin = path.join(home, 'bin');
  const calls = path.join(home, 'calls.log');
  fs.mkdirSync(bin);
  for (const tool of ['systemctl', 'launchctl']) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\n`, { mode: 0o755 });
  }
  const config = path.join(home, 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({ profiles: { main: { issuer: 'https://login.example.com', clientId: 'c', redirectUri: 'com.example.svc:/callback' } } }),
  );
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local/share'),
    PATH: `${bin}:${process.env['PATH']}`,
    TOKENBROKER_CONFIG: config,
  };
  const recorded = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : []);
  return { home, env, config, recorded, unit: path.join(home, '.config/systemd/user/tokenbroker.service') };
}

describe('systemd user unit', () => {
  it('renders with absolute paths and passes systemd-analyze verify', () => {
    const unit = renderSystemdUnit(NODE, CLI);
    expect(unit).toContain(`ExecStart=${NODE} --max-old-space-size=128 ${CLI} daemon`);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
    expect(unit).not.toMatch(/@(NODE|CLI)@/);
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'tokenbroker.service'), unit);
    const runtime = tempDir();
    const verify = spawnSync('systemd-analyze', ['verify', '--user', path.join(dir, 'tokenbroker.service')], {
      env: { ...process.env, XDG_RUNTIME_DIR: runtime },
      encoding: 'utf8',
    });
    expect(verify.error, 'systemd-analyze is needed (Debian package systemd)').toBeUndefined();
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });

  it('quotes paths with spaces and escapes % for systemd', () => {
    const unit = renderSystemdUnit('/opt/my node/bin/node', '/home/a%b/cli.js');
    expect(unit).toContain('ExecStart="/opt/my node/bin/node" --max-old-space-size=128 /home/a%%b/cli.js daemon');
  });
});

describe('launchd agent', () => {
  it('renders a plist with the required keys', () => {
    const plist = renderLaunchdPlist(NODE, CLI, '/Users/ada');
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'agent.plist'), plist);
    const parsed = JSON.parse(
      execFileSync('python3', ['-c', 'import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],"rb"))))', path.join(dir, 'agent.plist')], {
        encoding: 'utf8',
      }),
    ) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      Label: 'dev.tokenbroker.daemon',
      ProgramArguments: [NODE, '--max-old-space-size=128', CLI, 'daemon'],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      StandardOutPath: '/Users/ada/Library/Logs/tokenbroker/tokenbroker.log',
      StandardErrorPath: '/Users/ada/Library/Logs/tokenbroker/tokenbroker.log',
    });
  });

  it('install and uninstall issue launchctl bootstrap/bootout (dry run on other platforms)', async () => {
    const box = sandbox();
    const install = await installService({ platform: 'darwin', env: box.env, configPath: box.config, cliPath: CLI, nodePath: NODE });
    expect(install.dryRun).toBe(true);
    expect(install.unitPath).toBe(path.join(box.home, 'Library/LaunchAgents/dev.tokenbroker.daemon.plist'));
    const uid = process.getuid!();
    expect(install.commands.map((c) => c.argv.join(' '))).toEqual(
      expect.arrayContaining([`launchctl bootout gui/${uid}/dev.tokenbroker.daemon`, `launchctl bootstrap gui/${uid} ${install.unitPath}`]),
    );
    expect(install.schemes).toEqual(['com.example.svc']);
    expect(fs.existsSync(install.unitPath)).toBe(false);
    const uninstall = await uninstallService({ platform: 'darwin', env: box.env, configPath: box.config });
    expect(uninstall.commands.map((c) => c.argv.join(' '))).toContain(`launchctl bootout gui/${uid}/dev.tokenbroker.daemon`);
  });
});

describe('tokenbroker service', () => {
  it('--dry-run prints the unit and the commands and changes nothing', async () => {
    const box = sandbox();
    const result = await runCli(['service', 'install', '--dry-run'], { env: box.env });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Dry run: install the systemd service/);
    expect(result.stdout).toContain(`would write ${box.unit}`);
    expect(result.stdout).toContain('ExecStart=');
    expect(result.stdout).toMatch(/would run systemctl --user enable tokenbroker.service/);
    expect(result.stdout).toMatch(/URL schemes: com.example.svc/);
    expect(fs.existsSync(box.unit)).toBe(false);
    expect(box.recorded()).toEqual([]);
  });

  it('install writes the unit, enables and starts it, registers the scheme; again is the same; uninstall removes everything', async () => {
    const box = sandbox();
    const desktop = path.join(box.home, '.local/share/applications/tokenbroker-com.example.svc.desktop');
    const first = await runCli(['service', 'install', '--json'], { env: box.env });
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout) as { filesWritten: Array<{ path: string }>; schemes: string[] };
    expect(report.filesWritten.map((f) => f.path)).toEqual([box.unit, desktop]);
    expect(fs.readFileSync(box.unit, 'utf8')).toContain(`ExecStart=${NODE} --max-old-space-size=128 ${CLI} daemon`);
    expect(fs.existsSync(desktop)).toBe(true);
    expect(box.recorded()).toEqual([
      'systemctl --user show --property=Version',
      'systemctl --user daemon-reload',
      'systemctl --user enable tokenbroker.service',
      'systemctl --user restart tokenbroker.service',
    ]);

    const again = await runCli(['service', 'install'], { env: box.env });
    expect(again.code).toBe(0);
    expect(box.recorded()).toHaveLength(8);
    expect(fs.readdirSync(path.dirname(box.unit))).toEqual(['tokenbroker.service']);

    const status = await runCli(['service', 'status', '--json'], { env: box.env });
    expect(JSON.parse(status.stdout)).toMatchObject({ installed: true, manager: 'systemd', unitPath: box.unit });
    expect(box.recorded()[8]).toBe('systemctl --user is-active tokenbroker.service');

    const uninstall = await runCli(['service', 'uninstall'], { env: box.env });
    expect(uninstall.code).toBe(0);
    expect(box.recorded().slice(9)).toEqual(['systemctl --user disable --now tokenbroker.service', 'systemctl --user daemon-reload']);
    expect(fs.existsSync(box.unit)).toBe(false);
    expect(fs.existsSync(desktop)).toBe(false);
    const mimeapps = path.join(box.home, '.config/mimeapps.list');
    if (fs.existsSync(mimeapps)) expect(fs.readFileSync(mimeapps, 'utf8')).not.toContain('com.example.svc');
  });

  it('usage errors name what was expected', async () => {
    const result = await runCli(['service', 'start']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/expected one of install, uninstall, status, logs/);
  });
});
