/**
 * Other users (issue 7, item 2), tested with a real second Unix account: it cannot reach the daemon's
 * socket, cannot list its directory, and the client library refuses; and the reverse, our client refuses
 * a socket another user planted (an impostor), including one reached through a symlink that user keeps
 * swapping (the check-then-connect race).
 *
 * Needs root (to create the account with useradd and act as it with setpriv); skipped otherwise, except
 * in CI (CI set), where a missing prerequisite fails.
 *   node scripts/with-keyring.mjs vitest run test/hardening/other-users.test.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../client/index.js';
import { CLI, ROOT, runCli, runCommand, startDaemon, waitFor, type DaemonProcess } from '../support/daemon.js';
import { requireOrSkip } from '../support/prerequisites.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasTools = ['useradd', 'userdel', 'setpriv'].every((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0);
const skip = requireOrSkip(
  process.platform === 'linux' && isRoot && hasTools,
  'hardening-other-users: needs Linux, root and useradd/userdel/setpriv to create a second user ' +
    `(root: ${isRoot}, tools: ${hasTools}). Run it as root (CI does).`,
);

const CLIENT_MODULE = path.join(ROOT, 'dist/client/index.js');

interface OtherUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}
let other: OtherUser;
let daemon: DaemonProcess;
/** World-readable scratch space for the other user's scripts (and nothing else). */
let shared: string;

/** Runs `node -e <source>` as the other user (setpriv: real+effective ids, no supplementary groups). */
function runAsOther(source: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = path.join(shared, `probe-${randomBytes(4).toString('hex')}.mjs`);
  fs.writeFileSync(script, source, { mode: 0o644 });
  return runCommandAsOther([process.execPath, script], env, timeoutMs);
}

function runCommandAsOther(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 15_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand(['setpriv', `--reuid=${other.uid}`, `--regid=${other.gid}`, '--clear-groups', '--', ...argv], {
    cwd: shared,
    env: { PATH: process.env['PATH'], HOME: shared, ...env },
    timeoutMs,
    label: `as ${other.name}: ${argv.join(' ')}`,
  });
}

/** What the other user sees when it goes for our socket. */
const PROBE = `
import fs from 'node:fs';
import net from 'node:net';
const { socketPath, dirs, clientModule } = JSON.parse(process.env.PROBE);
const out = { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), list: {}, stat: undefined };
for (const dir of dirs) {
  try { fs.readdirSync(dir); out.list[dir] = 'listed'; } catch (error) { out.list[dir] = error.code; }
}
try { out.stat = 'uid ' + fs.statSync(socketPath).uid; } catch (error) { out.stat = error.code; }
out.connect = await new Promise((resolve) => {
  const socket = net.createConnection({ path: socketPath });
  socket.once('connect', () => { socket.destroy(); resolve('connected'); });
  socket.once('error', (error) => resolve(error.code));
});
const { connect } = await import(clientModule);
try {
  const client = await connect({ socketPath, reconnect: false, connectTimeoutMs: 2000 });
  out.client = 'connected';
  await client.close();
} catch (error) {
  out.client = error.code;
  out.clientMessage = error.message;
}
console.log(JSON.stringify(out));
`;

