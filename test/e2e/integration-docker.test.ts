/**
 * `docker-credential-tokenbroker` at the protocol level (docker-credential-helpers): the exact stdin
 * docker writes for each action, the exact stdout shapes and error strings it parses, against the real
 * daemon signed in at the test IdP. (docker itself is not installed on the test machines.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCommand, tempDir } from '../support/daemon.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

const HELPER = path.join(ROOT, 'dist/daemon/cli/docker-credential.js');
let s: SignedIn;
let config: string;

beforeAll(async () => {
  s = await startSignedIn();
  config = path.join(tempDir('tb-docker-'), 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      credentials: {
        docker: [
          { registry: 'registry.example.com', profile: 'main' },
          { registry: 'localhost:5000', profile: 'main', username: 'oauth2accesstoken' },
        ],
      },
    }),
  );
}, 90_000);
afterAll(async () => {
  await s?.close();
});

// docker (docker-credential-helpers/client) writes the input without a trailing newline.
const helper = (action: string, input = '', env: NodeJS.ProcessEnv = {}) =>
  runCommand([process.execPath, HELPER, action], { env: { ...process.env, ...s.env, TOKENBROKER_CONFIG: config, ...env }, input });

describe('docker-credential-tokenbroker', () => {
  it('get: {"ServerURL","Username","Secret"} with the broker’s token, for the server URL docker sent', async () => {
    const current = await s.app.getToken();
    const r = await helper('get', 'registry.example.com');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ServerURL: 'registry.example.com', Username: 'oauth2', Secret: current.accessToken });
    const withPort = await helper('get', 'https://localhost:5000/v2/');
    expect(JSON.parse(withPort.stdout)).toEqual({ ServerURL: 'https://localhost:5000/v2/', Username: 'oauth2accesstoken', Secret: current.accessToken });
  });

  it('get for a registry not in the config: exactly "credentials not found in native keychain", exit 1', async () => {
    const r = await helper('get', 'https://index.docker.io/v1/');
    expect(r).toMatchObject({ code: 1, stdout: 'credentials not found in native keychain\n' });
  });

  it('get without a server URL: "no credentials server URL", exit 1', async () => {
    expect(await helper('get', '')).toMatchObject({ code: 1, stdout: 'no credentials server URL\n' });
  });

  it('list: the configured registries and their user names', async () => {
    const r = await helper('list');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ 'registry.example.com': 'oauth2', 'localhost:5000': 'oauth2accesstoken' });
  });

  it('store and erase: accepted and ignored (the daemon keeps the tokens); missing fields named as the protocol does', async () => {
    expect(await helper('store', '{"ServerURL":"registry.example.com","Username":"ada","Secret":"pw"}')).toMatchObject({ code: 0, stdout: '' });
    expect(await helper('store', '{"ServerURL":"registry.example.com","Username":"","Secret":"pw"}')).toMatchObject({
      code: 1,
      stdout: 'no credentials username\n',
    });
    expect(await helper('store', '{"Username":"ada","Secret":"pw"}')).toMatchObject({ code: 1, stdout: 'no credentials server URL\n' });
    expect(await helper('erase', 'registry.example.com')).toMatchObject({ code: 0, stdout: '' });
    expect((await s.app.getToken()).accessToken).toBeTruthy(); // still signed in
  });

  it('version, and an unknown action', async () => {
    expect((await helper('version')).stdout).toMatch(/^docker-credential-tokenbroker \(tokenbroker\) \d+\.\d+\.\d+\n$/);
    expect(await helper('fetch')).toMatchObject({ code: 1, stdout: 'Unknown credential action `fetch`\n' });
  });

  it('no daemon: our message as the protocol’s error (stdout, exit 1)', async () => {
    const r = await helper('get', 'registry.example.com', { TOKENBROKER_SOCKET: path.join(path.dirname(config), 'none.sock') });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^tokenbroker: .*\[DAEMON_NOT_RUNNING\]\n$/);
  });

  it('nobody signed in: the message says to run tokenbroker login, without hanging', async () => {
    const signedOut = await startSignedIn({ signIn: false });
    try {
      const started = Date.now();
      const r = await helper('get', 'registry.example.com', signedOut.env);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('[LOGIN_REQUIRED]');
      expect(r.stdout).toContain('tokenbroker login');
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await signedOut.close();
    }
  }, 90_000);
});
