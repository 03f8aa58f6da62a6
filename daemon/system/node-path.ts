/**
 * The node binary the service unit, the launchd agent and the scheme handler record.
 *
 * `process.execPath` is the resolved binary (brew: /opt/homebrew/Cellar/node/24.1.0/bin/node), which
 * the next upgrade deletes. The user reached node through a path that survives upgrades
 * (/opt/homebrew/bin/node, /usr/local/bin/node, ~/.volta/bin/node …): a symlink the package manager
 * re-points. So we record the path that was invoked: argv0 when it is absolute, else the first `node`
 * on PATH (how `#!/usr/bin/env node` found it) that is this very binary. `doctor` checks that every
 * recorded path still exists, and `tokenbroker service install` writes them again.
 */
import fs from 'node:fs';
import path from 'node:path';

function realpath(file: string): string | undefined {
  try {
    return fs.realpathSync(file);
  } catch {
    return undefined;
  }
}

export function invokedNodePath(env: NodeJS.ProcessEnv = process.env, argv0: string = process.argv0, execPath: string = process.execPath): string {
  const binary = realpath(execPath) ?? execPath;
  if (path.isAbsolute(argv0) && realpath(argv0) === binary) return argv0;
  const names = process.platform === 'win32' ? ['node.exe', 'node'] : ['node'];
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (!path.isAbsolute(dir)) continue; // a relative PATH entry means nothing to the service manager
    for (const name of names) {
      const candidate = path.join(dir, name);
      if (realpath(candidate) === binary) return candidate;
    }
  }
  return execPath;
}
