/**
 * Opens URLs in the user's browser. It fails silently where no browser exists, so callers always show
 * the URL too. The URL itself is never logged (it may carry one-time values).
 *
 * Under a systemd user unit the browser is started as a transient unit of its own
 * (`systemd-run --user`), so that it inherits nothing from this service: not its no_new_privs and
 * seccomp filters (systemd.exec(5) "Security"), not its cgroup limits (`MemoryMax=`, `TasksMax=`), and
 * it survives a restart of the service, which kills every process of the unit's cgroup. Elsewhere, or
 * when systemd-run fails, `open` starts it as a child (on Linux through xdg-open, which honours
 * $BROWSER). See docs/security.md, "The service unit".
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from './log.js';
import { execCommand, findExecutable } from './system/run.js';

export type OpenBrowser = (url: string) => Promise<boolean>;

/**
 * True when this process is a service of a systemd *user* manager: systemd sets INVOCATION_ID for every
 * unit, MANAGERPID only for processes spawned by a user instance, and (since systemd 248)
 * SYSTEMD_EXEC_PID to the PID of the process ExecStart= started (systemd.exec(5), "Environment
 * variables in spawned processes"). The last one tells the daemon itself from a program that merely
 * inherited these variables (a shell in a terminal started by a service), which has another PID.
 */
export function underSystemdUserManager(env: NodeJS.ProcessEnv, pid: number = process.pid): boolean {
  const execPid = env['SYSTEMD_EXEC_PID'];
  return Boolean(env['INVOCATION_ID']) && Boolean(env['MANAGERPID']) && (execPid === undefined || execPid === String(pid));
}

/**
 * The systemd-run command that opens `url` in a transient user unit. `--description` keeps the URL out
 * of the unit's description, which systemd would otherwise log to the journal ("Started <command>");
 * `--collect` unloads the unit even if xdg-open fails; `--service-type=exec` makes systemd-run fail
 * when xdg-open cannot be started (so the caller falls back). BROWSER is passed by name: systemd-run
 * copies its value from its own environment (systemd-run(1), `--setenv=NAME`).
 */
export function systemdRunCommand(url: string, env: NodeJS.ProcessEnv): string[] {
  return [
    'systemd-run',
    '--user',
    '--collect',
    '--quiet',
    '--service-type=exec',
    '--description=tokenbroker: open the browser',
    ...(env['BROWSER'] ? ['--setenv=BROWSER'] : []),
    '--',
    findExecutable('xdg-open', env) ?? bundledXdgOpen(),
    url,
  ];
}

/** The copy of xdg-open that the `open` package ships (used by `open` itself when none is installed). */
function bundledXdgOpen(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.resolve('open'))), 'xdg-open');
}

export function systemBrowser(log: Logger, env: NodeJS.ProcessEnv = process.env): OpenBrowser {
  return async (url) => {
    if (underSystemdUserManager(env)) {
      const result = await execCommand(systemdRunCommand(url, env), env, 10_000);
      if (result.exitCode === 0) {
        log.debug({ host: new URL(url).host, via: 'systemd-run' }, 'opened the browser');
        return true;
      }
      const output = result.stderr.replaceAll(url, '[url]').trim().slice(0, 500);
      log.warn(
        { via: 'systemd-run', exitCode: result.exitCode, missing: result.missing, output },
        'could not open the browser outside the service; opening it as a child of the daemon instead',
      );
    }
    try {
      const { default: open } = await import('open');
      await open(url);
      log.debug({ host: new URL(url).host }, 'opened the browser');
      return true;
    } catch (error) {
      log.warn({ err: { message: (error as Error).message } }, 'could not open a browser; the URL is shown to the user instead');
      return false;
    }
  };
}
