/**
 * The config file decides where refresh tokens are sent: a file (or directory) that another user can write, or
 * that another user owns, is refused — the daemon does not start (exit 6, CONFIG_INVALID, the fix named) and
 * `tokenbroker doctor` fails its config check with the same fix. The real daemon and CLI (dist/), real modes,
 * and `chown nobody` for a foreign owner (needs root; skipped otherwise).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../support/daemon.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const CONFIG = { profiles: { main: { issuer: 'https://login.example.com', clientId: 'c', redirectUri: 'loopback' } } };

interface Setup {
  readonly dir: string;
  readonly file: string;
}

/** A private directory (0700) with a config file (0644, as an editor writes it). */
function setup(): Setup {
  const dir = path.join(tempDir('tb-config-perm-'), 'conf');
  fs.mkdirSync(dir, { mode: 0o700 });
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(CONFIG), { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  return { dir, file };
}

/** Starts `tokenbroker daemon` with the config; returns its exit code and stderr (it exits at once when it refuses). */
async function daemon(s: Setup): Promise<{ code: number | null; stderr: string }> {
  const socket = path.join(path.dirname(s.dir), 'run', 'broker.sock');
  const run = await runCli(['daemon', '--config', s.file, '--socket', socket, '--log-level', 'silent'], { timeoutMs: 8_000 }).catch((error: Error) => ({
    code: null,
    stdout: '',
    stderr: `still running after 8 s: ${error.message.slice(0, 200)}`,
  }));
  return { code: run.code, stderr: run.stderr };
}

async function doctorConfig(s: Setup): Promise<{ status: string; detail: string; fix?: string }> {
  const run = await runCli(['doctor', '--json', '--config', s.file], { env: { TOKENBROKER_SOCKET: path.join(s.dir, 'none.sock') }, timeoutMs: 30_000 });
  const report = JSON.parse(run.stdout) as { checks: Array<{ id: string; status: string; detail: string; fix?: string }> };
  return report.checks.find((c) => c.id === 'config')!;
}

const cases: Array<{ name: string; prepare(s: Setup): void; fix: (s: Setup) => string; problem: RegExp; root?: boolean }> = [
  { name: 'a file writable by others (0666)', prepare: (s) => fs.chmodSync(s.file, 0o666), fix: (s) => `chmod 600 ${s.file}`, problem: /mode 666/ },
  { name: 'a file writable by the group (0664)', prepare: (s) => fs.chmodSync(s.file, 0o664), fix: (s) => `chmod 600 ${s.file}`, problem: /mode 664/ },
  {
    name: 'a directory writable by others (0777)',
    prepare: (s) => fs.chmodSync(s.dir, 0o777),
    fix: (s) => `chmod go-w ${s.dir}`,
    problem: /directory .* mode 777/,
  },
  {
    name: 'a directory writable by the group (0770)',
    prepare: (s) => fs.chmodSync(s.dir, 0o770),
    fix: (s) => `chmod go-w ${s.dir}`,
    problem: /directory .* mode 770/,
  },
  {
    name: 'a file owned by another user',
    prepare: (s) => fs.chownSync(s.file, NOBODY, NOBODY),
    fix: () => 'use a config file of your own',
    problem: /owned by uid 65534/,
    root: true,
  },
  {
    name: 'a directory owned by another user',
    prepare: (s) => fs.chownSync(s.dir, NOBODY, NOBODY),
    fix: () => 'move the config file to a directory of your own',
    problem: /directory .* owned by uid 65534/,
    root: true,
  },
  {
    name: 'a symlink to a file writable by others',
    prepare: (s) => {
      const target = path.join(s.dir, 'real.json');
      fs.renameSync(s.file, target);
      fs.chmodSync(target, 0o666);
      fs.symlinkSync(target, s.file);
    },
    fix: (s) => `chmod 600 ${path.join(s.dir, 'real.json')}`,
    problem: /real\.json \(the target of .*config\.json\) has mode 666/,
  },
];

describe('a config file others can change is refused', () => {
  for (const c of cases) {
    it.skipIf(c.root === true && !isRoot)(`${c.name}: the daemon exits 6 with the fix, doctor fails the config check`, { timeout: 60_000 }, async () => {
      const s = setup();
      c.prepare(s);
      const started = await daemon(s);
      expect(started.code, started.stderr).toBe(6);
      expect(started.stderr).toMatch(c.problem);
      expect(started.stderr).toContain(`fix: ${c.fix(s)}`);
      const check = await doctorConfig(s);
      expect(check.status).toBe('fail');
      expect(check.detail).toMatch(c.problem);
      expect(check.fix).toContain(c.fix(s));
    });
  }
});

describe('acceptable configs', () => {
  const accepted: Array<{ name: string; prepare(s: Setup): void; root?: boolean }> = [
    { name: '0644 in a 0700 directory (what an editor and mkdtemp give)', prepare: () => {} },
    { name: '0600 in a 0755 directory', prepare: (s) => (fs.chmodSync(s.file, 0o600), fs.chmodSync(s.dir, 0o755)) },
    { name: 'a sticky directory writable by all (like /tmp)', prepare: (s) => fs.chmodSync(s.dir, 0o1777) },
    { name: 'a root-owned file (managed by the administrator)', prepare: (s) => fs.chownSync(s.file, 0, 0), root: true },
  ];
  for (const a of accepted) {
    it.skipIf(a.root === true && !isRoot)(`${a.name}: doctor's config check passes; the daemon starts`, { timeout: 60_000 }, async () => {
      const s = setup();
      a.prepare(s);
      const check = await doctorConfig(s);
      expect(check.status, check.detail).toBe('ok');
      const started = await daemon(s);
      expect(started.code, started.stderr).toBeNull(); // still running when the test gave up on it: it started
    });
  }
});
