/**
 * Start-up with many profiles and a slow or hung keychain. The daemon listens first and restores the
 * profiles in the background, a few at a time: `status` answers at once (profiles not read yet are in state
 * `restoring`), and `token.get` waits for its own profile's restore only (and starts it at once). Before,
 * every profile was read before the socket listened: a hung keychain delayed every app by up to 15 s per
 * profile.
 *
 * - 1000 profiles on the working keychain (the test's gnome-keyring), one of them — the last in config
 *   order — with a stored session: `status` answers while most are `restoring`; that profile's token is
 *   served long before the others are restored.
 * - 1000 profiles with the Secret Service frozen (gnome-keyring on a private bus, SIGSTOP): `status` answers
 *   at once, every profile `restoring`; `token.get` answers KEYCHAIN_UNAVAILABLE after its own waitMs; after
 *   SIGCONT the profiles come back without a restart.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import keytar from 'keytar';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerError, connect, type BrokerClient } from '../../client/index.js';
import { startDaemon, tempDir, waitFor, type DaemonProcess } from '../support/daemon.js';
import { Keyring, PrivateBus } from '../support/private-keyring.js';

const COUNT = 1000;
const names = Array.from({ length: COUNT }, (_, i) => `p${String(i).padStart(4, '0')}`);
const config = {
  profiles: Object.fromEntries(
    names.map((name) => [name, { issuer: 'https://login.example.com', clientId: 'native-client', redirectUri: 'com.example.broker:/callback' }]),
  ),
};
const onPath = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const canFreeze = process.platform === 'linux' && ['dbus-daemon', 'gnome-keyring-daemon', 'gdbus'].every(onPath);
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Connects as soon as the socket exists; returns the client and the ms from `since` to the first status answer. */
async function firstStatus(daemon: DaemonProcess, since: number): Promise<{ client: BrokerClient; ms: number; requestMs: number; restoring: number }> {
  const client = await connect({ socketPath: daemon.socketPath, timeoutMs: 30_000 });
  const sent = performance.now();
  const status = await client.status();
  const requestMs = performance.now() - sent;
  return { client, ms: Date.now() - since, requestMs, restoring: status.profiles.filter((p) => p.state === 'restoring').length };
}

