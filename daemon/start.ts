/**
 * The daemon's entry point: config, socket, sessions, signals. Runs in the foreground; a service
 * manager (launchd, systemd) keeps it alive.
 */
import path from 'node:path';
import { BrokerError, PROTOCOL_VERSION, type StatusResult } from '../proto/index.js';
import { systemBrowser, type OpenBrowser } from './browser.js';
import { Broker } from './broker.js';
import { EXIT } from './cli/exit-codes.js';
import { loadConfig, type BrokerConfig } from './config.js';
import { watchConfig } from './config-watch.js';
import { LiveConfig, type ReloadTrigger } from './live-config.js';
import { desktopNotifier } from './notify/desktop.js';
import { SignInNotices } from './notify/sign-in-notices.js';
import { IpcServer } from './ipc/ipc-server.js';
import { createLogger, type LogLevel, type Logger } from './log.js';
import { claimSocket } from './ipc/single-instance.js';
import { prepareSocketDir } from './ipc/socket-dir.js';
import { statusPage } from './status-page.js';
import { KeychainStore } from './store/keychain.js';
import type { TokenStore } from './store/types.js';
import { packageVersion } from './version.js';

export interface DaemonOptions {
  readonly socketPath: string;
  readonly configPath: string;
  /** The user named the config file (--config / $TOKENBROKER_CONFIG): a missing file is then an error. */
  readonly configExplicit: boolean;
  readonly logLevel: LogLevel;
  /** @default the OS keychain */
  readonly store?: TokenStore;
  /** @default the system browser via `open` */
  readonly openBrowser?: OpenBrowser;
}

export interface RunningDaemon {
  readonly log: Logger;
  /** Reads the config file again and applies it (SIGHUP); a broken file is logged and kept out. */
  reload(trigger: ReloadTrigger): void;
  /** Resolves when the daemon has stopped (after SIGTERM/SIGINT or stop()). */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the daemon. Throws a BrokerError: ALREADY_RUNNING, SOCKET_DIR_UNSAFE, CONFIG_INVALID, … */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const log = createLogger(options.logLevel);
  const version = packageVersion();
  const config: BrokerConfig = loadConfig(options.configPath, { allowMissing: !options.configExplicit });
  const socketPath = path.resolve(options.socketPath);
  prepareSocketDir(socketPath);
  if (await claimSocket(socketPath)) log.warn({ socketPath }, 'replaced a stale socket left by a daemon that did not stop cleanly');

  const startedAt = Date.now();
  const store =
    options.store ??
    new KeychainStore({
      ...(process.env['TOKENBROKER_KEYCHAIN_SERVICE'] ? { service: process.env['TOKENBROKER_KEYCHAIN_SERVICE'] } : {}),
      onCorrupt: (entry) =>
        log.error({ profile: entry.profile, field: entry.field, reason: entry.reason }, 'ignoring an unreadable keychain entry; sign in again'),
    });
  const notices = new SignInNotices({ notify: desktopNotifier({ log }), profile: (name) => broker.profileConfig(name) });
  const broker = new Broker({
    config,
    store,
    log,
    publish: (event) => {
      server.publish(event);
      notices.observe(event);
    },
    openBrowser: options.openBrowser ?? systemBrowser(log),
  });
  const live = new LiveConfig({ file: options.configPath, explicit: options.configExplicit, initial: config, broker, log });
  const reload = (trigger: ReloadTrigger) => {
    try {
      live.reload(trigger);
    } catch (error) {
      if (!(error instanceof BrokerError)) log.error({ err: error, trigger }, 'unexpected error reloading the config');
    }
  };

  const server: IpcServer = new IpcServer({
    socketPath,
    daemonVersion: version,
    log,
    handlers: {
      status: (params): StatusResult => ({
        daemonVersion: version,
        protocolVersion: PROTOCOL_VERSION,
        pid: process.pid,
        startedAt,
        uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
        socketPath,
        configPath: live.config.path,
        connectedClients: server.connectedClients,
        ...statusPage(params, broker.profileNames(), (name) => broker.profileStatus(name)),
        ...(live.error === undefined ? {} : { configError: live.error }),
      }),
      reload: () => live.reload('request'),
      ...broker.handlers,
    },
  });
  // Listen first: a slow or hung keychain delays each profile's restore (state `restoring`), never the
  // socket; `status` answers at once and `token.get` waits for its own profile only.
  await server.start();
  log.info({ version, socketPath, configPath: config.path, profiles: config.profiles.size }, 'tokenbroker daemon listening');
  // TOKENBROKER_CONFIG_WATCH=0: no automatic reload (SIGHUP and `tokenbroker reload` still work).
  const watch =
    process.env['TOKENBROKER_CONFIG_WATCH'] === '0'
      ? { stop: () => undefined }
      : watchConfig({ file: options.configPath, log, onChange: () => reload('file change') });
  const restoreStarted = Date.now();
  void broker.restore().then(() => log.info({ profiles: config.profiles.size, ms: Date.now() - restoreStarted }, 'profiles restored'));

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping: finishing in-flight requests');
      watch.stop();
      await server.stop();
      broker.dispose();
      log.info('stopped');
      resolveStopped();
    })());
  return { log, stopped, stop, reload };
}

/** Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads the config. Returns the process exit code. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  // SIGHUP reloads the config (the Unix daemon convention). Its default action would end the process and
  // leave the socket behind, so it is handled from the first moment; while starting, the config is being
  // read anyway.
  let daemon: RunningDaemon | undefined;
  const onHangup = () => {
    if (daemon) {
      daemon.log.info({ signal: 'SIGHUP' }, 'received SIGHUP: reloading the config');
      daemon.reload('SIGHUP');
    } else process.stderr.write('tokenbroker: received SIGHUP while starting: ignored (the config is being read)\n');
  };
  process.on('SIGHUP', onHangup);
  try {
    let running: RunningDaemon;
    try {
      running = await startDaemon(options);
    } catch (error) {
      if (!(error instanceof BrokerError)) throw error;
      process.stderr.write(`tokenbroker: ${error.message}\n`);
      return error.code === 'ALREADY_RUNNING' ? EXIT.ALREADY_RUNNING : error.code === 'CONFIG_INVALID' ? EXIT.CONFIG_INVALID : EXIT.ERROR;
    }
    daemon = running;
    const onSignal = (signal: NodeJS.Signals) => {
      running.log.info({ signal }, 'received signal');
      void running.stop();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    await running.stopped;
    return 0;
  } finally {
    process.off('SIGHUP', onHangup);
  }
}
