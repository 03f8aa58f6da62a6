/**
 * `tokenbroker exec -- cmd …` against the real daemon: the token in the environment, the exit code
 * passed through, signals forwarded, nothing of its own on stdout.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, waitFor } from '../support/daemon.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

let s: SignedIn;
beforeAll(async () => {
  s = await startSignedIn();
}, 90_000);
afterAll(async () => {
  await s?.close();
});

const exec = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(['exec', ...args], { env: { ...s.env, ...env } });

describe('tokenbroker exec', () => {
  it('runs the command with the token in TOKENBROKER_ACCESS_TOKEN; stdout is the command’s alone', async () => {
    const current = await s.app.getToken();
    const r = await exec(['--', 'sh', '-c', 'printf "%s" "$TOKENBROKER_ACCESS_TOKEN"']);
    expect(r).toMatchObject({ code: 0, stdout: current.accessToken, stderr: '' });
  });

  it('--env names the variable; the command’s own options (even -h) are left alone', async () => {
    const current = await s.app.getToken();
    const r = await exec(['--env', 'API_TOKEN', '--', 'sh', '-c', 'printf "%s|%s|%s" "$API_TOKEN" "${TOKENBROKER_ACCESS_TOKEN-unset}" "$1"', 'sh', '-h']);
    expect(r).toMatchObject({ code: 0, stdout: `${current.accessToken}|unset|-h` });
  });

  it('passes the exit code through', async () => {
    expect((await exec(['--', 'sh', '-c', 'exit 42'])).code).toBe(42);
    expect((await exec(['--', 'true'])).code).toBe(0);
  });

  it('a command killed by a signal → 128+n', async () => {
    expect((await exec(['--', 'sh', '-c', 'kill -KILL $$'])).code).toBe(137);
  });

  it('forwards SIGTERM, SIGINT and SIGHUP to the command', async () => {
    for (const [signal, n] of [
      ['SIGTERM', 15],
      ['SIGINT', 2],
      ['SIGHUP', 1],
    ] as const) {
      // The command traps the signal and exits with its number, so the exit code proves it arrived.
      const child = spawn(process.execPath, [CLI, 'exec', '--', 'sh', '-c', `trap 'exit ${n}' ${signal.slice(3)}; echo ready; while :; do sleep 0.1; done`], {
        env: { ...process.env, ...s.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // a process group of its own, so a failed case leaves no stray shell behind
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        await waitFor(
          () => out.includes('ready'),
          15_000,
          () => `the command to start (${signal})`,
        );
        child.kill(signal);
        expect(await exited, signal).toBe(n);
      } finally {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });

  it('command not found → 127 with a message; no "--" → usage error', async () => {
    const r = await exec(['--', 'no-such-command-tb']);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('command not found: no-such-command-tb');
    const u = await exec(['sh', '-c', 'true']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('put the command after "--"');
  });

  it('no daemon → exit 3, the command does not run', async () => {
    const r = await runCli(['exec', '--', 'sh', '-c', 'echo ran'], { env: { TOKENBROKER_SOCKET: `${s.harness.dir}/none.sock` } });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('DAEMON_NOT_RUNNING');
  });
});
