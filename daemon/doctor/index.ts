/**
 * `tokenbroker doctor`: checks the setup and says how to fix what is wrong. The config is read first
 * (the per-profile checks need it); every other check then runs concurrently, each with a timeout, and
 * a check that throws or hangs is reported as failed rather than taking the report down with it.
 */
import { resolveSocketPath } from '../../client/socket-path.js';
import { defaultConfigPath } from '../config.js';
import { checkConfig } from './config-file.js';
import { checkDaemon } from './daemon-reachable.js';
import { checkKeychain } from './keychain.js';
import { checkNodeVersion } from './node-version.js';
import { checkProvider } from './provider.js';
import { checkSchemeHandler } from './scheme-handler.js';
import { checkService } from './service.js';
import { checkSocketDirectory } from './socket-dir.js';
import { result, type CheckResult, type DoctorContext, type DoctorOptions } from './types.js';

export type { CheckResult, CheckStatus, DoctorOptions } from './types.js';

interface PendingCheck {
  readonly id: string;
  readonly title: string;
  run(): Promise<CheckResult> | CheckResult;
}

export async function runDoctor(options: DoctorOptions = {}): Promise<CheckResult[]> {
  const env = options.env ?? process.env;
  const named = options.configPath ?? (env['TOKENBROKER_CONFIG'] || undefined);
  const configPath = named ?? defaultConfigPath(env);
  const checkTimeoutMs = options.checkTimeoutMs ?? 15_000;

  // A named file (flag or environment) must exist, as for the daemon; the default one may be missing.
  const configured = checkConfig(configPath, named !== undefined);
  const context: DoctorContext = {
    env,
    configPath,
    configFromFlag: options.configPath !== undefined,
    socketPath: options.socketPath ?? resolveSocketPath(env),
    httpTimeoutMs: options.httpTimeoutMs ?? 5_000,
    keychainTimeoutMs: options.keychainTimeoutMs ?? 5_000,
    now: options.now ?? Date.now,
    config: configured.config,
  };
  const profiles = [...(context.config?.profiles.values() ?? [])];

  const checks: PendingCheck[] = [
    { id: 'socket-dir', title: 'socket directory', run: () => checkSocketDirectory(context.socketPath) },
    { id: 'daemon', title: 'daemon', run: () => checkDaemon(context) },
    { id: 'keychain', title: 'keychain', run: () => checkKeychain(context) },
    { id: 'service', title: 'service', run: () => checkService(context) },
    ...profiles.map((p) => ({ id: `scheme:${p.name}`, title: `scheme handler (${p.name})`, run: () => checkSchemeHandler(p, context) })),
    ...profiles.map((p) => ({ id: `provider:${p.name}`, title: `provider (${p.name})`, run: () => checkProvider(p, context) })),
  ];
  const results = await Promise.all(checks.map((check) => runGuarded(check, checkTimeoutMs)));
  return [checkNodeVersion(), configured.result, ...results];
}

/** Runs one check: its exception or its timeout becomes a `fail` of that check. */
async function runGuarded(check: PendingCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () =>
        resolve(
          result(
            check.id,
            check.title,
            'fail',
            `the check did not finish within ${Math.round(timeoutMs / 1000)} s`,
            'run "tokenbroker doctor" again; if it persists, this part of the system hangs (see the detail of the other checks)',
          ),
        ),
      timeoutMs,
    );
    timer.unref();
  });
  try {
    return await Promise.race([Promise.resolve().then(() => check.run()), timeout]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return result(check.id, check.title, 'fail', `the check itself failed: ${message}`, 'please report this as a tokenbroker bug, with this output');
  } finally {
    clearTimeout(timer);
  }
}

/** No check failed (warnings and skips are fine). */
export function allPassed(checks: readonly CheckResult[]): boolean {
  return checks.every((check) => check.status !== 'fail');
}