async function probe(socketPath: string, dirs: readonly string[]): Promise<Record<string, unknown>> {
  const result = await runAsOther(PROBE, { PROBE: JSON.stringify({ socketPath, dirs, clientModule: CLIENT_MODULE }) });
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/**
 * A listening socket owned by the other user, mode 0777, in `dir`; it logs every connection it accepts
 * (and the first bytes it receives) to stdout as JSON lines. Stopped with the returned function.
 */
async function startImpostor(socketPath: string): Promise<{ connections(): number; hellos(): number; stop(): Promise<void> }> {
  const source = `
import fs from 'node:fs';
import net from 'node:net';
const socketPath = process.env.IMPOSTOR;
let n = 0;
const server = net.createServer((socket) => {
  n++;
  process.stdout.write(JSON.stringify({ connection: n }) + '\\n');
  socket.on('data', (data) => process.stdout.write(JSON.stringify({ data: String(data).slice(0, 200) }) + '\\n'));
  socket.on('error', () => {});
});
server.listen(socketPath, () => {
  fs.chmodSync(socketPath, 0o777);
  process.stdout.write(JSON.stringify({ listening: socketPath }) + '\\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
  const script = path.join(shared, `impostor-${randomBytes(4).toString('hex')}.mjs`);
  fs.writeFileSync(script, source, { mode: 0o644 });
  const child = spawn('setpriv', [`--reuid=${other.uid}`, `--regid=${other.gid}`, '--clear-groups', '--', process.execPath, script], {
    env: { PATH: process.env['PATH'], HOME: shared, IMPOSTOR: socketPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  await waitFor(
    () => stdout.includes('"listening"'),
    10_000,
    () => `impostor did not start: ${stdout}`,
  );
  return {
    connections: () => (stdout.match(/"connection"/g) ?? []).length,
    hellos: () => (stdout.match(/hello/g) ?? []).length,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

describe.skipIf(skip)('another local user', () => {
  beforeAll(async () => {
    const name = `tbtest-${randomBytes(4).toString('hex')}`;
    const added = spawnSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', name], { encoding: 'utf8' });
    if (added.status !== 0) throw new Error(`useradd failed: ${added.stderr}`);
    const info = (flag: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
    other = { name, uid: info('-u'), gid: info('-g') };
    expect(other.uid).toBeGreaterThan(0);
    shared = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-shared-'));
    fs.chmodSync(shared, 0o755);
    // The other user needs to run node and load the client library: both world-readable in this checkout.
    fs.accessSync(process.execPath, fs.constants.R_OK | fs.constants.X_OK);
    daemon = await startDaemon();
  });

  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    if (other) {
      // Only that throw-away account's processes (probes that outlived a failed test), then the account.
      spawnSync('pkill', ['-KILL', '-U', String(other.uid)]);
      await waitFor(
        () => spawnSync('pgrep', ['-U', String(other.uid)]).status !== 0,
        5_000,
        () => `processes of ${other.name} still running`,
      ).catch(() => undefined);
      const removed = spawnSync('userdel', [other.name], { encoding: 'utf8' });
      if (removed.status !== 0) console.error(`userdel ${other.name} failed: ${removed.stderr}`);
    }
    if (shared) fs.rmSync(shared, { recursive: true, force: true });
  });

  it('cannot list the socket directory, reach the socket, or get the client library to talk to it', async () => {
    const socketDir = path.dirname(daemon.socketPath);
    expect(fs.statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(daemon.socketPath).mode & 0o777).toBe(0o600);
    const seen = await probe(daemon.socketPath, [daemon.dir, socketDir]);
    // Node lists the effective gid among the groups; --clear-groups left no others.
    expect(seen).toMatchObject({ uid: other.uid, gid: other.gid, groups: [other.gid] });
    expect(seen['list']).toEqual({ [daemon.dir]: 'EACCES', [socketDir]: 'EACCES' });
    expect(seen['stat']).toBe('EACCES');
    expect(seen['connect']).toBe('EACCES');
    expect(seen['client']).toBe('SOCKET_UNTRUSTED');
    expect(seen['clientMessage']).toMatch(/permission denied/);

    const cli = await runCommandAsOther([process.execPath, CLI, 'status', '--json', '--socket', daemon.socketPath]);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout)).toMatchObject({ error: { code: 'SOCKET_UNTRUSTED' } });
    // The daemon saw nothing of it.
    expect(daemon.output()).not.toMatch(/client connected/);
  });

  it('the socket file itself (0600) still refuses when the directories are opened up for traversal', async () => {
    // Defence in depth: even if the directory protection were lost (here: made 0711 on purpose),
    // connect(2) on a Unix socket needs write permission on the socket file.
    const socketDir = path.dirname(daemon.socketPath);
    fs.chmodSync(daemon.dir, 0o711);
    fs.chmodSync(socketDir, 0o711);
    try {
      const seen = await probe(daemon.socketPath, [socketDir]);
      expect(seen['list']).toEqual({ [socketDir]: 'EACCES' });
      expect(seen['stat']).toBe('uid 0');
      expect(seen['connect']).toBe('EACCES');
      expect(seen['client']).toBe('SOCKET_UNTRUSTED');
      expect(seen['clientMessage']).toMatch(/owned by uid 0, not by you/);
    } finally {
      fs.chmodSync(socketDir, 0o700);
      fs.chmodSync(daemon.dir, 0o700);
    }
    // Still serving its own user.
    const client = await connect({ socketPath: daemon.socketPath });
    expect((await client.status()).pid).toBe(daemon.child.pid);
    await client.close();
  });

  describe('an impostor socket planted by the other user', () => {
    let plantDir: string;
    let impostorPath: string;
    let impostor: Awaited<ReturnType<typeof startImpostor>>;

    beforeAll(async () => {
      // A directory we can reach, owned by the other user (think of a squatted /tmp/tokenbroker-<uid>).
      plantDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-planted-'));
      fs.chownSync(plantDir, other.uid, other.gid);
      fs.chmodSync(plantDir, 0o755);
      impostorPath = path.join(plantDir, 'broker.sock');
      impostor = await startImpostor(impostorPath);
      expect(fs.statSync(impostorPath).uid).toBe(other.uid);
    });
    afterAll(async () => {
      await impostor?.stop();
      if (plantDir) fs.rmSync(plantDir, { recursive: true, force: true });
    });

    it('our client refuses it with SOCKET_UNTRUSTED and sends it nothing; so do the CLI and a daemon asked to listen there', async () => {
      const error = await connect({ socketPath: impostorPath, reconnect: false }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SOCKET_UNTRUSTED', message: expect.stringMatching(new RegExp(`owned by uid ${other.uid}, not by you`)) as unknown });

      // The realistic route: TOKENBROKER_SOCKET pointed at it.
      const token = await runCli(['token'], { env: { TOKENBROKER_SOCKET: impostorPath } });
      expect(token.code).toBe(1);
      expect(token.stderr).toMatch(/SOCKET_UNTRUSTED/);
      expect(token.stdout).toBe('');

      // A daemon of ours refuses that directory outright (another user owns it).
      const refused = await runCli(['daemon', '--socket', path.join(plantDir, 'mine.sock')]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`owned by uid ${other.uid}, not by you`));

      expect(impostor.connections()).toBe(0);
    });

    it('a symlink the other user keeps swapping between our socket and its own never gets our client to the impostor', async () => {
      // The other user owns plantDir, so it controls what plantDir/link points to at every instant: our
      // real socket when the client checks the owner, its own socket when the client connects.
      const link = path.join(plantDir, 'link.sock');
      const swapper = `
import fs from 'node:fs';
const { link, ours, theirs, stop, until } = JSON.parse(process.env.SWAP);
let flips = 0;
const tmp = link + '.tmp';
while (Date.now() < until && !(flips % 512 === 0 && fs.existsSync(stop))) {
  for (const target of [ours, theirs]) {
    try { fs.unlinkSync(tmp); } catch {}
    fs.symlinkSync(target, tmp);
    fs.renameSync(tmp, link); // atomic replacement
    flips++;
  }
}
console.log(JSON.stringify({ flips }));
`;
      // The other user can name our socket in a symlink without being able to reach it.
      const attempts = 300;
      const stop = path.join(shared, `stop-${randomBytes(4).toString('hex')}`);
      const swapping = runAsOther(
        swapper,
        { SWAP: JSON.stringify({ link, ours: daemon.socketPath, theirs: impostorPath, stop, until: Date.now() + 40_000 }) },
        50_000,
      );
      await waitFor(
        () => fs.existsSync(link),
        10_000,
        () => 'the swapper did not start',
      );
      // Interleaved with a control: a naive client that checks the owner through the link, then connects
      // through it. The control shows the race is live in this run (it must reach the impostor at least
      // once, or the run proves nothing); the client library must never lose it.
      let naiveAccepted = 0;
      const connectionsBefore = impostor.connections();
      const hellosBefore = impostor.hellos();
      const outcomes = new Map<string, number>();
      const started = Date.now();
      const naiveAttempt = async (): Promise<void> => {
        let owner: number | undefined;
        try {
          owner = fs.statSync(link).uid;
        } catch {
          owner = undefined;
        }
        if (owner === process.getuid!()) {
          naiveAccepted++;
          await new Promise<void>((resolve) => {
            const socket = net.createConnection({ path: link });
            socket.once('connect', () => socket.end(() => resolve()));
            socket.once('error', () => resolve());
          });
        }
      };
      for (let i = 0; i < attempts; i++) {
        await naiveAttempt();

        // An impostor never answers hello: a short timeout keeps a lost race cheap.
        const outcome = await connect({ socketPath: link, reconnect: false, connectTimeoutMs: 500, timeoutMs: 500 }).then(
          async (client) => {
            const status = await client.status();
            await client.close();
            return status.pid === daemon.child.pid ? 'reached our daemon' : 'reached something else';
          },
          (error: { code?: string }) => error.code ?? 'error',
        );
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
      const elapsed = Date.now() - started;
      // The naive client sends nothing; the client library always starts with hello: that tells them apart.
      const naiveHits = () => impostor.connections() - connectionsBefore - (impostor.hellos() - hellosBefore);
      // The control must have lost the race at least once; a rare unlucky run gets more naive tries (the
      // swapper runs 40 s), never more tries of the client library. The impostor's lines come through a pipe.
      const naiveUntil = Date.now() + 20_000;
      while (naiveHits() < 1 && Date.now() < naiveUntil) {
        await naiveAttempt();
        await sleep(5);
      }
      await waitFor(
        () => naiveHits() >= 1,
        5_000,
        () => `the naive client never reached the impostor (${naiveAccepted} checks passed): the race did not run`,
      );
      await sleep(300); // lines still in the pipe (a hello would be late, not lost)
      const reachedImpostor = impostor.hellos() - hellosBefore;
      const naiveReachedImpostor = naiveHits();
      fs.writeFileSync(stop, '');
      const swapped = await swapping;
      expect(swapped.code, swapped.stderr).toBe(0); // the swapper ran to its end without failing
      const flips = (JSON.parse(swapped.stdout.trim() || '{}') as { flips?: number }).flips;
      console.log(
        `hardening-other-users: symlink swap race (the link flipped ${flips} times): naive check-then-connect passed the check ${naiveAccepted}/${attempts} times and reached the impostor ${naiveReachedImpostor} times; ` +
          `the client library, ${attempts} connects (interleaved, ${elapsed} ms in all): ${JSON.stringify(Object.fromEntries(outcomes))}, impostor reached ${reachedImpostor} times`,
      );
      // The race ran: the link flipped, and the naive client was fooled at least once.
      expect(flips).toBeGreaterThan(attempts);
      expect(naiveReachedImpostor).toBeGreaterThanOrEqual(1);
      // The client library never was.
      expect(reachedImpostor).toBe(0);
      expect(outcomes.get('reached something else') ?? 0).toBe(0);
      expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(attempts);
    }, 90_000);
  });
});
