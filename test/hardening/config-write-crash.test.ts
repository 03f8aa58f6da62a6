/**
 * Config writes survive kill -9 (issue 16): a child process writes the config file in a loop through the
 * real writer (dist/daemon/config-write.js, as `tokenbroker profile …` does) and is killed with SIGKILL
 * at a random moment, over and over. After every kill the file must be exactly one whole version — the
 * last one the writer reported done, or the one it was writing — a config the daemon loads, mode 0600.
 * Temp files left by killed writers are removed by the next write.
 *
 * TOKENBROKER_CONFIG_CRASH_TRIALS (default 60), TOKENBROKER_CONFIG_CRASH_SEED to replay a run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config.js';
import { ROOT, tempDir, waitFor } from '../support/daemon.js';
import { createRng } from '../support/fuzz.js';

const TRIALS = Number(process.env['TOKENBROKER_CONFIG_CRASH_TRIALS'] ?? 60);
const SEED = Number(process.env['TOKENBROKER_CONFIG_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const PROFILES = 1000;
const WRITER = path.join(ROOT, 'dist/daemon/config-write.js');
const LOOP = path.join(ROOT, 'test/support/config-write-loop.mjs');

const rng = createRng(SEED);

interface Trial {
  /** The last version the writer reported written (the start version when none). */
  readonly acknowledged: number;
  /** How many writes it reported in this trial. */
  readonly writes: number;
}

/** Starts the writer, lets it write for a random while, kills it with SIGKILL. */
async function killedWriter(file: string, start: number): Promise<Trial> {
  const child = spawn(process.execPath, [LOOP, WRITER, file, String(PROFILES)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const versions = () =>
    stdout
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  // Past its start-up (reading and building the document), then a random 0–60 ms into its writes.
  await waitFor(
    () => versions().length > 0 || child.exitCode !== null,
    30_000,
    () => `the writer did not write: ${stderr}`,
  );
  await new Promise((resolve) => setTimeout(resolve, rng.range(0, 60)));
  child.kill('SIGKILL');
  await closed;
  expect(child.signalCode, stderr).toBe('SIGKILL');
  const written = versions();
  return { acknowledged: written.at(-1) ?? start, writes: written.length };
}

function versionOf(text: string): number {
  const json = JSON.parse(text) as { profiles: Record<string, { clientId: string }> };
  const version = Number(/^v(\d+)$/.exec(json.profiles['counter']!.clientId)![1]);
  // Every profile of one version: nothing of an older or newer document mixed in.
  for (let i = 0; i < PROFILES; i += 1) expect(json.profiles[`p${i}`]!.clientId).toBe(`client-${i}-v${version}`);
  return version;
}

describe('config writes under kill -9', () => {
  it(`leaves the old or the new file, never a broken one (${TRIALS} trials, seed ${SEED})`, { timeout: 600_000 }, async () => {
    const dir = tempDir('tb-config-crash-');
    const file = path.join(dir, 'tokenbroker', 'config.json');
    fs.mkdirSync(path.dirname(file), { mode: 0o700 });
    fs.writeFileSync(file, JSON.stringify({ profiles: { counter: { issuer: 'https://login.example.com', clientId: 'v0' } } }), { mode: 0o600 });
    let version = 0;
    let caughtMidWrite = 0;
    for (let trial = 0; trial < TRIALS; trial += 1) {
      const { acknowledged, writes } = await killedWriter(file, version);
      expect(writes, `trial ${trial}: the writer wrote nothing before it was killed`).toBeGreaterThan(0);
      const text = fs.readFileSync(file, 'utf8');
      const found = versionOf(text); // parses, and is one whole version
      expect([acknowledged, acknowledged + 1], `trial ${trial} (seed ${SEED})`).toContain(found);
      if (found === acknowledged + 1) caughtMidWrite += 1;
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(loadConfig(file).profiles.size).toBe(PROFILES + 1);
      version = found;
    }
    console.log(`config-write-crash: ${TRIALS} kills (seed ${SEED}); ${caughtMidWrite} after the rename but before the writer reported it`);
    // At most the temp file of the last killed writer is left; the next write removes it.
    expect(fs.readdirSync(path.dirname(file)).filter((name) => name !== 'config.json').length).toBeLessThanOrEqual(1);
    await killedWriter(file, version);
    const leftovers = fs.readdirSync(path.dirname(file)).filter((name) => name !== 'config.json');
    expect(leftovers.length).toBeLessThanOrEqual(1); // only the temp file of the writer just killed, if any
  });
});
