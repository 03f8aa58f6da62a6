/**
 * The interactive side of `profile add` / `profile remove`, driven through a real pseudo-terminal:
 * util-linux `script` runs the CLI on a pty, and the test types the answers as a user would — once the
 * question is on the screen (arrow keys and Enter for choices, text for inputs, Ctrl-C to give up).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config.js';
import { CLI, tempDir } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';

const ENTER = '\r';
const DOWN = '\x1b[B';
const CTRL_C = '\x03';

interface Terminal {
  /** Waits until `pattern` shows up after the previous answer, then types `keys`. */
  answer(pattern: RegExp, keys: string): Promise<void>;
  /** Everything shown so far, without escape sequences. */
  screen(): string;
  readonly exited: Promise<number | null>;
}

function onTerminal(args: readonly string[], env: NodeJS.ProcessEnv): Terminal {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // -e: the CLI's exit code; -f: flush at once; the typescript itself is thrown away.
  const child: ChildProcess = spawn('script', ['-qefc', command, '/dev/null'], {
    env: { ...process.env, ...env, TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const screen = () => output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  let seen = 0;
  return {
    screen,
    exited,
    async answer(pattern, keys) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const rest = screen().slice(seen);
        const match = pattern.exec(rest);
        if (match !== null) {
          seen += match.index + match[0].length;
          break;
        }
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`never asked ${pattern}; the screen:\n${screen()}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      child.stdin!.write(keys);
    },
  };
}

describe.skipIf(requireOrSkip(onPath('script'), 'needs script(1) from util-linux for a pseudo-terminal'))('the profile wizard on a terminal', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await startTestIdp();
  });
  afterAll(async () => {
    await idp?.close();
  });

  function userEnv() {
    const root = tempDir('tb-wizard-');
    const env = {
      HOME: path.join(root, 'home'),
      XDG_CONFIG_HOME: path.join(root, 'config'),
      XDG_DATA_HOME: path.join(root, 'data'),
      TOKENBROKER_CONFIG: '',
      TOKENBROKER_SOCKET: path.join(root, 'no-daemon.sock'),
      TOKENBROKER_KEYCHAIN_SERVICE: `tokenbroker-test-wizard-${process.pid}`,
    };
    fs.mkdirSync(env.HOME, { recursive: true });
    return { env, file: path.join(env.XDG_CONFIG_HOME, 'tokenbroker', 'config.json') };
  }

  it('asks for the provider, client, redirect and scopes, checks the provider, and writes the profile', async () => {
    const { env, file } = userEnv();
    const term = onTerminal(['profile', 'add', 'work'], env);
    await term.answer(/Provider of profile "work"/, ENTER); // OpenID Connect (the first choice)
    await term.answer(/Issuer URL/, `http://login.example.com${ENTER}`); // wrong on purpose: answers are checked
    await term.answer(/issuer: must use https/, `\x15${idp.issuer}${ENTER}`); // Ctrl-U clears the line
    await term.answer(/Client id/, `${idp.clientId}${ENTER}`);
    await term.answer(/Redirect after sign-in/, `${DOWN}${ENTER}`); // a custom scheme
    await term.answer(/Redirect URI/, ENTER); // the suggested com.example.broker:/callback
    await term.answer(/Scopes/, `\x15openid offline_access email${ENTER}`);
    await term.answer(/Register it now\?/, `n${ENTER}`);
    expect(await term.exited, term.screen()).toBe(0);
    expect(term.screen()).toMatch(/ok\s+pkce/);
    expect(term.screen()).toContain('tokenbroker scheme register --scheme com.example.broker');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      profiles: {
        work: { issuer: idp.issuer, clientId: idp.clientId, redirectUri: 'com.example.broker:/callback', scopes: ['openid', 'offline_access', 'email'] },
      },
    });
  });

  it('init on a terminal: the name, the wizard, then the service and the sign-in are offered', async () => {
    const { env, file } = userEnv();
    const term = onTerminal(['init'], env);
    await term.answer(/Profile name/, `\x15acme${ENTER}`);
    await term.answer(/Provider of profile "acme"/, ENTER);
    await term.answer(/Issuer URL/, `${idp.issuer}${ENTER}`);
    await term.answer(/Client id/, `${idp.clientId}${ENTER}`);
    await term.answer(/Redirect after sign-in/, ENTER); // loopback: no scheme handler needed
    await term.answer(/Scopes/, ENTER);
    await term.answer(/Install the user service/, `n${ENTER}`);
    await term.answer(/Sign in to acme now\?/, `n${ENTER}`);
    expect(await term.exited, term.screen()).toBe(0);
    expect(term.screen()).toContain('Added profile acme');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      profiles: { acme: { issuer: idp.issuer, clientId: idp.clientId, redirectUri: 'loopback' } },
      defaultProfile: 'acme',
    });
  });

  it('Ctrl-C at a question: exit 130 and nothing written', async () => {
    const { env, file } = userEnv();
    const term = onTerminal(['profile', 'add', 'work'], env);
    await term.answer(/Provider of profile/, CTRL_C);
    expect(await term.exited).toBe(130);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('remove asks first on a terminal; "no" keeps the profile, "yes" removes it', async () => {
    const { env, file } = userEnv();
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, JSON.stringify({ profiles: { work: { issuer: idp.issuer, clientId: idp.clientId } } }), { mode: 0o600 });
    const keep = onTerminal(['profile', 'remove', 'work'], env);
    await keep.answer(/Sign work out and remove it/, `n${ENTER}`);
    expect(await keep.exited).toBe(1);
    expect(loadConfig(file).profiles.has('work')).toBe(true);
    const remove = onTerminal(['profile', 'remove', 'work'], env);
    await remove.answer(/Sign work out and remove it/, `y${ENTER}`);
    expect(await remove.exited, remove.screen()).toBe(0);
    expect(loadConfig(file).profiles.has('work')).toBe(false);
  });
});
