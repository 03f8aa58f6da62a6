import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: { dir: string; version: string } | undefined;

/** This package's root directory and version: the nearest package.json named "tokenbroker" (source or dist). */
function findRoot(): { dir: string; version: string } {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tokenbroker' && typeof pkg.version === 'string') return (root = { dir, version: pkg.version });
    } catch {
      // not here; look one level up
    }
    dir = path.dirname(dir);
  }
  throw new Error('tokenbroker: cannot find its own package.json');
}

export function packageVersion(): string {
  return findRoot().version;
}

/** The package's root directory (templates in launchd/ and systemd/, the compiled CLI in dist/). */
export function packageRoot(): string {
  return findRoot().dir;
}
