/**
 * Watches the config file for changes and calls back once things are quiet (debounced). The directory is
 * watched, not the file: editors and `tokenbroker profile …` replace the file by renaming a temporary one
 * over it, which a watch on the file itself (its old inode) would miss. A directory that does not exist yet
 * (first run) is waited for by watching its parent.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from './log.js';

export interface ConfigWatchOptions {
  readonly file: string;
  readonly log: Logger;
  /** Called once the file has been quiet for `debounceMs` after a change. */
  readonly onChange: () => void;
  /** @default 200 */
  readonly debounceMs?: number;
}

export interface ConfigWatch {
  stop(): void;
}

export function watchConfig(options: ConfigWatchOptions): ConfigWatch {
  const file = path.resolve(options.file);
  const dir = path.dirname(file);
  const base = path.basename(file);
  const debounceMs = options.debounceMs ?? 200;
  let watcher: fs.FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const changed = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!stopped) options.onChange();
    }, debounceMs);
    timer.unref();
  };

  const watch = (target: string, listener: (filename: string | null) => void): fs.FSWatcher | undefined => {
    try {
      const w = fs.watch(target, { persistent: false }, (_event, filename) => listener(filename === null ? null : String(filename)));
      w.on('error', (error) => {
        options.log.warn({ dir: target, err: { message: error.message } }, 'watching the config directory failed; reload with SIGHUP or "tokenbroker reload"');
        w.close();
        if (watcher === w) watcher = undefined;
      });
      return w;
    } catch (error) {
      options.log.debug({ dir: target, err: { message: (error as Error).message } }, 'cannot watch the config directory');
      return undefined;
    }
  };

  const watchDir = (): boolean => {
    const w = watch(dir, (filename) => {
      if (filename === null || filename === base) changed();
    });
    if (w === undefined) return false;
    watcher = w;
    options.log.debug({ dir }, 'watching the config directory');
    return true;
  };

  if (!watchDir()) {
    // First run: the directory appears when the config is written for the first time.
    const parent = watch(path.dirname(dir), (filename) => {
      if ((filename === null || filename === path.basename(dir)) && fs.existsSync(dir) && !stopped && watcher === parent) {
        parent?.close();
        watcher = undefined;
        if (watchDir()) changed();
      }
    });
    watcher = parent;
    if (parent === undefined) options.log.warn({ dir }, 'the config directory cannot be watched; reload with SIGHUP or "tokenbroker reload"');
  }

  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}
