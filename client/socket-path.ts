import os from 'node:os';
import { defaultSocketPath } from '../proto/index.js';

/** The socket the daemon listens on by default: `$TOKENBROKER_SOCKET`, else the per-user runtime dir. */
export function resolveSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  let username = 'user';
  try {
    username = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep the placeholder
  }
  return defaultSocketPath({
    platform: process.platform,
    env,
    ...(typeof process.getuid === 'function' ? { uid: process.getuid() } : {}),
    username,
    tmpdir: os.tmpdir(),
  });
}
