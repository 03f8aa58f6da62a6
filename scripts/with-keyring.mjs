#!/usr/bin/env node
/**
 * Runs a command (the test suite, the demo) where the OS keychain works.
 *
 *   node scripts/with-keyring.mjs <command> [args...]
 *
 * - A Secret Service already on the session bus (a desktop session), TOKENBROKER_KEYRING=system, or a
 *   platform other than Linux: the command runs as it is.
 * - Otherwise (Linux without one, e.g. CI or ssh): the command runs inside a private D-Bus session
 *   (`dbus-run-session`) with a throw-away gnome-keyring, unlocked with a dummy password. The keyring
 *   files live in a fresh temp dir (XDG_DATA_HOME of the keyring daemon only), so the user's real login
 *   keyring is never read or written, and the dir is removed afterwards.
 * - TOKENBROKER_KEYRING=isolated: the private session even on a desktop whose keyring is reachable
 *   (so a test run never prompts for, or writes to, the developer's own keyring).
 * - Neither tool installed: says which Debian packages to install and runs the command anyway; tests
 *   that need the keychain then fail with KEYCHAIN_UNAVAILABLE.
 *
 * The command is looked up on PATH with this project's node_modules/.bin first, stdio is inherited,
 * SIGINT/SIGTERM are forwarded, and the exit code is the command's.
 *
 * Plain Node ESM (no TypeScript) so that it runs before anything is built.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set (to the temp dir) for the run inside the private session, so that run does not wrap again. */
const INNER_MARKER = 'TOKENBROKER_WITH_KEYRING_DIR';
const SECRET_SERVICE_NAME = 'org.freedesktop.secrets';
const DEBIAN_PACKAGES = 'gnome-keyring dbus-x11 libsecret-tools';
const FORWARDED_SIGNALS = /** @type {const} */ (['SIGINT', 'SIGTERM']);
/** The same signal twice within this window is one event (a terminal's ^C reaches the whole group). */
const SIGNAL_DEDUPE_MS = 200;

const self = fileURLToPath(import.meta.url);
const projectRoot = path.resolve(path.dirname(self), '..');
const args = process.argv.slice(2);

if (args.length === 0) {
  process.stderr.write('usage: node scripts/with-keyring.mjs <command> [args...]\n');
  process.exit(2);
}

const env = { ...process.env, PATH: prependPath(path.join(projectRoot, 'node_modules', '.bin'), process.env.PATH) };

// Signals are caught from the first moment (an uncaught SIGTERM would leave the temp dir behind);
// `onSignal` is pointed at the running child once there is one.
/** @type {NodeJS.Signals | undefined} */
let signalBeforeStart;
/** @type {(signal: NodeJS.Signals) => void} */
let onSignal = (signal) => {
  signalBeforeStart ??= signal;
};
const lastSignalAt = new Map();
for (const signal of FORWARDED_SIGNALS) {
  process.on(signal, () => {
    const now = Date.now();
    if (now - (lastSignalAt.get(signal) ?? 0) < SIGNAL_DEDUPE_MS) return;
    lastSignalAt.set(signal, now);
    onSignal(signal);
  });
}

process.exitCode = await main();

async function main() {
  const innerDir = process.env[INNER_MARKER];
  if (innerDir !== undefined && innerDir !== '') return runInner(innerDir);

  const mode = process.env.TOKENBROKER_KEYRING;
  if (process.platform !== 'linux' || mode === 'system' || (mode !== 'isolated' && secretServiceOwned(env))) {
    return runForwarding(args[0], args.slice(1), env);
  }
  if (findOnPath('dbus-run-session', env) === undefined || findOnPath('gnome-keyring-daemon', env) === undefined) {
    process.stderr.write(
      'with-keyring: no Secret Service on the session bus, and dbus-run-session or gnome-keyring-daemon is missing.\n' +
        `with-keyring: install them (Debian/Ubuntu: apt-get install -y ${DEBIAN_PACKAGES}) to test against a real keychain.\n` +
        'with-keyring: running the command anyway; keychain tests will fail with KEYCHAIN_UNAVAILABLE.\n',
    );
    return runForwarding(args[0], args.slice(1), env);
  }
  return runInPrivateSession();
}

/**
 * `dbus-run-session -- sh -c '<start keyring>; exec node <self> <args>'`. The keyring daemon alone gets
 * the temp XDG_DATA_HOME (its keyring files) and XDG_RUNTIME_DIR (its control socket); the command keeps
 * the caller's environment.
 */
