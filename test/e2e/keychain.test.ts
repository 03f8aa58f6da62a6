/**
 * The token store, against the real Secret Service. Run through the wrapper, as the suite does:
 *   node scripts/with-keyring.mjs vitest run test/e2e/keychain.test.ts
 * (without a Secret Service these tests fail with KEYCHAIN_UNAVAILABLE, which is the point).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import keytar from 'keytar';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerError } from '../../proto/index.js';
import { Secret } from '../../daemon/secret.js';
import {
  KEYCHAIN_SERVICE,
  KeychainStore,
  PROBE_ACCOUNT,
  type CorruptEntry,
  type KeytarLike,
  type StoredTokens,
  type TokenStore,
} from '../../daemon/store/keychain.js';
import { MemoryStore } from '../support/memory-store.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ACCESS = `at-${randomBytes(12).toString('hex')}`;
const REFRESH = `rt-${randomBytes(12).toString('hex')}`;
const ID_TOKEN = `id-${randomBytes(12).toString('hex')}`;

function sampleTokens(overrides: Partial<StoredTokens> = {}): StoredTokens {
  return {
    accessToken: new Secret(ACCESS),
    refreshToken: new Secret(REFRESH),
    idToken: new Secret(ID_TOKEN),
    expiresAt: 1_900_000_000_000,
    scopes: ['openid', 'offline_access', 'email'],
    tokenType: 'Bearer',
    subject: 'user-123',
    email: 'ada@example.com',
    savedAt: 1_800_000_000_000,
    ...overrides,
  };
}

/** Services created by a test, removed afterwards even when it fails. */
const usedServices = new Set<string>();
function testService(): string {
  const service = `tokenbroker-test-${randomBytes(6).toString('hex')}`;
  usedServices.add(service);
  return service;
}
afterEach(async () => {
  const services = [...usedServices];
  usedServices.clear();
  for (const service of services) {
    // Best effort: without a keychain there is nothing to clean up (and the test has failed already).
    const entries = await keytar.findCredentials(service).catch(() => []);
    for (const { account } of entries) await keytar.deletePassword(service, account);
  }
});

const stores: Array<[string, (onCorrupt?: (e: CorruptEntry) => void) => TokenStore]> = [
  ['KeychainStore', (onCorrupt) => new KeychainStore({ service: testService(), ...(onCorrupt ? { onCorrupt } : {}) })],
  ['MemoryStore', (onCorrupt) => new MemoryStore(onCorrupt ? { onCorrupt } : {})],
];

