/**
 * The whole product in one screen, with no provider account: a local OpenID provider (oidc-provider,
 * development login pages), the real daemon on a temp socket, a browser sign-in, `tokenbroker status`,
 * and a sample app asking for tokens while the broker refreshes them (10-second tokens).
 *
 *   npm run demo                      # opens your browser to sign in (any user name, any password)
 *   npm run demo -- --headless        # signs in with headless Chromium, or by posting the dev form
 *   npm run demo -- --duration 60     # how long the sample app runs (seconds)
 *   npm run demo -- --headless --device   # a device sign-in (RFC 8628), as over SSH: `tokenbroker login
 *                                         # --device` shows a code; headless Chromium enters it on the
 *                                         # provider's page (without --headless: you do)
 *
 * Everything it creates (temp dir, keychain entries under a demo service name) is removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type BrokerClient, type LoginResult } from '../client/index.js';
import { signInWithDevForm } from '../test/support/dev-form-login.js';
import { startTestIdp, type TestIdp } from '../test/support/idp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'daemon', 'cli', 'main.js');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const TOKEN_SECONDS = 10;

const { values } = parseArgs({
  options: {
    headless: { type: 'boolean', default: false },
    device: { type: 'boolean', default: false },
    duration: { type: 'string', default: '40' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    fs
      .readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('*/')[0]!
      .replace(/^\/\*\*?|^ \* ?/gm, '') + '\n',
  );
  process.exit(0);
}
const duration = Number(values.duration);
if (!Number.isFinite(duration) || duration < 5 || duration > 3600) {
  process.stderr.write(`demo: --duration must be 5–3600 seconds, got ${JSON.stringify(values.duration)}\n`);
  process.exit(2);
}
const noDisplay = process.platform === 'linux' && !process.env['DISPLAY'] && !process.env['WAYLAND_DISPLAY'];
const headless = values.headless || noDisplay;

const step = (text: string) => process.stdout.write(`\n\x1b[1m▸ ${text}\x1b[0m\n`);
const cleanups: Array<() => unknown> = [];

async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch {
      // best effort: keep cleaning
    }
  }
  cleanups.length = 0;
}

process.once('SIGINT', () => {
  process.stdout.write('\nstopping…\n');
  void cleanup().then(() => process.exit(130));
});

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}

