/**
 * The socket directory keeps other users out only if nobody but its owner can enter or list it: every
 * mode with a group or other bit is refused, 0700 is accepted. Real directories in a private temp dir.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSocketDir, prepareSocketDir, SocketDirError } from '../../daemon/ipc/socket-dir.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-socket-dir-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function dirWithMode(mode: number): string {
  const dir = fs.mkdtempSync(path.join(root, `m${mode.toString(8)}-`));
  fs.chmodSync(dir, mode);
  expect(fs.statSync(dir).mode & 0o777).toBe(mode); // umask plays no part after chmod
  return dir;
}

describe.skipIf(process.platform === 'win32')('checkSocketDir', () => {
  it('accepts 0700', () => {
    expect(() => checkSocketDir(dirWithMode(0o700))).not.toThrow();
  });

  // Each group/other bit on its own, and the usual shared modes.
  const refused = [0o710, 0o720, 0o740, 0o701, 0o702, 0o704, 0o711, 0o750, 0o770, 0o755, 0o707, 0o777];
  it.each(refused.map((mode) => [mode.toString(8).padStart(4, '0'), mode] as const))('refuses %s, naming the mode and the fix', (label, mode) => {
    const dir = dirWithMode(mode);
    let error: unknown;
    try {
      checkSocketDir(dir);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SocketDirError);
    expect((error as Error).message).toContain(`has mode ${label.slice(1)}`);
    expect((error as Error).message).toContain(`chmod 700 ${dir}`);
  });

  it('refuses a symlink to a private directory, and a file', () => {
    const target = dirWithMode(0o700);
    const link = path.join(root, 'link');
    fs.symlinkSync(target, link);
    expect(() => checkSocketDir(link)).toThrow(/not a real directory/);
    const file = path.join(root, 'file');
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o700);
    expect(() => checkSocketDir(file)).toThrow(/not a real directory/);
  });

  it('prepareSocketDir creates a missing directory 0700 and refuses an existing 0750 one', () => {
    const socket = path.join(root, 'new', 'deeper', 'tokenbroker.sock');
    expect(prepareSocketDir(socket)).toBe(path.dirname(socket));
    expect(fs.statSync(path.dirname(socket)).mode & 0o777).toBe(0o700);
    const shared = dirWithMode(0o750);
    expect(() => prepareSocketDir(path.join(shared, 'tokenbroker.sock'))).toThrow(SocketDirError);
  });
});
