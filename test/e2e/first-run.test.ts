/**
 * First run (issue 16): a daemon without profiles. `status`, `login` and `token` say where the config
 * file is (or will be) and which command adds a profile, rather than only "no profiles are configured".
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type DaemonProcess } from '../support/daemon.js';

describe('first run: no profiles yet', () => {
  let daemon: DaemonProcess;
  let env: NodeJS.ProcessEnv;
  let file: string;
  beforeAll(async () => {
    daemon = await startDaemon(); // no --config: the default path under its own XDG_CONFIG_HOME, no file there
    file = path.join(daemon.dir, 'xdg-config', 'tokenbroker', 'config.json');
    env = { TOKENBROKER_SOCKET: daemon.socketPath, TOKENBROKER_CONFIG: '', XDG_CONFIG_HOME: path.join(daemon.dir, 'xdg-config') };
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('status names the config path and the command that adds a profile', async () => {
    expect(fs.existsSync(file)).toBe(false);
    const result = await runCli(['status'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`No profiles (config file: ${file})`);
    expect(result.stdout).toContain('tokenbroker profile add NAME --issuer URL --client-id ID');
    expect(result.stdout).toContain('tokenbroker init');
  });

  it.each([[['login', '--no-browser']], [['token']]])('%j names the config path and the command, with PROFILE_NOT_FOUND', async (args) => {
    const result = await runCli(args, { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`config file: ${file}`);
    expect(result.stderr).toContain('tokenbroker profile add NAME --issuer URL --client-id ID');
    expect(result.stderr).toContain('[PROFILE_NOT_FOUND]');
  });
});