async function startDaemon(dir: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const log = fs.openSync(path.join(dir, 'daemon.log'), 'a');
  const daemon = spawn(process.execPath, [CLI, 'daemon', '--config', path.join(dir, 'config.json'), '--log-level', 'info'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  const deadline = Date.now() + 15_000;
  while (!fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8').includes('tokenbroker daemon listening')) {
    if (daemon.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the daemon did not start:\n${fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return daemon;
}

/** Signs in without a person: headless Chromium if there is one, else the provider's dev form over HTTP. */
async function signInHeadless(authorizationUrl: string): Promise<void> {
  if (fs.existsSync(CHROMIUM)) {
    const { launchBrowserUser } = await import('../test/support/browser-user.js');
    const user = await launchBrowserUser();
    try {
      await user.signIn(authorizationUrl, { login: 'demo-user' });
      process.stdout.write('  headless Chromium signed in as "demo-user" on the provider\'s login page\n');
    } finally {
      await user.close();
    }
    return;
  }
  const redirect = await signInWithDevForm(authorizationUrl, 'demo-user');
  await fetch(redirect); // the broker's loopback listener receives the code
  process.stdout.write('  posted the provider\'s dev login form as "demo-user" (no Chromium found)\n');
}

/**
 * A device sign-in (RFC 8628), as over SSH: the real `tokenbroker login --device` shows the code (and a
 * QR code on a terminal); the demo's own client joins that sign-in to learn the code, and headless
 * Chromium — the "phone" — enters it on the provider's page.
 */
async function deviceSignIn(client: BrokerClient, env: NodeJS.ProcessEnv): Promise<LoginResult> {
  step(
    headless
      ? 'Signing in without a browser here: tokenbroker login --device (headless Chromium plays your phone)'
      : 'Signing in without a browser here: tokenbroker login --device (open the address, enter the code; any name, any password)',
  );
  const cli = spawn(process.execPath, [CLI, 'login', '--device'], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => cli.once('exit', resolve));
  cleanups.push(() => cli.kill('SIGKILL'));
  // Joins the CLI's sign-in (one sign-in per profile) once it is under way, and learns its code.
  const deadline = Date.now() + 15_000;
  while ((await client.status()).profiles[0]?.state !== 'logging-in') {
    if (cli.exitCode !== null || Date.now() > deadline) throw new Error('tokenbroker login --device did not start a sign-in');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const result = await client.login({
    device: true,
    onPending: (pending) => {
      if (!headless) return;
      const { verificationUriComplete, verificationUri, userCode } = pending.device!;
      void (async () => {
        if (!fs.existsSync(CHROMIUM)) throw new Error(`a headless device sign-in needs Chromium at ${CHROMIUM}`);
        const { launchDeviceUser } = await import('../test/support/device-user.js');
        const phone = await launchDeviceUser();
        try {
          await phone.confirm(verificationUriComplete ?? verificationUri, { userCode, login: 'demo-user' });
          process.stdout.write(`\n  headless Chromium entered ${userCode} and signed in as "demo-user" on the provider's page\n`);
        } finally {
          await phone.close();
        }
      })().catch((error: unknown) => process.stderr.write(`  sign-in failed: ${String(error)}\n`));
    },
  });
  const code = await exited;
  if (code !== 0) throw new Error(`tokenbroker login --device exited with ${code}`);
  return result;
}

async function browserSignIn(client: BrokerClient): Promise<LoginResult> {
  step(headless ? 'Signing in (scripted browser)' : "Signing in: your browser opens the provider's login page (any name, any password)");
  return client.login({
    openBrowser: !headless,
    onPending: (pending) => {
      process.stdout.write(
        `  ${headless ? 'sign-in link (one-time; it redirects to the provider)' : 'if no browser opened, visit (once)'}:\n  ${pending.authorizationUrl}\n`,
      );
      if (headless) void signInHeadless(pending.authorizationUrl!).catch((error: unknown) => process.stderr.write(`  sign-in failed: ${String(error)}\n`));
    },
  });
}

async function main(): Promise<void> {
  process.stdout.write(`tokenbroker demo — ${headless ? 'headless' : 'interactive'}, ${duration} s of sample app\n`);

  step(`Starting a local OpenID provider (oidc-provider; access tokens live ${TOKEN_SECONDS} s)`);
  const idp: TestIdp = await startTestIdp({ accessTokenTtl: TOKEN_SECONDS, deviceFlow: true, deviceInterval: 2 });
  cleanups.push(() => idp.close());
  process.stdout.write(`  issuer ${idp.issuer}\n`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenbroker-demo-'));
  fs.chmodSync(dir, 0o700);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'run', 'broker.sock');
  const env: NodeJS.ProcessEnv = {
    TOKENBROKER_SOCKET: socket,
    TOKENBROKER_KEYCHAIN_SERVICE: `tokenbroker-demo-${randomBytes(4).toString('hex')}`,
    TOKENBROKER_CONFIG: '',
  };
  const config = {
    profiles: {
      demo: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        redirectUri: 'loopback',
        scopes: ['openid', 'offline_access', 'email'],
        refresh: { jitterSeconds: 1 },
        ...(values.device ? { flow: 'device' } : {}),
      },
    },
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));

  step('Starting the tokenbroker daemon');
  const daemon = await startDaemon(dir, env);
  cleanups.push(
    () =>
      new Promise((resolve) => {
        daemon.once('exit', resolve);
        daemon.kill('SIGTERM');
      }),
  );
  process.stdout.write(`  pid ${daemon.pid}, socket ${socket}\n  config ${path.join(dir, 'config.json')}\n  log    ${path.join(dir, 'daemon.log')}\n`);

  const client: BrokerClient = await connect({ socketPath: socket, clientName: 'demo' });
  cleanups.push(() => client.close());
  // Sign out at the end: revokes the refresh token and removes the demo's keychain entry.
  cleanups.push(() => runCli(['logout', '--no-browser', '--json'], env));

  const result = values.device ? await deviceSignIn(client, env) : await browserSignIn(client);
  process.stdout.write(`  Signed in as ${result.email ?? result.subject}; token valid until ${new Date(result.expiresAt!).toLocaleTimeString()}\n`);

  step('tokenbroker status');
  process.stdout.write((await runCli(['status'], env)).stdout);

  step(`A sample app asks for a token every 2 s for ${duration} s; the broker refreshes ahead of expiry`);
  const app = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'sample-app.ts'), '--for', String(duration)], {
    env: { ...process.env, ...env },
    stdio: 'inherit',
    cwd: ROOT,
  });
  const code = await new Promise<number | null>((resolve) => app.once('exit', resolve));
  if (code !== 0) throw new Error(`the sample app exited with ${code}`);

  step('tokenbroker status');
  process.stdout.write((await runCli(['status'], env)).stdout);
  process.stdout.write(`\nThe provider saw ${idp.counts.refreshToken} refresh grants in ${duration} s (one per token lifetime, whatever the app asked).\n`);
}

main()
  .then(cleanup)
  .then(() => {
    step('Done: daemon stopped, refresh token revoked, demo keychain entry removed.');
  })
  .catch(async (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await cleanup();
    process.exit(1);
  });
