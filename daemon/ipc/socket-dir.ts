/**
 * The socket's directory is the boundary that keeps other users out: it must be ours and private.
 * We create it 0700 and refuse one that another user owns or that others can read or enter.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BrokerError } from '../../proto/errors.js';

/** The socket's directory is not safe to listen in (code SOCKET_DIR_UNSAFE); the message says the fix. */
export class SocketDirError extends BrokerError {
  constructor(message: string, options: { readonly cause?: unknown } = {}) {
    super('SOCKET_DIR_UNSAFE', message, options);
  }
}

/** Creates (0700) or checks the directory that holds `socketPath`. Throws SocketDirError with the fix. */
export function prepareSocketDir(socketPath: string): string {
  const dir = path.dirname(path.resolve(socketPath));
  if (process.platform === 'win32') return dir; // named pipes: no directory (see README, security)
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new SocketDirError(`cannot create the socket directory ${dir}: ${(error as Error).message}`, { cause: error });
  }
  checkSocketDir(dir);
  return dir;
}

/** Throws SocketDirError when `dir` is not a private directory of the current user. */
export function checkSocketDir(dir: string): void {
  const stat = fs.lstatSync(dir);
  if (stat.isSymbolicLink() || !stat.isDirectory()) {
    throw new SocketDirError(`the socket directory ${dir} is not a real directory (a symlink or a file); remove it`);
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : stat.uid;
  if (stat.uid !== uid) {
    throw new SocketDirError(
      `the socket directory ${dir} is owned by uid ${stat.uid}, not by you (uid ${uid}); ` + 'use a directory of your own (set TOKENBROKER_SOCKET)',
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
    throw new SocketDirError(
      `the socket directory ${dir} has mode ${mode}: other users could reach the socket; ` + `run "chmod 700 ${dir}" or remove it and let the daemon create it`,
    );
  }
}
