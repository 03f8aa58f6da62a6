/**
 * Living with the installed service: the node path it records survives an upgrade of node (the path the
 * user invoked, not its realpath), `doctor` names a recorded path that is gone, with the fix, and
 * `token`/`login`/`status` start the installed service when no daemon listens. The CLI and the daemon
 * are real; systemctl is a stand-in script on PATH (a container has no systemd user instance) whose
 * `start` really starts the daemon in the background, as systemd would.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, runCli, runCommand, tempDir, waitFor } from '../support/daemon.js';

interface Check {
  id: string;
  status: string;
  detail: string;
  fix?: string;
}

const started: string[] = [];
afterEach(() => {
  for (const pidFile of started.splice(0)) {
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
});

/**
 * A temp HOME, a fake `systemctl` on PATH that logs its calls and, on `start`, runs the real daemon in
 * the background (pid in daemon.pid); and, in `nodeBin`, a `node` that is a symlink to this node, as
 * /opt/homebrew/bin/node is to the Cellar's versioned binary.
 */
function sandbox(config: unknown = { profiles: {} }) {
  const home = tempDir('tb-live-');
  const bin = path.join(home, 'bin');
  const nodeBin = path.join(home, 'opt', 'bin');
  fs.mkdirSync(bin);
  fs.mkdirSync(nodeBin, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(nodeBin, 'node'));
  const calls = path.join(home, 'calls.log');
  const pidFile = path.join(home, 'daemon.pid');
  const socket = path.join(home, 'run', 'broker.sock');
  const configPath = path.join(home, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  fs.writeFileSync(
    path.join(bin, 'systemctl'),
    `#!/bin/sh
echo "systemctl $*" >> '${calls}'
case "$*" in
  *" start tokenbroker.service")
    '${process.execPath}' '${CLI}' daemon --socket '${socket}' --config '${configPath}' > '${home}/daemon.log' 2>&1 &
    echo $! > '${pidFile}' ;;
  *is-active*) echo inactive; exit 3 ;;
esac
exit 0
`,
    { mode: 0o755 },
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local/share'),
    PATH: `${nodeBin}:${bin}:${process.env['PATH']}`,
    TOKENBROKER_CONFIG: configPath,
    TOKENBROKER_SOCKET: socket,
    // generous under a loaded CI machine; the default is 2 s
    TOKENBROKER_START_WAIT_MS: '15000',
  };
  const recorded = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : []);
  return { home, env, nodeBin, socket, pidFile, recorded, unit: path.join(home, '.config/systemd/user/tokenbroker.service') };
}

/** `tokenbroker …` as the user's shell runs it: `node` looked up on PATH (as `#!/usr/bin/env node` does). */
function asUser(args: readonly string[], env: NodeJS.ProcessEnv) {
  return runCommand(['node', CLI, ...args], { env, timeoutMs: 30_000 });
}

async function doctor(env: NodeJS.ProcessEnv): Promise<Map<string, Check>> {
  const result = await runCli(['doctor', '--json'], { env, timeoutMs: 30_000 });
  const report = JSON.parse(result.stdout) as { checks: Check[] };
  return new Map(report.checks.map((c) => [c.id, c]));
}

