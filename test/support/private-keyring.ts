/**
 * A private D-Bus session bus (no service activation: a name nobody owns is simply absent) and a
 * gnome-keyring (secrets component) on it, in the foreground so the test owns the process: to start,
 * stop, lock, unlock, or freeze (SIGSTOP: a Secret Service that hangs) the keychain the daemon uses.
 * Used by hardening-keychain and startup-listen-first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './daemon.js';

export const PASSWORD = 'keyring-test-password';
/** Debian's python3, which has python3-dbus (a python3 earlier on PATH may not). */
export const SYSTEM_PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A session bus with no service activation: a name nobody owns is simply absent. */
export class PrivateBus {
  readonly address: string;
  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.address = `unix:path=${path.join(dir, 'bus')}`;
  }

  static async start(dir: string): Promise<PrivateBus> {
    const config = path.join(dir, 'bus.conf');
    fs.writeFileSync(
      config,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${path.join(dir, 'bus')}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>`,
    );
    const child = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--nopidfile'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const bus = new PrivateBus(dir, child);
    await waitFor(
      () => fs.existsSync(path.join(dir, 'bus')),
      10_000,
      () => 'the private bus did not start',
    );
    return bus;
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { DBUS_SESSION_BUS_ADDRESS: this.address, DISPLAY: '', WAYLAND_DISPLAY: '', ...extra };
  }

  /** gdbus on this bus. */
  call(args: readonly string[]): string {
    const result = spawnSync('gdbus', ['call', '--session', ...args], { env: { ...process.env, ...this.env() }, encoding: 'utf8', timeout: 10_000 });
    if (result.status !== 0) throw new Error(`gdbus ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  }

  secretServiceOwned(): boolean {
    return /true/.test(
      this.call([
        '--dest',
        'org.freedesktop.DBus',
        '--object-path',
        '/org/freedesktop/DBus',
        '--method',
        'org.freedesktop.DBus.NameHasOwner',
        'org.freedesktop.secrets',
      ]),
    );
  }

  loginCollectionLocked(): boolean {
    return /true/.test(
      this.call([
        '--dest',
        'org.freedesktop.secrets',
        '--object-path',
        '/org/freedesktop/secrets/collection/login',
        '--method',
        'org.freedesktop.DBus.Properties.Get',
        'org.freedesktop.Secret.Collection',
        'Locked',
      ]),
    );
  }

  lockLoginCollection(): void {
    this.call([
      '--dest',
      'org.freedesktop.secrets',
      '--object-path',
      '/org/freedesktop/secrets',
      '--method',
      'org.freedesktop.Secret.Service.Lock',
      "['/org/freedesktop/secrets/collection/login']",
    ]);
  }

  /**
   * Unlocks the login collection inside the running gnome-keyring (what a desktop's unlock prompt does), so
   * clients keep their Secret Service connection. Needs python3 with python3-dbus.
   */
  unlockLoginCollection(): void {
    const script = fileURLToPath(new URL('./unlock-keyring.py', import.meta.url));
    const result = spawnSync(SYSTEM_PYTHON, [script], { input: PASSWORD, env: { ...process.env, ...this.env() }, encoding: 'utf8', timeout: 10_000 });
    if (result.status !== 0) throw new Error(`unlocking the login collection failed: ${result.stderr}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** gnome-keyring (secrets component) on a bus, in the foreground so this test owns the process. */
export class Keyring {
  private constructor(private readonly child: ChildProcess) {}

  /** `replace`: take over from a running instance (how a locked keyring is unlocked here). */
  static async start(bus: PrivateBus, files: { data: string; run: string }, options: { replace?: boolean } = {}): Promise<Keyring> {
    const args = ['--foreground', '--unlock', '--components=secrets', ...(options.replace ? ['--replace'] : [])];
    const child = spawn('gnome-keyring-daemon', args, {
      env: { ...process.env, ...bus.env({ XDG_DATA_HOME: files.data, XDG_RUNTIME_DIR: files.run }) },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin.end(PASSWORD);
    await waitFor(
      () => bus.secretServiceOwned(),
      10_000,
      () => 'gnome-keyring did not claim org.freedesktop.secrets',
    );
    if (options.replace) {
      // While one instance hands the name to the other it is briefly unowned: keep asking.
      const unlocked = () => {
        try {
          return !bus.loginCollectionLocked();
        } catch {
          return false;
        }
      };
      await waitFor(unlocked, 10_000, () => 'the replacing keyring is still locked');
    }
    return new Keyring(child);
  }

  /** The gnome-keyring process (to freeze it with SIGSTOP and thaw it with SIGCONT). */
  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
