/**
 * The `tokenbroker` bin as package.json names it: the bundled fast entry (dist/daemon/cli/tokenbroker.cjs,
 * made by scripts/build-cli.mjs). The commands kubectl and git run on every invocation answer from that
 * one file, without the daemon's dependencies; every other command goes on to the full CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCommand } from '../support/daemon.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; version: string };
const BIN = path.join(ROOT, pkg.bin['tokenbroker']!);
const TRACE = path.join(ROOT, 'scripts/bench/trace-imports.mjs');

let s: SignedIn;
beforeAll(async () => {
  s = await startSignedIn();
}, 90_000);
afterAll(async () => {
  await s?.close();
});

const bin = (args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; node?: string[] } = {}) =>
  runCommand([process.execPath, ...(options.node ?? []), BIN, ...args], {
    env: { ...process.env, ...s.env, ...options.env },
    ...(options.input === undefined ? {} : { input: options.input }),
  });

/** The modules a run loaded (file: URLs and builtins), from the load hook the benchmark uses. */
async function loadedBy(args: string[], input?: string): Promise<string[]> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tb-trace-')), 'modules.txt');
  const r = await bin(args, { node: ['--import', TRACE], env: { TRACE_IMPORTS_OUT: out }, ...(input === undefined ? {} : { input }) });
  expect(r.code, r.stderr).toBe(0);
  const modules = fs.readFileSync(out, 'utf8').trim().split('\n');
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return modules.filter((m) => m.startsWith('file:')).map((m) => path.relative(ROOT, new URL(m).pathname));
}

describe('the tokenbroker bin (bundled fast entry)', () => {
  it('package.json points the bin at the bundle, and the build made it', () => {
    expect(pkg.bin['tokenbroker']).toBe('dist/daemon/cli/tokenbroker.cjs');
    expect(fs.readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('token prints the daemon’s token, loading the bundle and nothing else of ours or of node_modules', async () => {
    const current = await s.app.getToken();
    const r = await bin(['token']);
    expect(r).toMatchObject({ code: 0, stdout: `${current.accessToken}\n`, stderr: '' });
    expect(await loadedBy(['token'])).toEqual([pkg.bin['tokenbroker']]);
  });

  it('token --format exec-credential answers kubectl from the bundle alone', async () => {
    const current = await s.app.getToken();
    const r = await bin(['token', '--format', 'exec-credential']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'ExecCredential', status: { token: current.accessToken } });
    expect(await loadedBy(['token', '--format', 'exec-credential'])).toEqual([pkg.bin['tokenbroker']]);
  });

  it('git-credential get answers git from the bundle alone', async () => {
    const current = await s.app.getToken();
    const input = 'protocol=https\nhost=git.example.com\n\n';
    const r = await bin(['git-credential', '--profile', 'main', 'get'], { input });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`password=${current.accessToken}\n`);
    expect(await loadedBy(['git-credential', '--profile', 'main', 'get'], input)).toEqual([pkg.bin['tokenbroker']]);
  });

  it('errors keep their messages and exit codes: usage 2, daemon not running 3', async () => {
    const usage = await bin(['token', '--format', 'nonsense']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--format must be one of');
    const gone = await bin(['token'], { env: { TOKENBROKER_SOCKET: path.join(os.tmpdir(), `tb-none-${process.pid}.sock`) } });
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/\[DAEMON_NOT_RUNNING\]/);
  });

  it('every other command, and --help, goes on to the full CLI', async () => {
    const version = await bin(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    const status = await bin(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(status.stdout))).toContain('"main"');
    const help = await bin(['token', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: tokenbroker token');
    const unknown = await bin(['no-such-command']);
    expect(unknown.code).toBe(2);
  });
});
