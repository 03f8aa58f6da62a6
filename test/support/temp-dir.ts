/**
 * A private temp directory, for tests of any layer (test/support/daemon.ts, which needs dist/, re-exports it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh private (0700) directory. */
export function tempDir(prefix = 'tb-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o700);
  return dir;
}
