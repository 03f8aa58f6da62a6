/**
 * vitest globalSetup: the end-to-end tests run the built daemon and CLI in dist/, so dist/ is rebuilt
 * (tsc) when it is missing or older than any source file. A single-file run never tests a stale build.
 * `npm test` builds first (pretest), so there this finds nothing to do.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/daemon/cli/main.js');
const SOURCE_DIRS = ['proto', 'client', 'daemon'];

/** The newest modification time of a .ts file under `dir` (0 if none). */
function newestSource(dir: string): number {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newestSource(full));
    else if (entry.name.endsWith('.ts')) latest = Math.max(latest, fs.statSync(full).mtimeMs);
  }
  return latest;
}

/** True when dist/ is missing or older than the sources (tsconfig.json included). */
export function distIsStale(root = ROOT): boolean {
  // Both: tsc's output and the bundled bin (scripts/build-cli.mjs).
  const outputs = ['dist/daemon/cli/main.js', 'dist/daemon/cli/tokenbroker.cjs'].map((file) => path.join(root, file));
  const built = Math.min(...outputs.map((file) => (fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0)));
  const sources = Math.max(fs.statSync(path.join(root, 'tsconfig.json')).mtimeMs, ...SOURCE_DIRS.map((d) => newestSource(path.join(root, d))));
  return built < sources;
}

export default function setup(): void {
  if (!distIsStale()) return;
  console.log('dist/ is missing or older than the sources: building (tsc -b proto client daemon)');
  const result = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', ...['proto', 'client', 'daemon'].map((d) => path.join(ROOT, d))],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (result.status !== 0) throw new Error('the build failed (tsc): the end-to-end tests would run a stale dist/; fix the type errors above');
  const bundled = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-cli.mjs')], { cwd: ROOT, stdio: 'inherit' });
  if (bundled.status !== 0) throw new Error('the build failed (scripts/build-cli.mjs, the bundled bin)');
  // tsc leaves an unchanged output file alone on some setups: mark the build as done.
  const now = new Date();
  fs.utimesSync(CLI, now, now);
  fs.utimesSync(path.join(ROOT, 'dist/daemon/cli/tokenbroker.cjs'), now, now);
}
