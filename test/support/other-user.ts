/**
 * A real second Unix account for tests of the boundary between local users: created with `useradd`
 * (no home, no login shell), acted as with `setpriv --reuid --regid --clear-groups`, and removed with
 * its processes afterwards. Needs Linux and root; `canRunAsOtherUser` says whether this machine can.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand, waitFor, type CliResult } from './daemon.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasTools = ['useradd', 'userdel', 'setpriv'].every((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0);
export const canRunAsOtherUser = process.platform === 'linux' && isRoot && hasTools;
export const otherUserSkipReason = `needs Linux, root and useradd/userdel/setpriv to create a second user (root: ${isRoot}, tools: ${hasTools})`;

export interface OtherUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** World-readable scratch space for the other user's scripts (and nothing else). */
  readonly shared: string;
  /** Runs `node <script with source>` as the other user. */
  runNode(source: string, env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<CliResult>;
  /** Starts `node <script with source>` as the other user in the background. */
  spawnNode(source: string, env?: NodeJS.ProcessEnv): ChildProcess;
  /** Kills the account's processes, deletes it and the scratch space. */
  remove(): Promise<void>;
}

export function createOtherUser(): OtherUser {
  const name = `tbtest-${randomBytes(4).toString('hex')}`;
  const added = spawnSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', name], { encoding: 'utf8' });
  if (added.status !== 0) throw new Error(`useradd failed: ${added.stderr}`);
  const info = (flag: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  const uid = info('-u');
  const gid = info('-g');
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-shared-'));
  fs.chmodSync(shared, 0o755);
  const setpriv = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'];
  const script = (source: string): string => {
    const file = path.join(shared, `probe-${randomBytes(4).toString('hex')}.mjs`);
    fs.writeFileSync(file, source, { mode: 0o644 });
    return file;
  };
  return {
    name,
    uid,
    gid,
    shared,
    runNode: (source, env = {}, timeoutMs = 15_000) =>
      runCommand([...setpriv, process.execPath, script(source)], {
        cwd: shared,
        env: { PATH: process.env['PATH'], HOME: shared, ...env },
        timeoutMs,
        label: `as ${name}`,
      }),
    spawnNode: (source, env = {}) =>
      spawn(setpriv[0]!, [...setpriv.slice(1), process.execPath, script(source)], {
        cwd: shared,
        env: { PATH: process.env['PATH'], HOME: shared, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    remove: async () => {
      // Only that throw-away account's processes (probes that outlived a failed test), then the account.
      spawnSync('pkill', ['-KILL', '-U', String(uid)]);
      await waitFor(
        () => spawnSync('pgrep', ['-U', String(uid)]).status !== 0,
        5_000,
        () => `processes of ${name} still running`,
      ).catch(() => undefined);
      const removed = spawnSync('userdel', [name], { encoding: 'utf8' });
      if (removed.status !== 0) console.error(`userdel ${name} failed: ${removed.stderr}`);
      fs.rmSync(shared, { recursive: true, force: true });
    },
  };
}
