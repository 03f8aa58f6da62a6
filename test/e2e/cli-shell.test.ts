/**
 * Living with tokenbroker in a shell: completion scripts run in the real shells (bash's compgen
 * answers are checked; zsh and fish parse theirs), the man page built from the help text, colour only
 * on a terminal (a pseudo-terminal from script(1)) or when forced, `status` exit 5 when a profile
 * needs sign-in, "Did you mean", and pretty daemon logs on a terminal only.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, runCli, startDaemon, tempDir, waitFor, type DaemonProcess } from '../support/daemon.js';

const ESC = '\u001b[';

/** Runs `argv` on a pseudo-terminal (script(1) from util-linux): stdout and stderr are a TTY. */
function onTerminal(argv: readonly string[], env: NodeJS.ProcessEnv): { code: number | null; output: string } {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const result = spawnSync('script', ['-qec', quoted, '/dev/null'], { env, encoding: 'utf8', timeout: 60_000 });
  expect(result.error, 'script(1) is needed (Debian package bsdutils)').toBeUndefined();
  return { code: result.status, output: result.stdout };
}

describe('shell completion', () => {
  let bin: string;
  let bashScript: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const dir = tempDir('tb-complete-');
    bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    // `tokenbroker` on PATH, as after a global install (the scripts call it for profile names)
    fs.writeFileSync(path.join(bin, 'tokenbroker'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        profiles: { work: { issuer: 'https://login.example.com', clientId: 'a' }, personal: { issuer: 'https://id.example.org', clientId: 'b' } },
      }),
    );
    env = { ...process.env, PATH: `${bin}:${process.env['PATH']}`, TOKENBROKER_CONFIG: config };
    const result = await runCli(['completion', 'bash'], { env });
    expect(result.code).toBe(0);
    bashScript = path.join(dir, 'tokenbroker.bash');
    fs.writeFileSync(bashScript, result.stdout);
  });

  /** What bash completes for the words typed so far (the last one is being completed). */
  function complete(...words: string[]): string[] {
    const array = words.map((w) => `'${w}'`).join(' ');
    const script = `source '${bashScript}'; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _tokenbroker; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const result = spawnSync('bash', ['--norc', '-c', script], { env, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    return result.stdout.split('\n').filter((line) => line !== '');
  }

  it('bash: commands from the command table', () => {
    expect(complete('tokenbroker', 'st')).toEqual(['status']);
    expect(complete('tokenbroker', 's')).toEqual(['status', 'setup-git', 'scheme', 'service']);
    expect(complete('tokenbroker', 'comp')).toEqual(['completion']);
    expect(complete('tokenbroker', '--v')).toEqual(['--version']);
  });

  it("bash: a command's options and subcommands, from its help text", () => {
    expect(complete('tokenbroker', 'status', '--')).toEqual(['--profile', '--json', '--socket', '--help']);
    expect(complete('tokenbroker', 'service', '')).toEqual(['install', 'uninstall', 'status', 'logs']);
    expect(complete('tokenbroker', 'service', 'install', '--d')).toEqual(['--dry-run']);
    expect(complete('tokenbroker', 'token', '--format', 'e')).toEqual(['env', 'exec-credential']);
  });

  it('bash: profile names from the config', () => {
    expect(complete('tokenbroker', 'token', '--profile', '')).toEqual(['work', 'personal']);
    expect(complete('tokenbroker', 'login', '--profile', 'p')).toEqual(['personal']);
  });

  it('zsh and fish: the scripts load in the real shells', async () => {
    const zsh = await runCli(['completion', 'zsh'], { env });
    const zshFile = path.join(path.dirname(bashScript), '_tokenbroker');
    fs.writeFileSync(zshFile, zsh.stdout);
    const z = spawnSync('zsh', ['-f', '-c', `autoload -U compinit && compinit -u -D && source '${zshFile}' && print -r -- \${_comps[tokenbroker]}`], {
      env,
      encoding: 'utf8',
    });
    expect(z.error, 'zsh is needed (Debian package zsh)').toBeUndefined();
    expect(z.stderr).toBe('');
    expect(z.stdout.trim()).toBe('_tokenbroker');

    const fish = await runCli(['completion', 'fish'], { env });
    const fishFile = path.join(path.dirname(bashScript), 'tokenbroker.fish');
    fs.writeFileSync(fishFile, fish.stdout);
    const f = spawnSync('fish', ['--no-config', '-c', `source '${fishFile}'; complete -C 'tokenbroker tok'; complete -C 'tokenbroker token --profile '`], {
      env,
      encoding: 'utf8',
    });
    expect(f.error, 'fish is needed (Debian package fish)').toBeUndefined();
    expect(f.stderr).toBe('');
    const offered = f.stdout.split('\n').map((line) => line.split('\t')[0]);
    expect(offered).toEqual(expect.arrayContaining(['token', 'work', 'personal']));
  });

  it('an unknown shell is a usage error', async () => {
    const result = await runCli(['completion', 'tcsh']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('expected one of bash, zsh, fish');
  });
});

describe('the man page', () => {
  it('is built from the help text and shipped through package.json "man"', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { man: string[]; files: string[]; scripts: Record<string, string> };
    expect(pkg.man).toEqual(['./man/tokenbroker.1']);
    const page = fs.readFileSync(path.join(ROOT, pkg.man[0]!), 'utf8');
    expect(pkg.scripts['build']).toContain('scripts/build-man.mjs');
    for (const command of ['status', 'token', 'service', 'completion', 'doctor']) {
      expect(page).toContain(`.SS ${command}`);
      const usage = (await runCli(['help', command])).stdout.split('\n')[0]!;
      expect(page).toContain(usage);
    }
    const rendered = spawnSync('man', ['-l', path.join(ROOT, pkg.man[0]!)], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '100' } });
    expect(rendered.error, 'man is needed (Debian package man-db)').toBeUndefined();
    expect(rendered.stdout).toMatch(/TOKENBROKER\(1\)/);
    expect(rendered.stdout).toContain('tokenbroker completion bash|zsh|fish');
  });
});

describe('colour', () => {
  const noDaemon = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, TOKENBROKER_SOCKET: path.join(tempDir(), 'none.sock'), TOKENBROKER_CONFIG: '' };
    delete env['FORCE_COLOR'];
    delete env['NO_COLOR'];
    delete env['NODE_DISABLE_COLORS'];
    // A user's terminal: node's colour rule (tty getColorDepth) gives 2 colours to an unknown CI and to a
    // missing TERM, as a CI machine has them.
    delete env['CI'];
    env['TERM'] = 'xterm-256color';
    return env;
  };

  it('none on a pipe', async () => {
    const result = await runCli(['status'], { env: noDaemon() });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^tokenbroker: no tokenbroker daemon/);
    expect(result.stderr).not.toContain(ESC);
  });

  it('on a terminal; not with NO_COLOR; on a pipe with FORCE_COLOR', async () => {
    const tty = onTerminal([process.execPath, CLI, 'status'], noDaemon());
    expect(tty.code).toBe(3);
    expect(tty.output).toContain(`${ESC}31m`);
    expect(tty.output).toContain('tokenbroker:');

    const plain = onTerminal([process.execPath, CLI, 'status'], { ...noDaemon(), NO_COLOR: '1' });
    expect(plain.output).toContain('tokenbroker:');
    expect(plain.output).not.toContain(ESC);

    const forced = await runCli(['status'], { env: { ...noDaemon(), FORCE_COLOR: '1' } });
    expect(forced.stderr).toContain(`${ESC}31m`);
  });
});

describe('status exit codes and "Did you mean"', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await startDaemon({ config: { profiles: { main: { issuer: 'https://login.example.com', clientId: 'abc' } } } });
  });
  afterAll(async () => {
    await daemon.stop();
  });

  it('status exits 5 when a profile needs sign-in, with its output as usual', async () => {
    const text = await runCli(['status', '--socket', daemon.socketPath]);
    expect(text.stdout).toMatch(/^main \*?\s+logged-out/m);
    expect(text.code).toBe(5);
    const json = await runCli(['status', '--json', '--profile', 'main', '--socket', daemon.socketPath]);
    expect(JSON.parse(json.stdout)).toMatchObject({ profiles: [{ name: 'main', state: 'logged-out' }] });
    expect(json.code).toBe(5);
  });

  it('a mistyped command or option gets a suggestion', async () => {
    const command = await runCli(['stauts']);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('unknown command "stauts". Did you mean "status"?');
    const option = await runCli(['status', '--jsno', '--socket', daemon.socketPath]);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain(`Unknown option '--jsno'. Did you mean "--json"?`);
    const far = await runCli(['frobnicate']);
    expect(far.stderr).not.toContain('Did you mean');
  });
});

describe('daemon logs', () => {
  it('JSON lines on a pipe; pretty lines (pino-pretty) on a terminal', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'run', 'broker.sock');
    const piped = await startDaemon({ dir: tempDir() });
    expect(
      piped
        .output()
        .split('\n')
        .find((l) => l.includes('listening')),
    ).toMatch(/^\{"level":"info"/);
    await piped.stop();

    const env = { ...process.env, TOKENBROKER_CONFIG: '', XDG_CONFIG_HOME: path.join(dir, 'xdg') };
    const child = spawn('script', ['-qec', `'${process.execPath}' '${CLI}' daemon --socket '${socket}' --log-level info`, '/dev/null'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    try {
      await waitFor(
        () => output.includes('listening'),
        30_000,
        () => output,
      );
      const line = output.split('\n').find((l) => l.includes('listening'))!;
      expect(line).not.toMatch(/^\{/);
      expect(line).toMatch(/INFO/);
    } finally {
      // stop the daemon itself (by the pid its status reports), so script(1) ends with it
      const status = await runCli(['status', '--json', '--socket', socket]);
      process.kill((JSON.parse(status.stdout) as { pid: number }).pid, 'SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
