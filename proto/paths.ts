/**
 * Where the daemon listens by default. Pure string logic so the daemon, the client library and apps in
 * other languages compute the same path; callers pass in what they read from their OS.
 */
export interface SocketPathInputs {
  readonly platform: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Numeric user id (Unix). */
  readonly uid?: number;
  readonly username: string;
  /** The OS temp dir for this user (macOS: the per-user `$TMPDIR`). */
  readonly tmpdir: string;
}

export const SOCKET_FILE_NAME = 'broker.sock';

export function defaultSocketPath(inputs: SocketPathInputs): string {
  const override = inputs.env['TOKENBROKER_SOCKET'];
  if (override !== undefined && override !== '') return override;
  if (inputs.platform === 'win32') {
    return `\\\\.\\pipe\\tokenbroker-${inputs.username.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  }
  const runtimeDir = inputs.env['XDG_RUNTIME_DIR'];
  if (inputs.platform !== 'darwin' && runtimeDir !== undefined && runtimeDir !== '') {
    return `${trimSlash(runtimeDir)}/tokenbroker/${SOCKET_FILE_NAME}`;
  }
  if (inputs.platform === 'darwin') {
    // macOS gives each user a private $TMPDIR under /var/folders; short enough for sun_path (104 bytes).
    return `${trimSlash(inputs.tmpdir)}/tokenbroker/${SOCKET_FILE_NAME}`;
  }
  return `/tmp/tokenbroker-${inputs.uid ?? inputs.username}/${SOCKET_FILE_NAME}`;
}

function trimSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
}
