/**
 * The keychain probe (a write, read-back and delete that tells "no entry" from "locked keyring") runs
 * whenever an entry is missing — e.g. for every logout of a signed-out profile. Probes that run at the same
 * time must not disturb each other: with one shared probe account they overwrote and deleted each other's
 * entry, and a working keychain was reported as KEYCHAIN_UNAVAILABLE (15 of 60 concurrent logouts).
 *
 * The real daemon, the real Secret Service (gnome-keyring via scripts/with-keyring.mjs), 60 profiles.
 */
import keytar from 'keytar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerError, connect } from '../../client/index.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

const PROFILES = 60;
let idp: TestIdp;
let harness: BrokerHarness | undefined;

beforeAll(async () => {
  idp = await startTestIdp();
});
afterAll(async () => {
  await harness?.stop();
  await idp?.close();
});

describe('concurrent keychain probes', () => {
  it(`${PROFILES} concurrent logouts of signed-out profiles: every one succeeds, none answers KEYCHAIN_UNAVAILABLE, no probe entry is left`, async () => {
    const names = Array.from({ length: PROFILES }, (_, i) => `p${String(i).padStart(2, '0')}`);
    harness = await startBroker({ profiles: Object.fromEntries(names.map((name) => [name, idpProfile(idp)])) }, { logLevel: 'info' });
    const client = await connect({ socketPath: harness.daemon.socketPath, timeoutMs: 60_000 });
    // One discovery fetch first, so the logouts below start together at the keychain, not at the provider.
    await client.logout({ profile: names[0]!, openBrowser: false });

    for (let round = 1; round <= 2; round++) {
      const outcomes = await Promise.all(
        names.map((profile) =>
          client.logout({ profile, openBrowser: false }).then(
            (result) => ({ ok: true as const, result }),
            (error: unknown) => ({ ok: false as const, code: error instanceof BrokerError ? error.code : String(error) }),
          ),
        ),
      );
      const failed = outcomes.filter((o) => !o.ok);
      console.log(
        `[probe] round ${round}: ${PROFILES} concurrent logouts of signed-out profiles, ${failed.length} failed${failed.length ? ` (${[...new Set(failed.map((f) => ('code' in f ? f.code : '')))].join(', ')})` : ''}`,
      );
      expect(failed).toEqual([]);
      for (const outcome of outcomes) expect(outcome).toMatchObject({ ok: true, result: { keychainCleared: false, revoked: false } });
    }
    await client.close();
    // Every probe removed its own entry.
    expect(await keytar.findCredentials(harness.keychainService)).toEqual([]);
  }, 120_000);
});
