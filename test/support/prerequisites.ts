/**
 * Tests that need something of the machine (root, a tool on PATH, Chromium) may skip on a developer's
 * machine that lacks it — never in CI. With `CI` set, a missing prerequisite fails the file, so a broken
 * install step cannot pass as "skipped".
 *
 *   describe.skipIf(requireOrSkip(onPath('xdg-mime'), 'needs xdg-mime (apt-get install xdg-utils)'))(…)
 */
import fs from 'node:fs';
import path from 'node:path';

export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
}

/**
 * True when the caller should skip: `available` is false and this is not CI (the reason is printed).
 * Throws MissingPrerequisiteError when `available` is false and `CI` is set.
 */
export function requireOrSkip(available: boolean, reason: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (available) return false;
  if (env['CI']) {
    throw new MissingPrerequisiteError(`${reason} — missing in CI (CI is set), where nothing may be skipped: fix the install step`);
  }
  console.log(`SKIPPED — ${reason}`);
  return true;
}

/** Whether an executable named `name` is on PATH. */
export function onPath(name: string): boolean {
  return (process.env['PATH'] ?? '').split(path.delimiter).some((dir) => dir !== '' && fs.existsSync(path.join(dir, name)));
}
