/**
 * `socket-dir`: the directory that holds the daemon's socket keeps other users out: a real directory,
 * ours, mode 0700 (the same rule the daemon enforces at start-up, daemon/ipc/socket-dir.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { SocketDirError, checkSocketDir } from '../ipc/socket-dir.js';
import { result, type CheckResult } from './types.js';

const TITLE = 'socket directory';

export function checkSocketDirectory(socketPath: string, platform: NodeJS.Platform = process.platform): CheckResult {
  if (platform === 'win32') return result('socket-dir', TITLE, 'skip', `a named pipe (${socketPath}) has no directory; its ACL protects it`);
  const dir = path.dirname(path.resolve(socketPath));
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return result('socket-dir', TITLE, 'ok', `${dir} does not exist yet; the daemon creates it (mode 0700) when it starts`);
    }
    return result(
      'socket-dir',
      TITLE,
      'fail',
      `cannot inspect ${dir}: ${(error as Error).message}`,
      `make ${path.dirname(dir)} accessible to you, or set TOKENBROKER_SOCKET to a path under a directory of your own`,
    );
  }
  try {
    checkSocketDir(dir);
  } catch (error) {
    if (!(error instanceof SocketDirError)) throw error;
    return result('socket-dir', TITLE, 'fail', problemOf(dir, stat), fixFor(dir, stat));
  }
  return result('socket-dir', TITLE, 'ok', `${dir}: yours, mode 0700`);
}

function mode(stat: fs.Stats): string {
  return (stat.mode & 0o777).toString(8).padStart(3, '0');
}

function ownUid(stat: fs.Stats): number {
  return typeof process.getuid === 'function' ? process.getuid() : stat.uid;
}

function problemOf(dir: string, stat: fs.Stats): string {
  if (stat.isSymbolicLink()) return `${dir} is a symbolic link, not a real directory: the socket could be redirected`;
  if (!stat.isDirectory()) return `${dir} is not a directory`;
  if (stat.uid !== ownUid(stat)) return `${dir} belongs to uid ${stat.uid}, not to you (uid ${ownUid(stat)}): its owner could reach or replace the socket`;
  return `${dir} has mode ${mode(stat)}: other users can reach the socket (it must be 0700)`;
}

function fixFor(dir: string, stat: fs.Stats): string {
  if (stat.isSymbolicLink() || !stat.isDirectory()) return `rm ${dir} (the daemon creates a real directory, mode 0700, when it starts)`;
  if (stat.uid !== ownUid(stat)) return 'set TOKENBROKER_SOCKET (or --socket) to a path in a directory of your own, e.g. under $XDG_RUNTIME_DIR';
  return `chmod 700 ${dir}`;
}