describe.each(stores)('%s round trip', (_name, makeStore) => {
  it('saves, loads, lists and deletes, with every token wrapped in Secret', async () => {
    const store = makeStore();
    expect(await store.load('work')).toBeUndefined();
    await store.save('work', sampleTokens());
    const { refreshToken: _refreshToken, idToken: _idToken, subject: _subject, email: _email, ...minimal } = sampleTokens();
    await store.save('home', minimal);

    const loaded = await store.load('work');
    expect(loaded?.accessToken).toBeInstanceOf(Secret);
    expect(loaded?.refreshToken).toBeInstanceOf(Secret);
    expect(loaded?.idToken).toBeInstanceOf(Secret);
    expect(loaded?.accessToken.reveal()).toBe(ACCESS);
    expect(loaded?.refreshToken?.reveal()).toBe(REFRESH);
    expect(loaded?.idToken?.reveal()).toBe(ID_TOKEN);
    expect({ ...loaded, accessToken: undefined, refreshToken: undefined, idToken: undefined }).toEqual({
      accessToken: undefined,
      refreshToken: undefined,
      idToken: undefined,
      expiresAt: 1_900_000_000_000,
      scopes: ['openid', 'offline_access', 'email'],
      tokenType: 'Bearer',
      subject: 'user-123',
      email: 'ada@example.com',
      savedAt: 1_800_000_000_000,
    });
    expect(JSON.stringify(loaded)).not.toContain(ACCESS);
    expect(inspect(loaded)).not.toContain(REFRESH);

    const home = await store.load('home');
    expect(home?.refreshToken).toBeUndefined();
    expect(home && 'email' in home).toBe(false);

    expect(await store.list()).toEqual(['home', 'work']);
    expect(await store.delete('work')).toBe(true);
    expect(await store.delete('work')).toBe(false);
    expect(await store.load('work')).toBeUndefined();
    expect(await store.list()).toEqual(['home']);
  });

  it('overwrites an entry on save (a rotated refresh token replaces the old one)', async () => {
    const store = makeStore();
    await store.save('work', sampleTokens());
    await store.save('work', sampleTokens({ refreshToken: new Secret('rotated-refresh') }));
    expect((await store.load('work'))?.refreshToken?.reveal()).toBe('rotated-refresh');
    expect(await store.list()).toEqual(['work']);
  });

  it('rejects a profile name that could not be a profile', async () => {
    const store = makeStore();
    await expect(store.load('../etc')).rejects.toMatchObject({ code: 'BAD_REQUEST', field: 'profile' });
    await expect(store.save(PROBE_ACCOUNT, sampleTokens())).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('KeychainStore on the Secret Service', () => {
  it('uses the service name "tokenbroker" unless told otherwise', () => {
    expect(KEYCHAIN_SERVICE).toBe('tokenbroker');
    expect(new KeychainStore().service).toBe('tokenbroker');
  });

  it('keeps services apart', async () => {
    const a = new KeychainStore({ service: testService() });
    const b = new KeychainStore({ service: testService() });
    await a.save('work', sampleTokens());
    expect(await b.load('work')).toBeUndefined();
    expect(await b.list()).toEqual([]);
    expect(await b.delete('work')).toBe(false);
    expect((await a.load('work'))?.accessToken.reveal()).toBe(ACCESS);
  });

  it('stores the documented JSON layout under account = profile', async () => {
    const service = testService();
    await new KeychainStore({ service }).save('work', sampleTokens());
    const raw = JSON.parse((await keytar.getPassword(service, 'work')) ?? 'null') as Record<string, unknown>;
    expect(raw).toEqual({
      v: 1,
      accessToken: ACCESS,
      refreshToken: REFRESH,
      idToken: ID_TOKEN,
      expiresAt: 1_900_000_000_000,
      scopes: ['openid', 'offline_access', 'email'],
      tokenType: 'Bearer',
      subject: 'user-123',
      email: 'ada@example.com',
      savedAt: 1_800_000_000_000,
    });
  });

  it.each([
    ['half-written JSON', `{"v":1,"accessToken":"${ACCESS}","refre`, undefined, /not JSON/],
    [
      'a wrong field type',
      JSON.stringify({ v: 1, accessToken: ACCESS, refreshToken: REFRESH, expiresAt: 'soon', scopes: [], tokenType: 'Bearer', savedAt: 1 }),
      'expiresAt',
      /expiresAt/,
    ],
    [
      'a missing access token',
      JSON.stringify({ v: 1, refreshToken: REFRESH, expiresAt: 1, scopes: [], tokenType: 'Bearer', savedAt: 1 }),
      'accessToken',
      /accessToken/,
    ],
    ['a newer entry version', JSON.stringify({ v: 2, accessToken: ACCESS }), 'v', /newer tokenbroker/],
    ['not an object', JSON.stringify([ACCESS]), undefined, /not a JSON object/],
  ])('reports a corrupt entry (%s) and loads it as absent', async (_what, raw, field, reason) => {
    const service = testService();
    await keytar.setPassword(service, 'work', raw);
    const reports: CorruptEntry[] = [];
    const store = new KeychainStore({ service, onCorrupt: (entry) => reports.push(entry) });

    expect(await store.load('work')).toBeUndefined();
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ service, profile: 'work', reason: expect.stringMatching(reason) as unknown });
    expect(reports[0]?.field).toBe(field);
    expect(JSON.stringify(reports)).not.toContain(ACCESS);
    expect(JSON.stringify(reports)).not.toContain(REFRESH);
    // The entry is still listed, and the next save repairs it.
    expect(await store.list()).toEqual(['work']);
    await store.save('work', sampleTokens());
    expect((await store.load('work'))?.accessToken.reveal()).toBe(ACCESS);
  });

  it('probes the keychain and leaves nothing behind', async () => {
    const service = testService();
    const store = new KeychainStore({ service });
    await store.probe();
    expect(await keytar.findCredentials(service)).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  it('never lists the probe account as a profile', async () => {
    const service = testService();
    await keytar.setPassword(service, PROBE_ACCOUNT, 'left over');
    await keytar.setPassword(service, 'work', 'whatever');
    expect(await new KeychainStore({ service }).list()).toEqual(['work']);
  });
});

describe('KeychainStore failures (fake keytar)', () => {
  const base: KeytarLike = {
    getPassword: () => Promise.resolve(null),
    setPassword: async () => {},
    deletePassword: () => Promise.resolve(false),
    findCredentials: () => Promise.resolve([]),
  };

  it('treats a save that reads back as nothing as KEYCHAIN_UNAVAILABLE (wrong-password keyring)', async () => {
    const store = new KeychainStore({ keytar: base });
    const error = await store.save('work', sampleTokens()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE', message: expect.stringMatching(/does not return it.*different password/) as unknown });
  });

  it('keeps tokens out of error messages even when the keychain echoes them', async () => {
    const store = new KeychainStore({
      keytar: { ...base, setPassword: async (_s, _a, password) => Promise.reject(new Error(`cannot store ${password}`)) },
    });
    const error = (await store.save('work', sampleTokens()).catch((e: unknown) => e)) as BrokerError;
    expect(error.code).toBe('KEYCHAIN_UNAVAILABLE');
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(ACCESS);
    expect(error.message).not.toContain(REFRESH);
  });

  it('gives up on a keychain that does not answer', async () => {
    const store = new KeychainStore({ keytar: { ...base, getPassword: () => new Promise(() => {}) }, timeoutMs: 50 });
    await expect(store.load('work')).rejects.toMatchObject({
      code: 'KEYCHAIN_UNAVAILABLE',
      message: expect.stringMatching(/did not answer.*locked/) as unknown,
    });
  });
});

// ---- in a separate process, with no usable Secret Service --------------------------------------

interface ChildResult {
  readonly keytarLoadedOnImport: boolean;
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
}

const CHILD_SOURCE = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { KeychainStore } = await import(process.env.KEYCHAIN_MODULE);
const { Secret } = await import(process.env.SECRET_MODULE);
const keytarLoadedOnImport = Object.keys(require.cache).some((file) => file.includes('keytar'));
const store = new KeychainStore({ service: 'tokenbroker-test-child', timeoutMs: 10000 });
try {
  await store.save('work', { accessToken: new Secret(process.env.ACCESS), expiresAt: 1, scopes: [], tokenType: 'Bearer', savedAt: 1 });
  console.log(JSON.stringify({ keytarLoadedOnImport, ok: true }));
} catch (error) {
  console.log(JSON.stringify({ keytarLoadedOnImport, ok: false, code: error.code, message: error.message }));
}
`;

function runChild(env: NodeJS.ProcessEnv, wrap: string[] = []): Promise<ChildResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenbroker-keychain-child-'));
  const script = path.join(dir, 'child.mts');
  fs.writeFileSync(script, CHILD_SOURCE);
  const argv = [...wrap, process.execPath, '--import', 'tsx', script];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: repoRoot,
      env: {
        ...env,
        KEYCHAIN_MODULE: pathToFileURL(path.join(repoRoot, 'daemon/store/keychain.ts')).href,
        SECRET_MODULE: pathToFileURL(path.join(repoRoot, 'daemon/secret.ts')).href,
        ACCESS,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      fs.rmSync(dir, { recursive: true, force: true });
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ChildResult);
      } catch {
        reject(new Error(`child printed no result. stdout: ${stdout} stderr: ${stderr}`));
      }
    });
  });
}

function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of names) delete env[name];
  return env;
}

describe('KEYCHAIN_UNAVAILABLE without a usable Secret Service', () => {
  it('says so when the session bus cannot be reached, and loads keytar only when first used', async () => {
    const result = await runChild({ ...envWithout('DISPLAY', 'WAYLAND_DISPLAY'), DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' });
    expect(result.keytarLoadedOnImport).toBe(false);
    expect(result).toMatchObject({ ok: false, code: 'KEYCHAIN_UNAVAILABLE' });
    expect(result.message).toMatch(/no D-Bus session bus.*desktop session/);
    expect(result.message).toContain('tokenbroker doctor');
    expect(result.message).not.toContain(ACCESS);
  });

  it('says so when there is no session bus and no X11 display to start one', async () => {
    const result = await runChild(envWithout('DISPLAY', 'WAYLAND_DISPLAY', 'DBUS_SESSION_BUS_ADDRESS'));
    expect(result).toMatchObject({ ok: false, code: 'KEYCHAIN_UNAVAILABLE' });
    expect(result.message).toMatch(/Cannot save the keychain entry of profile "work": Cannot autolaunch D-Bus/);
    expect(result.message).not.toContain(ACCESS);
  });

  /** Shell: until org.freedesktop.secrets has an owner on the session bus, at most 100 × 0.1 s. */
  const WAIT_FOR_SECRET_SERVICE =
    'i=0; until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner ' +
    "string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done;";

  it.skipIf(
    process.platform !== 'linux' ||
      requireOrSkip(
        onPath('dbus-run-session') && onPath('gnome-keyring-daemon') && onPath('dbus-send'),
        'keychain: needs dbus-run-session, dbus-send and gnome-keyring-daemon (apt-get install dbus-x11 gnome-keyring)',
      ),
  )('says the keyring is locked when it was unlocked with the wrong password', async () => {
    const dataHome = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenbroker-keyring-locked-'));
    try {
      const session = (password: string) => [
        'dbus-run-session',
        '--',
        'sh',
        '-c',
        // --unlock returns before the daemon owns its bus name: wait for that (≤ 10 s), not a fixed time.
        `printf ${password} | XDG_RUNTIME_DIR="$XDG_DATA_HOME" gnome-keyring-daemon --unlock --components=secrets >/dev/null; ${WAIT_FOR_SECRET_SERVICE} exec "$@"`,
        'sh',
      ];
      const env = { ...envWithout('DISPLAY', 'WAYLAND_DISPLAY', 'DBUS_SESSION_BUS_ADDRESS'), XDG_DATA_HOME: dataHome };
      // First session creates the login keyring with password "right"; the second unlocks it with "wrong".
      expect(await runChild(env, session('right'))).toMatchObject({ ok: true });
      const result = await runChild(env, session('wrong'));
      expect(result).toMatchObject({ ok: false, code: 'KEYCHAIN_UNAVAILABLE' });
      expect(result.message).toMatch(/locked/);
      expect(result.message).not.toContain(ACCESS);
    } finally {
      fs.rmSync(dataHome, { recursive: true, force: true });
    }
  });
});
