/**
 * The CLI when the program reading its output goes away early (`tokenbroker … | head -1`): no stack
 * trace, the status a shell gives a process ended by SIGPIPE (141).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, tempDir } from '../support/daemon.js';

/** Runs the CLI with a stdout pipe that is closed after the first chunk; resolves with its exit code and stderr. */
function runWithEarlyClose(args: readonly string[]): Promise<{ code: number | null; stderr: string; chunks: number }> {
  return new Promise((resolve, reject) => {
    const home = tempDir();
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_DATA_HOME: path.join(home, '.local/share') };
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stderr = '';
    let chunks = 0;
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdout.once('data', () => {
      chunks++;
      child.stdout.destroy(); // the reader goes away, as `head -1` does after its line
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr, chunks }));
  });
}

describe('CLI (e2e): a reader that closes the pipe early', () => {
  it('ends quietly (141, or 0 when all was written first) instead of crashing with EPIPE', async () => {
    // A dry run prints several lines in several writes and needs no daemon: the reader leaves after the first.
    const args = ['scheme', 'register', '--dry-run', '--scheme', 'com.example.pipe'];
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await runWithEarlyClose(args));
    for (const result of results) {
      expect(result.chunks).toBe(1);
      expect(result.stderr).not.toMatch(/EPIPE|Error|at .*\.js/);
      expect([0, 141]).toContain(result.code);
    }
    expect(
      results.some((result) => result.code === 141),
      'the reader never closed before the CLI wrote again',
    ).toBe(true);
  });
});