describe('start-up: listen first, restore in the background', () => {
  it(`${COUNT} profiles: status answers while they restore; the last profile's token is served without waiting for the others`, async () => {
    const service = `tokenbroker-test-${randomBytes(6).toString('hex')}`;
    const last = names[COUNT - 1]!;
    const accessToken = `at-${randomBytes(16).toString('hex')}`;
    const now = Date.now();
    await keytar.setPassword(
      service,
      last,
      JSON.stringify({
        v: 1,
        accessToken,
        refreshToken: 'rt-x',
        expiresAt: now + 3_600_000,
        scopes: ['openid'],
        tokenType: 'Bearer',
        savedAt: now,
        issuer: 'https://login.example.com',
        clientId: 'native-client',
      }),
    );
    cleanups.push(() => keytar.deletePassword(service, last));

    const spawned = Date.now();
    const daemon = await startDaemon({ config, env: { TOKENBROKER_KEYCHAIN_SERVICE: service }, logLevel: 'info', waitForRestore: false });
    cleanups.push(() => daemon.stop('SIGKILL'));
    const first = await firstStatus(daemon, spawned);
    cleanups.push(() => first.client.close());
    expect(first.restoring).toBeGreaterThan(COUNT / 2);
    expect(first.requestMs).toBeLessThan(1_000); // 200 ms is the goal; generous for a loaded 2-core machine

    const asked = performance.now();
    const token = await first.client.getToken({ profile: last });
    const tokenMs = performance.now() - asked;
    const stillRestoring = (await first.client.status()).profiles.filter((p) => p.state === 'restoring').length;
    expect(token.accessToken).toBe(accessToken);
    expect(stillRestoring).toBeGreaterThan(COUNT / 2); // it did not wait for the others

    await waitFor(
      () => daemon.output().includes('"msg":"profiles restored"'),
      300_000,
      () => 'restore did not finish',
    );
    const restored = daemon.logs().find((l) => l['msg'] === 'profiles restored')!;
    const states = (await first.client.status()).profiles;
    expect(states.filter((p) => p.state === 'logged-out')).toHaveLength(COUNT - 1);
    expect(states.find((p) => p.name === last)).toMatchObject({ state: 'active' });
    console.log(
      `[startup] ${COUNT} profiles, working keychain: spawn → first status answer ${first.ms} ms (the request itself ${first.requestMs.toFixed(1)} ms, ${first.restoring} profiles restoring); ` +
        `token.get for the last profile ${tokenMs.toFixed(0)} ms with ${stillRestoring} still restoring; all restored after ${String(restored['ms'])} ms`,
    );
  }, 360_000);

  it.skipIf(!canFreeze)(
    `${COUNT} profiles, Secret Service frozen (SIGSTOP): status answers at once; token.get fails after its own waitMs; after SIGCONT the same daemon restores`,
    async () => {
      const root = tempDir('tb-freeze-');
      cleanups.push(() => fs.promises.rm(root, { recursive: true, force: true }));
      const bus = await PrivateBus.start(root);
      cleanups.push(() => bus.stop());
      const files = { data: path.join(root, 'keyring-data'), run: path.join(root, 'keyring-run') };
      fs.mkdirSync(files.data, { mode: 0o700 });
      fs.mkdirSync(files.run, { mode: 0o700 });
      const keyring = await Keyring.start(bus, files);
      cleanups.push(() => keyring.stop());
      process.kill(keyring.pid, 'SIGSTOP');
      cleanups.push(() => Promise.resolve().then(() => process.kill(keyring.pid, 'SIGCONT')));

      const home = path.join(root, 'home');
      fs.mkdirSync(home, { mode: 0o700 });
      const spawned = Date.now();
      const daemon = await startDaemon({
        config,
        env: bus.env({ HOME: home, TOKENBROKER_KEYCHAIN_SERVICE: 'tokenbroker-freeze' }),
        logLevel: 'info',
        waitForRestore: false,
      });
      cleanups.push(() => daemon.stop('SIGKILL'));
      const listened = Date.now();
      const first = await firstStatus(daemon, spawned);
      cleanups.push(() => first.client.close());
      expect(first.restoring).toBe(COUNT);
      expect(first.requestMs).toBeLessThan(1_000);

      const asked = Date.now();
      const error = await first.client.request('token.get', { profile: names[500]!, waitMs: 2_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const waited = Date.now() - asked;
      expect(error).toBeInstanceOf(BrokerError);
      expect((error as BrokerError).code).toBe('KEYCHAIN_UNAVAILABLE');
      expect(waited).toBeGreaterThanOrEqual(1_900);
      expect(waited).toBeLessThan(10_000);
      expect((await first.client.status()).profiles.filter((p) => p.state === 'restoring')).toHaveLength(COUNT);

      // Thawed: the same daemon finishes reading that profile and answers (nobody is signed in).
      process.kill(keyring.pid, 'SIGCONT');
      const deadline = Date.now() + 60_000;
      let code = 'KEYCHAIN_UNAVAILABLE';
      while (code === 'KEYCHAIN_UNAVAILABLE' && Date.now() < deadline) {
        code = await first.client.request('token.get', { profile: names[500]!, waitMs: 20_000 }).then(
          () => 'ok',
          (e: unknown) => (e instanceof BrokerError ? e.code : String(e)),
        );
      }
      expect(code).toBe('LOGIN_REQUIRED');
      expect((await first.client.status({ profile: names[500]! })).profiles[0]).toMatchObject({ state: 'logged-out' });
      expect((await first.client.status()).pid).toBe(daemon.child.pid);
      console.log(
        `[startup] ${COUNT} profiles, Secret Service frozen: spawn → listening ${listened - spawned} ms, spawn → first status answer ${first.ms} ms (the request itself ${first.requestMs.toFixed(1)} ms, ${first.restoring} restoring); ` +
          `token.get { waitMs: 2000 } → KEYCHAIN_UNAVAILABLE after ${waited} ms; after SIGCONT the profile read logged out in the same daemon`,
      );
    },
    180_000,
  );
});