describe('the node path the service records', () => {
  it('is the path node was invoked through, not its realpath; doctor names it once it is gone; install again fixes it', async () => {
    const box = sandbox({ profiles: { main: { issuer: 'https://login.example.com', clientId: 'c', redirectUri: 'com.example.live:/callback' } } });
    const invoked = path.join(box.nodeBin, 'node');
    expect(fs.realpathSync(invoked)).not.toBe(invoked);

    const install = await asUser(['service', 'install'], box.env);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect(fs.readFileSync(box.unit, 'utf8')).toContain(`ExecStart=${invoked} --max-old-space-size=128 ${CLI} daemon`);
    const desktop = path.join(box.home, '.local/share/applications/tokenbroker-com.example.live.desktop');
    expect(fs.readFileSync(desktop, 'utf8')).toContain(`Exec=${invoked} ${CLI} callback %u`);

    // Before the upgrade: no complaint about the recorded paths.
    const before = await doctor(box.env);
    expect(before.get('service')?.detail).not.toMatch(/no longer exist/);
    expect(before.get('scheme:main')).toMatchObject({ status: 'ok' });

    // node is upgraded: the path the unit and the handler record is gone.
    fs.rmSync(invoked);
    const after = await doctor(box.env);
    expect(after.get('service')).toMatchObject({ status: 'fail' });
    expect(after.get('service')?.detail).toContain(`runs ${invoked}, which no longer exists`);
    expect(after.get('service')?.fix).toMatch(/^tokenbroker service install/);
    expect(after.get('scheme:main')).toMatchObject({ status: 'fail' });
    expect(after.get('scheme:main')?.detail).toContain(invoked);
    expect(after.get('scheme:main')?.fix).toMatch(/^tokenbroker service install/);

    // The fix, run with the node now on PATH (this one): both records point at an existing node again.
    const again = await runCli(['service', 'install'], { env: box.env });
    expect(again.code).toBe(0);
    const fixed = await doctor(box.env);
    expect(fixed.get('service')?.detail).not.toMatch(/no longer exist/);
    expect(fixed.get('scheme:main')).toMatchObject({ status: 'ok' });
  });
});

describe('starting the installed service on demand', () => {
  it('status starts it when no daemon listens, says so on stderr, and answers', async () => {
    const box = sandbox();
    expect((await asUser(['service', 'install'], box.env)).code).toBe(0);
    started.push(box.pidFile);
    const result = await runCli(['status', '--json'], { env: box.env, timeoutMs: 30_000 });
    expect(result.stderr).toContain('no daemon is listening; starting the installed service (systemctl --user start tokenbroker.service)');
    expect(result.code).toBe(0);
    const status = JSON.parse(result.stdout) as { pid: number; socketPath: string };
    expect(status.pid).toBe(Number(fs.readFileSync(box.pidFile, 'utf8')));
    expect(status.socketPath).toBe(box.socket);
    expect(box.recorded()).toContain('systemctl --user start tokenbroker.service');

    // Now it listens: the next command does not start anything.
    const calls = box.recorded().length;
    const next = await runCli(['status'], { env: box.env });
    expect(next.code).toBe(0);
    expect(next.stderr).toBe('');
    expect(box.recorded()).toHaveLength(calls);
  });

  it('token starts it too, through the package bin (the bundled fast entry), then reports the missing profile, not a missing daemon', async () => {
    const box = sandbox();
    expect((await asUser(['service', 'install'], box.env)).code).toBe(0);
    started.push(box.pidFile);
    const bin = path.join(path.dirname(CLI), 'tokenbroker.cjs'); // package.json "bin"
    const result = await runCommand([process.execPath, bin, 'token', '--profile', 'nope'], { env: { ...process.env, ...box.env }, timeoutMs: 30_000 });
    expect(result.stderr).toContain('starting the installed service');
    expect(result.stderr).not.toContain('DAEMON_NOT_RUNNING');
    await waitFor(() => fs.existsSync(box.pidFile));
  });

  it('a service that does not come up: the original error, and where to look', async () => {
    const box = sandbox();
    expect((await asUser(['service', 'install'], box.env)).code).toBe(0);
    // a start that "succeeds" but runs nothing
    fs.writeFileSync(path.join(box.home, 'bin', 'systemctl'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const result = await runCli(['status'], { env: { ...box.env, TOKENBROKER_START_WAIT_MS: '300' } });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('does not listen on');
    expect(result.stderr).toContain('tokenbroker service logs');
    expect(result.stderr).toContain('[DAEMON_NOT_RUNNING]');
  });

  it('without an installed service nothing is started and the error names both ways to start one', async () => {
    const box = sandbox();
    const result = await runCli(['status'], { env: box.env });
    expect(result.code).toBe(3);
    expect(result.stderr).not.toContain('starting');
    expect(result.stderr).toContain('"tokenbroker daemon"');
    expect(result.stderr).toContain('"tokenbroker service install"');
    expect(box.recorded()).toEqual([]);
  });
});
