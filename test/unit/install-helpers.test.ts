/**
 * The small pure parts behind installing and living with tokenbroker: the edit distance behind
 * "Did you mean", reading back the paths a unit, an agent plist or a desktop entry records, the node
 * path the service records, and the completion spec read from a help text.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandSpec } from '../../daemon/cli/completion-spec.js';
import { closest, didYouMean, editDistance } from '../../daemon/cli/suggest.js';
import { commandWords, pathsOfKey, plistProgramPaths } from '../../daemon/doctor/recorded-paths.js';
import { desktopEntry } from '../../daemon/scheme/linux.js';
import { renderLaunchdPlist, renderSystemdUnit } from '../../daemon/service/index.js';
import { invokedNodePath } from '../../daemon/system/node-path.js';

describe('editDistance and suggestions', () => {
  it('counts insertions, deletions, substitutions and a swap of neighbours as one each', () => {
    expect(editDistance('status', 'status')).toBe(0);
    expect(editDistance('statu', 'status')).toBe(1);
    expect(editDistance('statuss', 'status')).toBe(1);
    expect(editDistance('stotus', 'status')).toBe(1);
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests the nearest words only, ties kept, nothing far', () => {
    expect(closest('stauts', ['daemon', 'status', 'scheme'])).toEqual(['status']);
    expect(closest('serv', ['service', 'status'])).toEqual(['service']);
    expect(closest('--jsno', ['--json', '--profile'])).toEqual(['--json']);
    expect(closest('frobnicate', ['daemon', 'status'])).toEqual([]);
    expect(didYouMean('logni', ['login', 'logout'])).toBe(' Did you mean "login"?');
    expect(didYouMean('xyz', ['login'])).toBe('');
  });
});

describe('reading back recorded paths', () => {
  it('splits ExecStart/Exec words with quotes, escapes and %% as systemd and desktop entries write them', () => {
    expect(commandWords('"/opt/my node/bin/node" --max-old-space-size=128 /home/a%%b/cli.js daemon')).toEqual([
      '/opt/my node/bin/node',
      '--max-old-space-size=128',
      '/home/a%b/cli.js',
      'daemon',
    ]);
    expect(commandWords('/usr/bin/node "/x/\\"q\\"/cli.js" callback %u')).toEqual(['/usr/bin/node', '/x/"q"/cli.js', 'callback']);
  });

  it('finds the node and CLI paths in the rendered unit, plist and desktop entry', () => {
    const node = '/opt/my node/bin/node';
    const cli = '/home/a%b/lib/node_modules/tokenbroker/dist/daemon/cli/main.js';
    expect(pathsOfKey(renderSystemdUnit(node, cli), 'ExecStart')).toEqual([node, cli]);
    expect(plistProgramPaths(renderLaunchdPlist('/opt/a&b/node', cli, '/Users/ada'))).toEqual(['/opt/a&b/node', cli]);
    const entry = desktopEntry('com.example.app', [node, cli, 'callback']);
    expect(pathsOfKey(entry.replace(/\\\\/g, '\\'), 'Exec')).toEqual([node, cli]);
  });
});

describe('invokedNodePath', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-node-path-'));
  const stable = path.join(dir, 'bin');
  fs.mkdirSync(stable);
  fs.symlinkSync(process.execPath, path.join(stable, 'node'));

  it('is the first node on PATH that is this binary (how #!/usr/bin/env node found it), not its realpath', () => {
    expect(invokedNodePath({ PATH: `/nonexistent:relative/bin:${stable}:/usr/bin` }, 'node', process.execPath)).toBe(path.join(stable, 'node'));
  });

  it('is argv0 when that is an absolute path to this binary', () => {
    expect(invokedNodePath({ PATH: stable }, process.execPath, process.execPath)).toBe(process.execPath);
  });

  it('falls back to the binary when no PATH entry is it', () => {
    expect(invokedNodePath({ PATH: '/nonexistent' }, 'node', process.execPath)).toBe(process.execPath);
  });
});

describe('completion spec from a help text', () => {
  it('reads subcommands, options, and what their values are', () => {
    const spec = commandSpec(
      'widget',
      'a widget',
      `Usage: tokenbroker widget add|remove [--profile NAME] [--out FILE]
                          [--mode MODE] [--quiet]

Options:
  --profile NAME  the profile
  --out FILE      where to write
  --mode MODE     one of fast, slow, careful (default: fast)
  -q, --quiet     say less
  -h, --help      this help`,
    );
    expect(spec.subcommands).toEqual(['add', 'remove']);
    expect(spec.options).toEqual([
      { name: 'profile', value: { kind: 'profile' } },
      { name: 'out', value: { kind: 'file' } },
      { name: 'mode', value: { kind: 'choice', choices: ['fast', 'slow', 'careful'] } },
      { name: 'quiet', value: { kind: 'none' } },
      { name: 'help', value: { kind: 'none' } },
    ]);
  });
});
