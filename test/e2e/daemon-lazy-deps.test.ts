/**
 * An idle daemon does not load the provider-side dependencies: got (HTTP), jose (ID tokens) and open (the
 * browser) come in with the first refresh, sign-in or logout. Checked on the real daemon with the module
 * load hook the benchmark uses (scripts/bench/trace-imports.mjs, written at a graceful exit), after a
 * restart that restores the session from the keychain.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerHarness } from '../support/broker.js';
import { ROOT } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { client, startRefreshBroker } from '../support/refresh-e2e.js';
import { signInHeadless } from '../support/signed-in.js';

const TRACE = path.join(ROOT, 'scripts/bench/trace-imports.mjs');
const LAZY = ['got', 'jose', 'open'];

let idp: TestIdp;
let harness: BrokerHarness;
let traceFile: string;
beforeAll(async () => {
  traceFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tb-lazy-')), 'modules.txt');
  idp = await startTestIdp({ accessTokenTtl: 600 });
  harness = await startRefreshBroker(idp, {}, { env: { NODE_OPTIONS: `--import ${TRACE}`, TRACE_IMPORTS_OUT: traceFile } });
  const app = await client(harness, { timeoutMs: 60_000 });
  await signInHeadless(harness, app);
  await app.close();
}, 90_000);
afterAll(async () => {
  await harness?.stop();
  await idp?.close();
  fs.rmSync(path.dirname(traceFile), { recursive: true, force: true });
});

/** Which of LAZY the daemon that just exited had loaded. */
function lazyLoaded(): string[] {
  const modules = fs.readFileSync(traceFile, 'utf8').split('\n');
  return LAZY.filter((name) => modules.some((m) => m.includes(`/node_modules/${name}/`)));
}

describe('the daemon loads got, jose and open only when a session needs them', () => {
  it('restored from the keychain and handing out the cached token: none of them', async () => {
    await harness.restart(); // the sign-in's daemon exits (it had loaded got and jose) and a new one restores
    const app = await client(harness);
    const token = await app.getToken();
    expect(token.accessToken).not.toBe('');
    await app.close();
    await harness.restart(); // a graceful exit writes the trace
    expect(lazyLoaded()).toEqual([]);
  }, 60_000);

  it('the first refresh after a restart loads got and jose, and brings a new token', async () => {
    const app = await client(harness);
    const before = await app.getToken();
    const after = await app.getToken({ rejected: before.accessToken });
    expect(after.accessToken).not.toBe(before.accessToken);
    await app.close();
    await harness.restart();
    expect(lazyLoaded()).toEqual(['got', 'jose']);
  }, 60_000);
});
