/**
 * Live config, end to end: the real daemon, two real IdPs (oidc-provider), gnome-keyring, signed in through the
 * IdP's login form, and apps that stay connected (no reconnect) through every reload. The config is rewritten as
 * `tokenbroker profile …` does (temporary file + rename) and taken in by SIGHUP, by `tokenbroker reload`, or by
 * the daemon's own watch of the file. Added profiles appear; removed ones are signed out in memory and keep their
 * keychain entry; a changed profile keeps its session when issuer and client id stay (its new settings apply),
 * and starts over when they change; a broken file keeps the running config and shows in `status`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient, type BrokerEvent } from '../../client/index.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { runCli } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { profileStatus, storedEntry, tokenEndpointRequests, waitFor, waitForEvent, waitForLog } from '../support/refresh-e2e.js';
import { signInHeadless } from '../support/signed-in.js';

let idpA: TestIdp;
let idpB: TestIdp;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  idpA = await startTestIdp({ accessTokenTtl: 600 });
  idpB = await startTestIdp({ accessTokenTtl: 600 });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
afterAll(async () => {
  await idpA?.close();
  await idpB?.close();
});

type Trigger = 'SIGHUP' | 'tokenbroker reload' | 'file change';

interface World {
  readonly harness: BrokerHarness;
  /** An app that stays connected throughout (reconnect off: a dropped connection would fail its calls). */
  readonly app: BrokerClient;
  /** Everything a second, subscribed app received. */
  readonly events: BrokerEvent[];
  /** Rewrites the config (temp file + rename) and has the daemon take it in by `trigger`; resolves with the daemon's log line. */
  reconfigure(config: unknown, trigger: Trigger): Promise<Record<string, unknown>>;
}

/** A daemon with profile "main" at IdP A, signed in; the file watch is on only for the "file change" trigger. */
async function world(watch: boolean): Promise<World> {
  const config = { profiles: { main: idpProfile(idpA) } };
  const harness = await startBroker(config, { env: watch ? {} : { TOKENBROKER_CONFIG_WATCH: '0' } });
  cleanups.push(() => harness.stop());
  const app = await connect({ socketPath: harness.daemon.socketPath, reconnect: false, timeoutMs: 30_000 });
  cleanups.push(() => app.close());
  const listener = await connect({ socketPath: harness.daemon.socketPath, reconnect: false, timeoutMs: 30_000 });
  cleanups.push(() => listener.close());
  await signInHeadless(harness, app);
  const events: BrokerEvent[] = [];
  await listener.subscribe((event) => events.push(event));
  let reloads = 0;
  let failures = 0;
  return {
    harness,
    app,
    events,
    async reconfigure(next, trigger) {
      const file = harness.daemon.configPath!;
      const temp = path.join(path.dirname(file), `.config.json.${process.pid}.tmp`);
      fs.writeFileSync(temp, typeof next === 'string' ? next : JSON.stringify(next, null, 2), { mode: 0o600 });
      fs.renameSync(temp, file);
      if (trigger === 'SIGHUP') harness.daemon.child.kill('SIGHUP');
      if (trigger === 'tokenbroker reload') await runCli(['reload', '--json'], { env: harness.env });
      const logged = trigger === 'tokenbroker reload' ? 'request' : trigger;
      const outcome = (line: Record<string, unknown>) => line['trigger'] === logged;
      const [ok, failed] = [reloads, failures];
      await waitFor(
        () =>
          harness.daemon.logs().filter((l) => outcome(l) && l['msg'] === 'config reloaded').length > ok ||
          harness.daemon.logs().filter((l) => outcome(l) && String(l['msg']).startsWith('config reload failed')).length > failed,
        15_000,
        () => `no reload by ${trigger}:\n${harness.daemon.output().slice(-3000)}`,
      );
      const lines = harness.daemon.logs().filter(outcome);
      reloads = lines.filter((l) => l['msg'] === 'config reloaded').length;
      failures = lines.filter((l) => String(l['msg']).startsWith('config reload failed')).length;
      return lines.at(-1)!;
    },
  };
}

const TRIGGERS: ReadonlyArray<readonly [Trigger, boolean]> = [
  ['SIGHUP', false],
  ['tokenbroker reload', false],
  ['file change', true],
];

