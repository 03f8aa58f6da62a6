/**
 * The config file decides where the broker sends refresh tokens (the issuer) and which browser URL it
 * opens: whoever can write it can redirect a user's tokens. So, like the socket directory
 * (ipc/socket-dir.ts), the file and the directory it lives in must be the user's own and closed to writes
 * by others. Checked on the file the path resolves to (symlinks followed) and on that file's directory.
 *
 * - owner: the current user, or root (a config managed by the administrator; root can do anything anyway);
 * - the file: not writable by group or others (0644 is fine: the config holds no secret);
 * - its directory: not writable by group or others — unless it has the sticky bit (like /tmp), where
 *   others cannot rename or delete a file they do not own.
 *
 * Not on Windows (ACLs, not modes; see the README's security notes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { BrokerError } from '../proto/index.js';

/** CONFIG_INVALID for a config file others could change; `fix` is the command that closes it. */
export class ConfigPermissionError extends BrokerError {
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super('CONFIG_INVALID', `${problem}; fix: ${fix}`);
  }
}

const GROUP_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** Throws ConfigPermissionError when `file` (an existing config file) or its directory could be changed by another user. */
export function checkConfigPermissions(file: string, uid: number | undefined = process.getuid?.()): void {
  if (process.platform === 'win32' || uid === undefined) return;
  const real = fs.realpathSync(file);
  const shown = real === path.resolve(file) ? real : `${real} (the target of ${file})`;
  const fileStat = fs.statSync(real);
  const dir = path.dirname(real);
  const dirStat = fs.statSync(dir);
  const foreign = (owner: number) => owner !== uid && owner !== 0;
  if (foreign(fileStat.uid)) {
    throw new ConfigPermissionError(
      `the config file ${shown} is owned by uid ${fileStat.uid}, not by you (uid ${uid}): its owner could point the broker at another provider`,
      `use a config file of your own (cp ${real} ~/my-config.json and point --config or TOKENBROKER_CONFIG at it), or as root: chown ${uid} ${real}`,
    );
  }
  if ((fileStat.mode & GROUP_OTHER_WRITE) !== 0) {
    throw new ConfigPermissionError(
      `the config file ${shown} has mode ${mode(fileStat.mode)}: other users could change it and point the broker at another provider`,
      `chmod 600 ${real}`,
    );
  }
  if (foreign(dirStat.uid)) {
    throw new ConfigPermissionError(
      `the config file's directory ${dir} is owned by uid ${dirStat.uid}, not by you (uid ${uid}): its owner could replace the file`,
      'move the config file to a directory of your own (default: ~/.config/tokenbroker/)',
    );
  }
  if ((dirStat.mode & GROUP_OTHER_WRITE) !== 0 && (dirStat.mode & STICKY) === 0) {
    throw new ConfigPermissionError(
      `the config file's directory ${dir} has mode ${mode(dirStat.mode)}: other users could replace the file`,
      `chmod go-w ${dir}`,
    );
  }
}

function mode(value: number): string {
  return (value & 0o7777).toString(8).padStart(3, '0');
}