async function runInPrivateSession() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenbroker-keyring-'));
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  const script =
    `printf pw | XDG_DATA_HOME="$${INNER_MARKER}/data" XDG_RUNTIME_DIR="$${INNER_MARKER}/run" ` +
    'gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec "$0" "$@"';
  const child = spawn('dbus-run-session', ['--', 'sh', '-c', script, process.execPath, self, ...args], {
    stdio: 'inherit',
    env: { ...env, [INNER_MARKER]: dir },
  });
  const exited = waitForExit(child, 'dbus-run-session');
  const pidFile = path.join(dir, 'inner.pid');
  // dbus-run-session does not pass signals on (it dies and leaves its child running), so signals go
  // straight to the inner run, which forwards them to the command; dbus-run-session then ends normally.
  onSignal = (signal) => {
    void (async () => {
      let innerPid = readPid(pidFile);
      const deadline = Date.now() + 3_000;
      while (innerPid === undefined && child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
        await sleep(50);
        innerPid = readPid(pidFile);
      }
      if (innerPid !== undefined) trySignal(innerPid, signal);
      else child.kill(signal);
    })();
  };
  if (signalBeforeStart !== undefined) onSignal(signalBeforeStart);
  try {
    const result = await exited;
    const innerPid = readPid(pidFile);
    if (innerPid !== undefined) await waitUntilGone(innerPid, 10_000);
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Inside the private session: record our pid for signal forwarding, wait for the keyring, run. */
async function runInner(dir) {
  try {
    fs.writeFileSync(path.join(dir, 'inner.pid'), String(process.pid), { mode: 0o600 });
  } catch {
    // Without the pid file, signals reach dbus-run-session instead; still usable.
  }
  // gnome-keyring-daemon --unlock returns before it owns its bus name: wait briefly for it.
  const deadline = Date.now() + 5_000;
  while (!secretServiceOwned(env) && Date.now() < deadline) await sleep(100);
  if (!secretServiceOwned(env)) {
    process.stderr.write(`with-keyring: gnome-keyring-daemon did not claim ${SECRET_SERVICE_NAME}; running the command anyway.\n`);
  }
  const runEnv = { ...env };
  delete runEnv[INNER_MARKER];
  return runForwarding(args[0], args.slice(1), runEnv);
}

/** Is `org.freedesktop.secrets` owned on the session bus right now? (Needs dbus-send, from dbus-bin.) */
function secretServiceOwned(environment) {
  if (!environment.DBUS_SESSION_BUS_ADDRESS) return false;
  const result = spawnSync(
    'dbus-send',
    [
      '--session',
      '--print-reply',
      '--reply-timeout=2000',
      '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.NameHasOwner',
      `string:${SECRET_SERVICE_NAME}`,
    ],
    { env: environment, encoding: 'utf8', timeout: 3_000, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return result.status === 0 && /boolean true/.test(result.stdout ?? '');
}

async function runForwarding(command, commandArgs, environment) {
  if (signalBeforeStart !== undefined) return exitCodeOfSignal(signalBeforeStart);
  const child = spawn(command, commandArgs, {
    stdio: 'inherit',
    env: environment,
    // npm's .bin entries are .cmd shims on Windows, which only a shell can start.
    shell: process.platform === 'win32',
  });
  onSignal = (signal) => child.kill(signal);
  return waitForExit(child, command);
}

function exitCodeOfSignal(signal) {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/** Resolves to the exit code: the child's, 128 + signal number if it was killed, 127 if not found. */
function waitForExit(child, name) {
  return new Promise((resolve) => {
    child.once('error', (error) => {
      const code = /** @type {NodeJS.ErrnoException} */ (error).code;
      process.stderr.write(code === 'ENOENT' ? `with-keyring: command not found: ${name}\n` : `with-keyring: cannot run ${name}: ${error.message}\n`);
      resolve(code === 'ENOENT' ? 127 : 1);
    });
    child.once('exit', (code, signal) => {
      if (signal !== null) resolve(exitCodeOfSignal(signal));
      else resolve(code ?? 1);
    });
  });
}

function findOnPath(name, environment) {
  for (const dir of (environment.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function prependPath(dir, current) {
  return current === undefined || current === '' ? dir : `${dir}${path.delimiter}${current}`;
}

function readPid(file) {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function trySignal(pid, signal) {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (trySignal(pid, 0) && Date.now() < deadline) await sleep(50);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