describe.each(TRIGGERS)('config reload by %s', (trigger, watch) => {
  it('adds a profile, removes one (signed out here, keychain entry kept), and a re-added one comes back signed in', async () => {
    const w = await world(watch);
    const token = (await w.app.getToken()).accessToken;
    const codes = idpA.counts.authorizationCode;

    const added = await w.reconfigure({ profiles: { main: idpProfile(idpA), second: idpProfile(idpB) } }, trigger);
    expect(added).toMatchObject({ added: ['second'], removed: [], changed: [], restarted: [] });
    expect((await waitForEvent(w.events, 'profileAdded')).data).toEqual({ profile: 'second' });
    await waitFor(async () => (await profileStatus(w.app, 'second')).state === 'logged-out', 10_000); // its keychain read done
    const status = await w.app.status();
    expect(status.profiles.map((p) => [p.name, p.state])).toEqual([
      ['main', 'active'],
      ['second', 'logged-out'],
    ]);
    expect(status.configError).toBeUndefined();
    expect((await w.app.getToken({ profile: 'main' })).accessToken).toBe(token);
    await expect(w.app.getToken({ profile: 'second' })).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    await signInHeadless(w.harness, w.app, 'second');
    expect((await w.app.getToken({ profile: 'second' })).accessToken).not.toBe(token);

    const removed = await w.reconfigure({ profiles: { second: idpProfile(idpB) } }, trigger);
    expect(removed).toMatchObject({ added: [], removed: ['main'], defaultProfile: 'second' });
    expect((await waitForEvent(w.events, 'profileRemoved')).data).toEqual({ profile: 'main' });
    await expect(w.app.getToken({ profile: 'main' })).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND' });
    expect((await storedEntry(w.harness, 'main'))?.['accessToken']).toBe(token); // in memory only
    expect(await profileStatus(w.app, 'second')).toMatchObject({ state: 'active', isDefault: true });

    await w.reconfigure({ profiles: { main: idpProfile(idpA), second: idpProfile(idpB) } }, trigger);
    await waitFor(async () => (await profileStatus(w.app, 'main')).state === 'active', 10_000);
    expect((await w.app.getToken({ profile: 'main' })).accessToken).toBe(token);
    expect(idpA.counts.authorizationCode).toBe(codes); // no new sign-in
    // Both apps kept their connections (neither reconnects): the listener heard every reload.
    expect(w.events.filter((e) => e.event.startsWith('profile')).map((e) => [e.event, e.data.profile])).toEqual([
      ['profileAdded', 'second'],
      ['profileRemoved', 'main'],
      ['profileAdded', 'main'],
    ]);
  });

  it('a changed profile with the same issuer keeps its session and takes the new settings; another issuer starts over', async () => {
    const w = await world(watch);
    const token = (await w.app.getToken()).accessToken;
    const codes = idpA.counts.authorizationCode;
    const refreshes = idpA.counts.refreshToken;

    // A sign-in under way (e.g. switching accounts) lives only in the daemon's memory: it survives a kept session.
    const pending = await w.app.request('login', { wait: false, openBrowser: false });
    const before = await profileStatus(w.app);
    expect(before.loginStartedAt).toBe(pending.startedAt);
    // The default lead: 60 s plus jitter (300 s by default, capped at a tenth of the 600 s lifetime).
    expect(before.expiresAt! - before.nextRefreshAt!).toBeLessThanOrEqual(125_000);
    // A new refresh lead: the running session's timer is re-armed with it.
    const changed = await w.reconfigure({ profiles: { main: idpProfile(idpA, { refresh: { leadSeconds: 150, jitterSeconds: 0 } }) } }, trigger);
    expect(changed).toMatchObject({ added: [], removed: [], changed: ['main'], restarted: [] });
    expect((await waitForEvent(w.events, 'profileChanged')).data).toEqual({ profile: 'main', sessionKept: true });
    const after = await profileStatus(w.app);
    expect(after).toMatchObject({ state: 'active', subject: 'alice', expiresAt: before.expiresAt, loginStartedAt: pending.startedAt });
    expect(after.expiresAt! - after.nextRefreshAt!).toBe(150_000);
    expect((await w.app.getToken()).accessToken).toBe(token); // served from memory, no sign-in
    // The kept session still refreshes with its refresh token (an API rejected the token).
    const fresh = await w.app.getToken({ rejected: token });
    expect(fresh.accessToken).not.toBe(token);
    expect(idpA.counts.refreshToken).toBe(refreshes + 1);
    expect(idpA.counts.authorizationCode).toBe(codes);
    expect(await idpA.introspect(fresh.accessToken)).toMatchObject({ active: true, sub: 'alice' });

    expect(await w.app.cancelLogin()).toEqual({ profile: 'main', cancelled: true });

    const bRequests = tokenEndpointRequests(idpB).length;
    const restarted = await w.reconfigure({ profiles: { main: idpProfile(idpB) } }, trigger);
    expect(restarted).toMatchObject({ changed: [], restarted: ['main'] });
    expect((await waitForEvent(w.events, 'profileChanged', 2)).data).toEqual({ profile: 'main', sessionKept: false });
    await waitFor(async () => (await profileStatus(w.app)).state === 'login-required', 10_000);
    expect(await profileStatus(w.app)).toMatchObject({ issuer: idpB.issuer, reason: 'issuer_changed' });
    await expect(w.app.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    expect(tokenEndpointRequests(idpB)).toHaveLength(bRequests); // A's tokens never went to B
    await signInHeadless(w.harness, w.app);
    expect(await idpB.introspect((await w.app.getToken()).accessToken)).toMatchObject({ active: true });
  });

  it('a broken file keeps the running config, shows in status, and a fixed file clears it', async () => {
    const w = await world(watch);
    const token = (await w.app.getToken()).accessToken;
    const good = { profiles: { main: idpProfile(idpA) } };

    const broken = await w.reconfigure({ profiles: { main: { ...idpProfile(idpA), issuer: 'http://example.com' } } }, trigger);
    expect(broken['msg']).toMatch(/config reload failed/);
    let status = await w.app.status();
    expect(status.configError).toMatchObject({ path: w.harness.daemon.configPath, field: 'profiles.main.issuer' });
    expect(status.configError!.message).toMatch(/profiles\.main\.issuer/);
    expect(status.profiles).toEqual([expect.objectContaining({ name: 'main', state: 'active', issuer: idpA.issuer })]);
    expect((await w.app.getToken()).accessToken).toBe(token);
    const human = await runCli(['status'], { env: w.harness.env });
    expect(human.stdout).toMatch(/CONFIG NOT RELOADED .*profiles\.main\.issuer/);

    await w.reconfigure('{ "profiles": ', trigger);
    status = await w.app.status();
    expect(status.configError!.message).toMatch(/not valid JSON/);
    expect(status.profiles.map((p) => p.state)).toEqual(['active']);

    await w.reconfigure(good, trigger);
    status = await w.app.status();
    expect(status.configError).toBeUndefined();
    expect((await w.app.getToken()).accessToken).toBe(token);
    expect(w.events.filter((e) => e.event.startsWith('profile'))).toEqual([]); // nothing changed, nothing announced
  });
});

describe('tokenbroker reload', () => {
  it('answers what changed (--json), and a broken file with exit code 6 and the field', async () => {
    const w = await world(false);
    const file = w.harness.daemon.configPath!;
    fs.writeFileSync(file, JSON.stringify({ profiles: { main: idpProfile(idpA), second: idpProfile(idpB) } }));
    const ok = await runCli(['reload', '--json'], { env: w.harness.env });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ configPath: file, added: ['second'], removed: [], changed: [], restarted: [] });
    const human = await runCli(['reload'], { env: w.harness.env });
    expect(human.stdout).toMatch(/no changes/);

    fs.writeFileSync(file, JSON.stringify({ profiles: { main: { ...idpProfile(idpA), scopes: 'openid' } } }));
    const bad = await runCli(['reload'], { env: w.harness.env });
    expect(bad.code).toBe(6);
    expect(bad.stderr).toMatch(/profiles\.main\.scopes.*keeps running with the config it had.*\[CONFIG_INVALID\]/s);
    const json = await runCli(['reload', '--json'], { env: w.harness.env });
    expect(json.code).toBe(6);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'CONFIG_INVALID', field: 'profiles.main.scopes' } });
    expect((await w.app.status()).profiles.map((p) => p.name)).toEqual(['main', 'second']);
    await waitForLog(w.harness, (l) => l['msg'] === 'config reload failed: the running config stays' && l['field'] === 'profiles.main.scopes');
  });
});
