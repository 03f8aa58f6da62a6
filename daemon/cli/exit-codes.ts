import type { ErrorCode } from '../../proto/errors.js';

/** Process exit codes of the `tokenbroker` command (documented in the README). */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  DAEMON_NOT_RUNNING: 3,
  ALREADY_RUNNING: 4,
  /** Also `status` when the asked profile (without --profile: any profile) needs sign-in. */
  LOGIN_REQUIRED: 5,
  CONFIG_INVALID: 6,
  SERVICE_MANAGER_ERROR: 7,
  /** `login` cancelled with Ctrl-C (128 + SIGINT, as shells report it). */
  CANCELLED: 130,
  /** Whoever read our output closed it early (as a process ended by SIGPIPE reports in a shell). */
  BROKEN_PIPE: 141,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'DAEMON_NOT_RUNNING':
      return EXIT.DAEMON_NOT_RUNNING;
    case 'LOGIN_REQUIRED':
      return EXIT.LOGIN_REQUIRED;
    case 'CONFIG_INVALID':
      return EXIT.CONFIG_INVALID;
    case 'ALREADY_RUNNING':
      return EXIT.ALREADY_RUNNING;
    case 'BAD_REQUEST':
      return EXIT.USAGE;
    case 'SERVICE_MANAGER_ERROR':
      return EXIT.SERVICE_MANAGER_ERROR;
    default:
      return EXIT.ERROR;
  }
}
