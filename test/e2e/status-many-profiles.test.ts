/**
 * `status` with a thousand profiles. One answer with every profile does not fit the protocol's 64 KiB frame
 * (≈185 profiles did; more answered INTERNAL), so the daemon answers in pages: at most STATUS_PAGE_BYTES of
 * profile JSON each, `nextOffset` where the next one starts, `totalProfiles`; `profile` asks for one. A client
 * that knows nothing of pages (`status {}`) gets the first page, with the marker. The client library and the
 * CLI follow the pages.
 *
 * The real daemon with a real config file of 1000 profiles, long names and issuers (the worst case for size).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient, type StatusResult } from '../../client/index.js';
import { MAX_MESSAGE_BYTES, STATUS_PAGE_BYTES } from '../../proto/index.js';
import { rawConnect } from '../support/raw-client.js';
import { runCli, startDaemon, type DaemonProcess } from '../support/daemon.js';

const COUNT = 1000;
/** 64-character names (the longest allowed), in config order. */
const names = Array.from({ length: COUNT }, (_, i) => `profile-${String(i).padStart(4, '0')}-`.padEnd(64, 'x'));
const config = {
  defaultProfile: names[0],
  profiles: Object.fromEntries(
    names.map((name, i) => [
      name,
      { issuer: `https://login-${i}.example.com/tenants/${'t'.repeat(60)}`, clientId: `client-${i}`, redirectUri: 'com.example.broker:/callback' },
    ]),
  ),
};

let daemon: DaemonProcess;
let client: BrokerClient;
beforeAll(async () => {
  daemon = await startDaemon({ config, logLevel: 'info', waitForRestore: false });
  client = await connect({ socketPath: daemon.socketPath, timeoutMs: 30_000 });
}, 60_000);
afterAll(async () => {
  await client?.close();
  await daemon?.stop('SIGKILL');
});

describe(`status with ${COUNT} profiles`, () => {
  it('a plain status {} (an old client) answers the first page, within the frame, with nextOffset and totalProfiles', async () => {
    const raw = await rawConnect(daemon.socketPath);
    raw.request(7, 'status', {});
    const frame = await raw.next(10_000);
    raw.close();
    const bytes = Buffer.byteLength(JSON.stringify(frame));
    expect(frame.type).toBe('response');
    expect(frame.data['error']).toBeUndefined();
    const result = frame.data['result'] as { profiles: Array<{ name: string }>; totalProfiles: number; nextOffset: number };
    expect(bytes).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(result.totalProfiles).toBe(COUNT);
    expect(result.profiles.length).toBeGreaterThan(50);
    expect(result.profiles.length).toBeLessThan(COUNT);
    expect(result.nextOffset).toBe(result.profiles.length);
    expect(result.profiles.map((p) => p.name)).toEqual(names.slice(0, result.profiles.length));
    console.log(
      `[status] ${COUNT} profiles: first page ${result.profiles.length} profiles, ${bytes} bytes (frame limit ${MAX_MESSAGE_BYTES}, page budget ${STATUS_PAGE_BYTES} of profile JSON)`,
    );
  });

  it('pages: every page fits the frame, they cover every profile once, in config order; limit and offset are honoured', async () => {
    const seen: string[] = [];
    let offset: number | undefined = 0;
    let pages = 0;
    while (offset !== undefined) {
      const page: StatusResult = await client.request('status', { offset });
      expect(Buffer.byteLength(JSON.stringify({ type: 'response', data: { id: 1, result: page } }))).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      expect(page.totalProfiles).toBe(COUNT);
      seen.push(...page.profiles.map((p) => p.name));
      expect(page.nextOffset === undefined || page.nextOffset === seen.length).toBe(true);
      offset = page.nextOffset;
      pages++;
    }
    expect(seen).toEqual(names);
    expect(pages).toBeGreaterThan(1);

    const last = await client.request('status', { offset: 990, limit: 50 });
    expect(last.profiles.map((p) => p.name)).toEqual(names.slice(990));
    expect(last.nextOffset).toBeUndefined();
    const small = await client.request('status', { offset: 10, limit: 5 });
    expect(small.profiles.map((p) => p.name)).toEqual(names.slice(10, 15));
    expect(small.nextOffset).toBe(15);
    const beyond = await client.request('status', { offset: 5000 });
    expect(beyond.profiles).toEqual([]);
    expect(beyond.nextOffset).toBeUndefined();
    await expect(client.request('status', { limit: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST', field: 'params.limit' });
  });

  it('the client library returns all of them; status { profile } answers one; an unknown profile is PROFILE_NOT_FOUND', async () => {
    const all = await client.status();
    expect(all.profiles.map((p) => p.name)).toEqual(names);
    expect(all.nextOffset).toBeUndefined();
    expect(all.totalProfiles).toBe(COUNT);
    expect(all.pid).toBe(daemon.child.pid);

    const one = await client.status({ profile: names[777]! });
    expect(one.profiles).toHaveLength(1);
    expect(one.profiles[0]).toMatchObject({ name: names[777], issuer: config.profiles[names[777]!]!.issuer });
    expect(one.totalProfiles).toBe(COUNT);
    await expect(client.status({ profile: 'nope' })).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND', field: 'params.profile' });
  });

  it('tokenbroker status (--json, text, --profile) lists every profile', async () => {
    // Exit 5: every profile here is signed out, so each needs a sign-in (as `gh auth status` reports it).
    const json = await runCli(['status', '--json', '--socket', daemon.socketPath], { timeoutMs: 30_000 });
    expect(json.code).toBe(5);
    const parsed = JSON.parse(json.stdout) as { profiles: Array<{ name: string }> };
    expect(parsed.profiles.map((p) => p.name)).toEqual(names);

    const text = await runCli(['status', '--socket', daemon.socketPath], { timeoutMs: 30_000 });
    expect(text.code).toBe(5);
    for (const name of [names[0]!, names[500]!, names[999]!]) expect(text.stdout).toContain(name);
    expect(text.stdout.split('\n').filter((line) => line.startsWith('profile-')).length).toBe(COUNT);

    const one = await runCli(['status', '--profile', names[999]!, '--json', '--socket', daemon.socketPath]);
    expect(one.code).toBe(0); // the one profile with a session
    expect((JSON.parse(one.stdout) as { profiles: Array<{ name: string }> }).profiles.map((p) => p.name)).toEqual([names[999]]);
  });
});
