/**
 * Registering the custom redirect scheme (RFC 8252 §7.1) with the OS. On Linux this is real: the
 * installed xdg-mime writes the association and xdg-open runs our handler with the URL. macOS and
 * Windows are checked as generated text (what register would write and run there).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerScheme, schemeOf, schemeStatus, unregisterScheme, validateScheme } from '../../daemon/scheme/index.js';
import { desktopEntry, quoteExecArgument, removeMimeAssociation } from '../../daemon/scheme/linux.js';
import { appleScriptSource, bundleIdentifier, infoPlist, LSREGISTER } from '../../daemon/scheme/macos.js';
import { parseRegQueryDefault, windowsCommandLine } from '../../daemon/scheme/windows.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';

const run = promisify(execFile);
const SCHEME = 'com.example.test';

describe('schemeOf', () => {
  it('takes the scheme of a custom-scheme redirect URI, in lower case', () => {
    expect(schemeOf('com.example.broker:/callback')).toBe('com.example.broker');
    expect(schemeOf('Com.Example.Broker:/callback?x=1')).toBe('com.example.broker');
    expect(schemeOf('com.example.broker-2+x:/cb')).toBe('com.example.broker-2+x');
  });

  it('refuses loopback redirects, non-URIs and schemes that are not reverse domain names (RFC 8252 §7.1)', () => {
    expect(() => schemeOf('http://127.0.0.1/callback')).toThrow(/loopback/);
    expect(() => schemeOf('/callback')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'redirectUri' }));
    expect(() => schemeOf('myapp:/callback')).toThrow(/reverse domain name/);
    expect(() => validateScheme('com.example;rm -rf')).toThrow(/not a URI scheme/);
    expect(() => validateScheme('javascript')).toThrow(/not a private-use scheme/);
  });
});

describe('Linux desktop entry', () => {
  it('quotes Exec arguments as the Desktop Entry spec says', () => {
    expect(quoteExecArgument('/usr/bin/node', 'x')).toBe('/usr/bin/node');
    expect(quoteExecArgument('/opt/my apps/cli.js', 'x')).toBe('"/opt/my apps/cli.js"');
    expect(quoteExecArgument('/a/$HOME/`x`/"q"/b\\c', 'x')).toBe('"/a/\\$HOME/\\`x\\`/\\"q\\"/b\\\\c"');
    expect(quoteExecArgument('/a/100%', 'x')).toBe('/a/100%%');
    expect(quoteExecArgument('', 'x')).toBe('""');
    expect(() => quoteExecArgument('/a\nb', 'cliPath')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'cliPath' }));
  });

  it('applies the string escape after quoting: a literal backslash is written as four', () => {
    expect(desktopEntry(SCHEME, ['/a\\b/node', 'callback'])).toContain('Exec="/a\\\\\\\\b/node" callback %u\n');
  });

  it('declares the scheme handler and stays out of menus', () => {
    expect(desktopEntry(SCHEME, ['/usr/bin/node', '/opt/tb/cli.js', 'callback'])).toBe(
      [
        '[Desktop Entry]',
        'Type=Application',
        'Name=tokenbroker (com.example.test)',
        'Comment=Hands com.example.test: sign-in redirects to the tokenbroker daemon',
        'NoDisplay=true',
        'Terminal=false',
        'MimeType=x-scheme-handler/com.example.test;',
        'Exec=/usr/bin/node /opt/tb/cli.js callback %u',
        '',
      ].join('\n'),
    );
  });

  it('removes only our application from mimeapps.list', () => {
    const before = [
      '[Default Applications]',
      'text/html=firefox.desktop',
      'x-scheme-handler/com.example.test=tokenbroker-com.example.test.desktop',
      'x-scheme-handler/com.example.other=tokenbroker-com.example.test.desktop',
      '',
      '[Added Associations]',
      'x-scheme-handler/com.example.test=other.desktop;tokenbroker-com.example.test.desktop;',
      '',
      '[Removed Associations]',
      'x-scheme-handler/com.example.test=tokenbroker-com.example.test.desktop;',
      '',
    ].join('\n');
    const { text, changed } = removeMimeAssociation(before, 'x-scheme-handler/com.example.test', 'tokenbroker-com.example.test.desktop');
    expect(changed).toBe(true);
    expect(text).toBe(
      [
        '[Default Applications]',
        'text/html=firefox.desktop',
        'x-scheme-handler/com.example.other=tokenbroker-com.example.test.desktop',
        '',
        '[Added Associations]',
        'x-scheme-handler/com.example.test=other.desktop;',
        '',
        '[Removed Associations]',
        'x-scheme-handler/com.example.test=tokenbroker-com.example.test.desktop;',
        '',
      ].join('\n'),
    );
    expect(removeMimeAssociation(text, 'x-scheme-handler/com.example.test', 'tokenbroker-com.example.test.desktop')).toEqual({ text, changed: false });
  });
});

describe.skipIf(
  process.platform !== 'linux' || requireOrSkip(onPath('xdg-mime') && onPath('xdg-open'), 'scheme: needs xdg-mime and xdg-open (apt-get install xdg-utils)'),
)('Linux, with the real xdg-mime and xdg-open', () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let desktopFile: string;
  let mimeapps: string;
  const otherLines = [
    '[Default Applications]',
    'text/html=firefox.desktop',
    'x-scheme-handler/https=firefox.desktop',
    '',
    '[Added Associations]',
    'text/plain=gedit.desktop;',
    '',
  ];

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenbroker-scheme-'));
    // A clean desktop-less session: only what xdg-utils needs, nothing of the real user's.
    env = {
      PATH: process.env['PATH'],
      HOME: path.join(root, 'home'),
      XDG_DATA_HOME: path.join(root, 'data'),
      XDG_CONFIG_HOME: path.join(root, 'config'),
      XDG_DATA_DIRS: path.join(root, 'system'),
      DISPLAY: ':99',
      BROWSER: '/bin/false',
    };
    desktopFile = path.join(root, 'data', 'applications', 'tokenbroker-com.example.test.desktop');
    mimeapps = path.join(root, 'config', 'mimeapps.list');
    fs.mkdirSync(path.dirname(mimeapps), { recursive: true });
    fs.writeFileSync(mimeapps, otherLines.join('\n'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** A handler that writes the arguments it gets, one per line, to a file. */
  function recorder(): { command: string[]; received: string } {
    const script = path.join(root, 'record-url.sh');
    const received = path.join(root, 'received.txt');
    fs.writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$@" > '${received}'\n`, { mode: 0o755 });
    return { command: [script], received };
  }

  it('registers, so that xdg-open hands the URL to the handler; status sees it; unregister leaves no trace', async () => {
    const { command, received } = recorder();
    expect(await schemeStatus(SCHEME, { env })).toMatchObject({ registered: false, details: expect.stringMatching(/No handler/) as unknown });

    const report = await registerScheme(SCHEME, { command, env });
    expect(report).toMatchObject({ action: 'register', scheme: SCHEME, platform: 'linux', dryRun: false, handler: [...command, '<url>'] });
    expect(report.filesWritten.map((f) => f.path)).toEqual([desktopFile]);
    expect(report.commands[0]).toMatchObject({
      argv: ['xdg-mime', 'default', 'tokenbroker-com.example.test.desktop', 'x-scheme-handler/com.example.test'],
      ran: true,
      exitCode: 0,
    });
    expect(fs.readFileSync(desktopFile, 'utf8')).toContain(`Exec=${command[0]} %u\n`);
    expect(fs.readFileSync(mimeapps, 'utf8')).toContain('x-scheme-handler/com.example.test=tokenbroker-com.example.test.desktop');

    const status = await schemeStatus(SCHEME, { env });
    expect(status).toMatchObject({ registered: true, handler: 'tokenbroker-com.example.test.desktop' });
    expect(status.details).toContain(desktopFile);

    // The OS side for real: xdg-open runs the registered handler with the URL as one argument.
    const url = `${SCHEME}:/callback?x=1&state=a%20b`;
    await run('xdg-open', [url], { env });
    expect(fs.readFileSync(received, 'utf8')).toBe(`${url}\n`);

    const removed = await unregisterScheme(SCHEME, { env });
    expect(removed.filesRemoved).toEqual([desktopFile]);
    expect(removed.filesWritten.map((f) => f.path)).toEqual([mimeapps]);
    expect(fs.existsSync(desktopFile)).toBe(false);
    const after = fs.readFileSync(mimeapps, 'utf8');
    expect(after).not.toContain('tokenbroker');
    expect(after).toBe(otherLines.join('\n')); // byte for byte what was there before
    expect(await schemeStatus(SCHEME, { env })).toMatchObject({ registered: false });

    // Unregistering again finds nothing to do.
    const again = await unregisterScheme(SCHEME, { env });
    expect(again.filesRemoved).toEqual([]);
    expect(again.filesWritten).toEqual([]);
  });

  it('points Exec at the absolute node and CLI paths by default', async () => {
    const cliPath = path.join(root, 'dist', 'cli', 'main.js');
    await registerScheme(SCHEME, { cliPath, nodePath: '/opt/node 24/bin/node', env });
    expect(fs.readFileSync(desktopFile, 'utf8')).toContain(`Exec="/opt/node 24/bin/node" ${cliPath} callback %u\n`);
    await registerScheme(SCHEME, { cliPath, env });
    expect(fs.readFileSync(desktopFile, 'utf8')).toContain(`Exec=${process.execPath} ${cliPath} callback %u\n`);
  });

  it('changes nothing in a dry run and says what it would do', async () => {
    const report = await registerScheme(SCHEME, { cliPath: '/opt/tb/cli.js', nodePath: '/usr/bin/node', env, dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.filesWritten).toEqual([{ path: desktopFile, contents: desktopEntry(SCHEME, ['/usr/bin/node', '/opt/tb/cli.js', 'callback']) }]);
    expect(report.commands).toEqual([
      { argv: ['xdg-mime', 'default', 'tokenbroker-com.example.test.desktop', 'x-scheme-handler/com.example.test'], ran: false },
    ]);
    expect(fs.existsSync(desktopFile)).toBe(false);
    expect(fs.readFileSync(mimeapps, 'utf8')).toBe(otherLines.join('\n'));
  });

  it('reports another default handler, and a registration whose desktop file is gone', async () => {
    const { command } = recorder();
    await registerScheme(SCHEME, { command, env });
    fs.rmSync(desktopFile);
    expect(await schemeStatus(SCHEME, { env })).toMatchObject({ registered: false, details: expect.stringMatching(/is missing.*register/) as unknown });

    // xdg-mime only names handlers whose desktop file exists.
    const other = path.join(path.dirname(desktopFile), 'someone-else.desktop');
    fs.writeFileSync(other, '[Desktop Entry]\nType=Application\nName=Other\nExec=/bin/true %u\nMimeType=x-scheme-handler/com.example.test;\n');
    await run('xdg-mime', ['default', 'someone-else.desktop', 'x-scheme-handler/com.example.test'], { env });
    expect(await schemeStatus(SCHEME, { env })).toMatchObject({ registered: false, handler: 'someone-else.desktop' });
    // Unregister does not remove another application's association.
    await unregisterScheme(SCHEME, { env });
    expect(fs.readFileSync(mimeapps, 'utf8')).toContain('x-scheme-handler/com.example.test=someone-else.desktop');
  });

  it('runs commands from PATH, so a failing xdg-mime is reported with its output', async () => {
    const bin = path.join(root, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'xdg-mime'), '#!/bin/sh\necho "xdg-mime: cannot do that" >&2\nexit 4\n', { mode: 0o755 });
    const error = await registerScheme(SCHEME, { command: ['/bin/true'], env: { ...env, PATH: `${bin}:${env['PATH']}` } }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      message: expect.stringMatching(/xdg-mime default .* failed \(exit 4\): xdg-mime: cannot do that\. Install xdg-utils/) as unknown,
    });
  });

  it('needs an absolute CLI path', async () => {
    await expect(registerScheme(SCHEME, { env })).rejects.toMatchObject({ code: 'BAD_REQUEST', field: 'cliPath' });
    await expect(registerScheme(SCHEME, { cliPath: 'dist/cli/main.js', env })).rejects.toMatchObject({ field: 'cliPath' });
    await expect(registerScheme(SCHEME, { command: ['record.sh'], env })).rejects.toMatchObject({ field: 'command' });
  });
});

