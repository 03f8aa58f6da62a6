/**
 * kubectl's 401 path. client-go does not retry a request the API server answered with 401: the command
 * fails, and the same kubectl process runs the exec plugin again before its next request
 * (client-go `maybeRefreshCreds`). Nothing in KUBERNETES_EXEC_INFO says why it runs again, so we
 * remember which token we handed to which kubectl process (its pid is our parent's): a second run from
 * the same process, while the daemon still holds the token we handed it, means that token was refused,
 * and it is reported as rejected (token.get `rejected`) so the daemon refreshes once — for this kubectl
 * and every later one. Used only when KUBERNETES_EXEC_INFO is set (client-go always sets it): a shell
 * loop or a benchmark running `tokenbroker token` repeatedly has one parent too, and must not cause
 * refreshes.
 *
 * Only a SHA-256 of each token is kept (never the token), in a 0600 file next to the daemon's socket
 * (a 0700 directory of the user's). Entries end when the token expires. A kubectl pid reused within a
 * token's lifetime costs one needless refresh at worst. Any failure here is ignored: the file is a hint.
 */
import type { TokenResult } from '../../proto/messages.js';

const FILE_NAME = 'kubectl-handouts.json';

type Memory = Record<string, { sha256: string; until: number }>;

const fs = () => process.getBuiltinModule('node:fs');
const sha256 = (text: string) => process.getBuiltinModule('node:crypto').createHash('sha256').update(text).digest('hex');

function memoryPath(socketPath: string): string {
  const slash = Math.max(socketPath.lastIndexOf('/'), socketPath.lastIndexOf('\\'));
  return `${socketPath.slice(0, slash)}/${FILE_NAME}`;
}

function read(file: string): Memory {
  try {
    const parsed: unknown = JSON.parse(fs().readFileSync(file, 'utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Memory) : {};
  } catch {
    return {};
  }
}

/** Whether this kubectl process (`parentPid`) was already handed exactly this token. */
export function handedBefore(socketPath: string, parentPid: number, token: TokenResult): boolean {
  if (process.platform === 'win32' || parentPid <= 1) return false;
  const entry = read(memoryPath(socketPath))[String(parentPid)];
  return entry !== undefined && typeof entry.sha256 === 'string' && entry.sha256 === sha256(token.accessToken);
}

/** Records the token handed to `parentPid` (atomically: a temp file renamed over the old one). */
export function rememberHandout(socketPath: string, parentPid: number, token: TokenResult): void {
  if (process.platform === 'win32' || parentPid <= 1) return;
  const file = memoryPath(socketPath);
  try {
    const now = Date.now();
    const memory: Memory = {};
    for (const [pid, entry] of Object.entries(read(file))) {
      if (/^\d+$/.test(pid) && typeof entry?.until === 'number' && entry.until > now) memory[pid] = entry;
    }
    memory[String(parentPid)] = { sha256: sha256(token.accessToken), until: token.expiresAt };
    const temp = `${file}.${process.pid}.tmp`;
    fs().writeFileSync(temp, JSON.stringify(memory), { mode: 0o600 });
    fs().renameSync(temp, file);
  } catch {
    // A hint only: without it, a rejected token is replaced when it expires, as before.
  }
}
