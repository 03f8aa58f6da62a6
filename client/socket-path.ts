import os from 'node:os';
import { defaultSocketPath } from '../proto/paths.js';

/** The socket the daemon listens on by default: `$TOKENBROKER_SOCKET`, else the per-user runtime dir. */
export function resolveSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  let username = 'user';
  // The user name only names the Windows pipe (and the fallback where there is no uid): skip the passwd
  // lookup elsewhere, it is start-up time of every `tokenbroker token`.
  if (process.platform === 'win32' || typeof process.getuid !== 'function') {
    try {
      username = os.userInfo().username;
    } catch {
      // no passwd entry (containers): keep the placeholder
    }
  }
  return defaultSocketPath({
    platform: process.platform,
    env,
    ...(typeof process.getuid === 'function' ? { uid: process.getuid() } : {}),
    username,
    tmpdir: os.tmpdir(),
  });
}
