/**
 * The config in force and its reloads (SIGHUP, the `reload` method, a change of the file). A file that
 * cannot be taken (unreadable, not JSON, a wrong field, unsafe permissions, gone) changes nothing: the
 * running config stays, the error is logged, answered to `reload`, and shown by `status` until a reload
 * succeeds.
 */
import type { ConfigError, ReloadResult } from '../proto/index.js';
import { BrokerError } from '../proto/index.js';
import type { Broker } from './broker.js';
import { loadConfig, type BrokerConfig } from './config.js';
import type { Logger } from './log.js';

export type ReloadTrigger = 'SIGHUP' | 'request' | 'file change';

export interface LiveConfigOptions {
  /** The config file's path (it may not exist yet). */
  readonly file: string;
  /** The user named the file (--config / $TOKENBROKER_CONFIG): a missing file is an error. */
  readonly explicit: boolean;
  readonly initial: BrokerConfig;
  readonly broker: Broker;
  readonly log: Logger;
  readonly now?: () => number;
}

export class LiveConfig {
  private current: BrokerConfig;
  private failure: ConfigError | undefined;

  constructor(private readonly options: LiveConfigOptions) {
    this.current = options.initial;
  }

  get config(): BrokerConfig {
    return this.current;
  }

  /** Why the last reload failed; undefined when it succeeded (or none was tried). */
  get error(): ConfigError | undefined {
    return this.failure;
  }

  /** Reads the file again and applies it. Throws CONFIG_INVALID (and keeps the running config) when it cannot be taken. */
  reload(trigger: ReloadTrigger): ReloadResult {
    const { file, log, broker } = this.options;
    let next: BrokerConfig;
    try {
      next = this.read();
    } catch (error) {
      const failure = error instanceof BrokerError ? error : new BrokerError('CONFIG_INVALID', `${file}: ${(error as Error).message}`);
      this.failure = {
        path: file,
        message: failure.message,
        ...(failure.field === undefined ? {} : { field: failure.field }),
        at: (this.options.now ?? Date.now)(),
      };
      log.error({ trigger, configPath: file, field: failure.field, err: { message: failure.message } }, 'config reload failed: the running config stays');
      throw new BrokerError('CONFIG_INVALID', `${failure.message} (the daemon keeps running with the config it had)`, {
        ...(failure.field === undefined ? {} : { field: failure.field }),
      });
    }
    const diff = broker.applyConfig(next);
    this.current = next;
    this.failure = undefined;
    const result: ReloadResult = {
      configPath: next.path,
      added: diff.added.map((p) => p.name),
      removed: [...diff.removed],
      changed: diff.changed.filter((c) => c.keepsSession).map((c) => c.name),
      restarted: diff.changed.filter((c) => !c.keepsSession).map((c) => c.name),
      ...(next.defaultProfile === undefined ? {} : { defaultProfile: next.defaultProfile }),
    };
    log.info({ trigger, ...result, profiles: next.profiles.size }, 'config reloaded');
    return result;
  }

  private read(): BrokerConfig {
    const { file, explicit } = this.options;
    // A file that was there and is gone is a mistake more likely than a wish to drop every profile.
    const next = loadConfig(file, { allowMissing: !explicit && this.current.path === null });
    return next;
  }
}