describe('macOS handler (generated, not run here)', () => {
  const command: [string, string, string] = ['/usr/local/bin/node', '/Users/ada/tb/dist/cli/main.js', 'callback'];

  it('is an AppleScript applet that receives the URL through "open location" and quotes every word', () => {
    const source = appleScriptSource(SCHEME, command);
    expect(source).toContain('on open location this_URL');
    expect(source).toContain(
      'do shell script quoted form of "/usr/local/bin/node" & " " & quoted form of "/Users/ada/tb/dist/cli/main.js" & " " & quoted form of "callback" & " " & quoted form of this_URL',
    );
    expect(appleScriptSource(SCHEME, ['/Users/a "b"\\c/node'])).toContain('quoted form of "/Users/a \\"b\\"\\\\c/node"');
    expect(() => appleScriptSource(SCHEME, ['/a\nb'])).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'command[0]' }));
  });

  it('has an Info.plist that claims the scheme, hides from the Dock and keeps the applet executable', () => {
    const plist = infoPlist(SCHEME);
    expect(bundleIdentifier('com.example.a+b')).toBe('com.example.a-b.tokenbroker-callback');
    expect(plist).toContain('<key>CFBundleIdentifier</key>\n\t<string>com.example.test.tokenbroker-callback</string>');
    expect(plist).toContain('<key>CFBundleExecutable</key>\n\t<string>applet</string>');
    expect(plist).toContain('<key>LSUIElement</key>\n\t<true/>');
    expect(plist).toMatch(/<key>CFBundleURLSchemes<\/key>\s*<array>\s*<string>com\.example\.test<\/string>\s*<\/array>/);
  });

  it.skipIf(requireOrSkip(spawnSync('python3', ['-c', 'import plistlib']).status === 0, 'scheme: needs python3 (plistlib) to parse the plist'))(
    'is a well-formed property list',
    () => {
      const parsed = spawnSync('python3', ['-c', 'import json,plistlib,sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'], {
        input: infoPlist(SCHEME),
        encoding: 'utf8',
      });
      expect(parsed.status).toBe(0);
      expect(JSON.parse(parsed.stdout)).toMatchObject({
        CFBundleIdentifier: 'com.example.test.tokenbroker-callback',
        CFBundleExecutable: 'applet',
        LSUIElement: true,
        CFBundleURLTypes: [{ CFBundleURLSchemes: ['com.example.test'] }],
      });
    },
  );

  it.skipIf(process.platform === 'darwin')('register off macOS reports the osacompile, codesign and lsregister steps and changes nothing', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenbroker-mac-home-'));
    try {
      const report = await registerScheme(SCHEME, { platform: 'darwin', cliPath: command[1], nodePath: command[0], env: { HOME: home } });
      const app = path.join(home, 'Applications', 'tokenbroker-com.example.test.app');
      expect(report.dryRun).toBe(true);
      expect(report.commands.map((c) => [c.argv[0], c.argv[1], c.ran])).toEqual([
        ['osacompile', '-o', false],
        ['codesign', '--force', false],
        [LSREGISTER, '-f', false],
      ]);
      expect(report.commands[0]?.argv[2]).toBe(app);
      expect(report.filesWritten.map((f) => path.basename(f.path))).toEqual(['tokenbroker-com.example.test.applescript', 'Info.plist']);
      expect(report.filesWritten[1]?.path).toBe(path.join(app, 'Contents', 'Info.plist'));
      expect(report.notes.join(' ')).toMatch(/nothing was changed.*Apple Event.*not been tested/s);
      expect(fs.readdirSync(home)).toEqual([]);
      const status = await schemeStatus(SCHEME, { platform: 'darwin', env: { HOME: home } });
      expect(status.registered).toBe(false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('Windows handler (generated, not run here)', () => {
  it('builds the HKCU URL protocol keys as reg add commands, and reg delete to undo them', async () => {
    const report = await registerScheme(SCHEME, {
      platform: 'win32',
      nodePath: 'C:\\Program Files\\nodejs\\node.exe',
      cliPath: 'C:\\Users\\ada\\tb\\dist\\cli\\main.js',
      env: { USERPROFILE: 'C:\\Users\\ada' },
    });
    expect(report.dryRun).toBe(process.platform !== 'win32');
    expect(report.commands.map((c) => c.argv)).toEqual([
      ['reg', 'add', 'HKCU\\Software\\Classes\\com.example.test', '/ve', '/t', 'REG_SZ', '/d', 'URL:tokenbroker (com.example.test)', '/f'],
      ['reg', 'add', 'HKCU\\Software\\Classes\\com.example.test', '/v', 'URL Protocol', '/t', 'REG_SZ', '/d', '', '/f'],
      [
        'reg',
        'add',
        'HKCU\\Software\\Classes\\com.example.test\\shell\\open\\command',
        '/ve',
        '/t',
        'REG_SZ',
        '/d',
        '"C:\\Program Files\\nodejs\\node.exe" "C:\\Users\\ada\\tb\\dist\\cli\\main.js" callback "%1"',
        '/f',
      ],
    ]);
    const removed = await unregisterScheme(SCHEME, { platform: 'win32', env: {} });
    expect(removed.commands.map((c) => c.argv)).toEqual([['reg', 'delete', 'HKCU\\Software\\Classes\\com.example.test', '/f']]);
  });

  it('refuses a path with a double quote, and reads the handler back from reg query', () => {
    expect(() => windowsCommandLine(['C:\\a"b\\node.exe'])).toThrow(expect.objectContaining({ field: 'command[0]' }));
    const output =
      '\r\nHKEY_CURRENT_USER\\Software\\Classes\\com.example.test\\shell\\open\\command\r\n    (Default)    REG_SZ    "C:\\node.exe" "C:\\cli.js" callback "%1"\r\n\r\n';
    expect(parseRegQueryDefault(output)).toBe('"C:\\node.exe" "C:\\cli.js" callback "%1"');
    expect(parseRegQueryDefault('ERROR: The system was unable to find the specified registry key or value.')).toBeUndefined();
  });
});
