import fs from 'node:fs';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  detectIndent,
  editConfig,
  readConfigDocument,
  removeProfile,
  saveConfigDocument,
  setDefaultProfile,
  setProfile,
  writeFileAtomic,
} from '../../daemon/config-write.js';
import { loadConfig } from '../../daemon/config.js';
import { BrokerError } from '../../proto/index.js';
import { tempDir } from '../support/temp-dir.js';

const oidc = { issuer: 'https://login.example.com', clientId: 'abc' };

function errorOf(fn: () => unknown): BrokerError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    return error as BrokerError;
  }
  throw new Error('expected an error');
}

describe('writeFileAtomic', () => {
  // process.umask() cannot be set from a worker thread: StrykerJS runs this layer in threads (npm test runs
  // each file in a process of its own, where this case runs).
  it.skipIf(!isMainThread)('creates the directory 0700 and the file 0600, whatever the umask', () => {
    const dir = tempDir();
    const file = path.join(dir, 'a', 'b', 'config.json');
    const old = process.umask(0);
    try {
      writeFileAtomic(file, '{}\n');
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('{}\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'a')).mode & 0o777).toBe(0o700);
  });

  it('replaces a 0644 file with a 0600 one and leaves no temp file behind', () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, 'old', { mode: 0o644 });
    const inode = fs.statSync(file).ino;
    writeFileAtomic(file, 'new');
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(file).ino).not.toBe(inode); // a new file renamed over the old, not an in-place rewrite
    expect(fs.readdirSync(dir)).toEqual(['config.json']);
  });

  it('writes through a symlink to its target and keeps the link', () => {
    const dir = tempDir();
    const target = path.join(dir, 'real.json');
    fs.writeFileSync(target, 'old');
    const link = path.join(dir, 'config.json');
    fs.symlinkSync(target, link);
    writeFileAtomic(link, 'new');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
  });

  it('removes temp files of writers that were killed, not those of live ones', () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    const dead = path.join(dir, '.config.json.tmp-999999999-abcdef');
    const live = path.join(dir, `.config.json.tmp-${process.pid}-abcdef`);
    fs.writeFileSync(dead, 'half');
    fs.writeFileSync(live, 'half');
    writeFileAtomic(file, 'x');
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
  });
});

describe('editing the config document', () => {
  it('keeps other profiles, the credentials section, key order and tab indentation', () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    const original = {
      profiles: { zeta: { ...oidc, scopes: ['openid'] }, alpha: { ...oidc, authorizationParams: { prompt: 'consent' } } },
      credentials: { git: [{ host: 'git.example.com', profile: 'zeta' }] },
    };
    fs.writeFileSync(file, JSON.stringify(original, null, '\t'));
    const document = readConfigDocument(file);
    setProfile(document, 'work', { issuer: 'https://other.example.com', clientId: 'w' });
    saveConfigDocument(document);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toBe(
      `${JSON.stringify({ ...original, profiles: { ...original.profiles, work: { issuer: 'https://other.example.com', clientId: 'w' } } }, null, '\t')}\n`,
    );
    expect([...loadConfig(file).profiles.keys()]).toEqual(['zeta', 'alpha', 'work']);
  });

  it('detects the indentation in use', () => {
    expect(detectIndent('{\n    "a": 1\n}')).toBe(4);
    expect(detectIndent('{\n\t"a": 1\n}')).toBe('\t');
    expect(detectIndent('{"a":1}')).toBe(2);
  });

  it('refuses to replace an existing profile unless asked, naming it', () => {
    const document = { file: 'x', exists: true, json: { profiles: { work: oidc } }, indent: 2 };
    expect(errorOf(() => setProfile(document, 'work', oidc)).field).toBe('profiles.work');
    setProfile(document, 'work', { ...oidc, clientId: 'new' }, { replace: true });
    expect((document.json.profiles.work as { clientId: string }).clientId).toBe('new');
  });

  it('removing the default profile removes defaultProfile too (else the file would be invalid)', () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ defaultProfile: 'a', profiles: { a: oidc, b: oidc } }));
    const document = readConfigDocument(file);
    expect(removeProfile(document, 'a')).toEqual({ wasDefault: true });
    saveConfigDocument(document);
    const config = loadConfig(file);
    expect([...config.profiles.keys()]).toEqual(['b']);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ profiles: { b: oidc } });
  });

  it('use: sets defaultProfile, and only to a profile that exists', () => {
    const document = { file: 'x', exists: true, json: { profiles: { a: oidc, b: oidc } } as Record<string, unknown>, indent: 2 };
    setDefaultProfile(document, 'b');
    expect(document.json['defaultProfile']).toBe('b');
    expect(errorOf(() => setDefaultProfile(document, 'c')).code).toBe('PROFILE_NOT_FOUND');
  });

  it('never writes a document the daemon would refuse: the file is unchanged and the error names the field', () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    const before = JSON.stringify({ profiles: { a: oidc } });
    fs.writeFileSync(file, before);
    const document = readConfigDocument(file);
    setProfile(document, 'b', { ...oidc, refresh: { leadSeconds: -1 } });
    const error = errorOf(() => saveConfigDocument(document));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.field).toBe('profiles.b.refresh.leadSeconds');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
  });

  it('does not touch a file that is not JSON (the user fixes it first)', () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, '{ "profiles": ');
    const error = errorOf(() => readConfigDocument(file));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(file);
    expect(fs.readFileSync(file, 'utf8')).toBe('{ "profiles": ');
  });

  it('a missing file is an empty document, created on save', () => {
    const dir = tempDir();
    const file = path.join(dir, 'sub', 'config.json');
    const document = readConfigDocument(file);
    expect(document.exists).toBe(false);
    setProfile(document, 'main', oidc);
    saveConfigDocument(document);
    expect(loadConfig(file).defaultProfile).toBe('main');
  });
});

describe('editConfig: one change at a time', () => {
  it('takes over the lock of a process that is gone', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(`${file}.lock`, '999999999');
    await editConfig(file, (document) => setProfile(document, 'main', oidc));
    expect(loadConfig(file).profiles.has('main')).toBe(true);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });

  it('waits for a live holder, then gives up naming it; the file is unchanged', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, '{}');
    fs.writeFileSync(`${file}.lock`, String(process.pid));
    const started = Date.now();
    const error = await editConfig(file, (document) => setProfile(document, 'main', oidc), { waitMs: 300 }).then(
      () => undefined,
      (e: unknown) => e as BrokerError,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(error?.message).toContain(`another tokenbroker (pid ${process.pid}) is changing`);
    expect(fs.readFileSync(file, 'utf8')).toBe('{}');
  });

  it('releases the lock when the change fails', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.json');
    await expect(editConfig(file, (document) => removeProfile(document, 'nope'))).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND' });
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });
});
