/**
 * The watch of the config file (daemon/config-watch.ts), on the real file system: a burst of writes is one
 * reload, a file replaced by a rename counts, other files in the directory do not, and a directory that does
 * not exist yet (first run) is picked up when it appears.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { watchConfig, type ConfigWatch } from '../../daemon/config-watch.js';
import { tempDir } from '../support/temp-dir.js';

const log = pino({ level: 'silent' });
const DEBOUNCE_MS = 200;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let watch: ConfigWatch | undefined;
afterEach(() => watch?.stop());

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

function start(file: string): { calls: () => number } {
  let calls = 0;
  watch = watchConfig({ file, log, debounceMs: DEBOUNCE_MS, onChange: () => calls++ });
  return { calls: () => calls };
}

describe('watchConfig', () => {
  it('a burst of writes is one change', async () => {
    const file = path.join(tempDir(), 'config.json');
    fs.writeFileSync(file, '{}');
    const w = start(file);
    // Ten writes 20 ms apart (an editor saving in steps): one reload, two at most on a machine so loaded
    // that a gap outlasts the debounce time; without the debounce, about ten.
    for (let i = 0; i < 10; i++) {
      fs.writeFileSync(file, JSON.stringify({ i }));
      await sleep(20);
    }
    await until(() => w.calls() >= 1);
    await sleep(DEBOUNCE_MS * 2);
    expect(w.calls()).toBeLessThanOrEqual(2);
  });

  it('a file replaced by a rename (atomic write) counts; another file in the directory does not', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, '{}');
    const w = start(file);
    fs.writeFileSync(path.join(dir, 'other.json'), '{}');
    await sleep(DEBOUNCE_MS * 3);
    expect(w.calls()).toBe(0);
    fs.writeFileSync(path.join(dir, '.config.json.tmp'), '{"profiles":{}}');
    fs.renameSync(path.join(dir, '.config.json.tmp'), file);
    await until(() => w.calls() === 1);
  });

  it('first run: the config directory does not exist yet; its creation with the file is noticed', async () => {
    const parent = tempDir();
    const file = path.join(parent, 'tokenbroker', 'config.json');
    const w = start(file);
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, '{}');
    await until(() => w.calls() >= 1);
    const after = w.calls();
    fs.writeFileSync(file, '{"profiles":{}}');
    await until(() => w.calls() === after + 1);
  });

  it('stop() ends it: later writes call nothing', async () => {
    const file = path.join(tempDir(), 'config.json');
    fs.writeFileSync(file, '{}');
    const w = start(file);
    fs.writeFileSync(file, '{"a":1}');
    watch!.stop();
    await sleep(DEBOUNCE_MS * 3);
    expect(w.calls()).toBe(0);
  });
});
