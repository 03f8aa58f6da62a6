/**
 * 5. `tokenbroker token` as a whole process (start Node, load the CLI, connect, hello, token.get, print,
 * exit) against `node -e 0` (start Node, exit) in the same run, runs interleaved. Also `tokenbroker
 * --version` (no socket) and, when installed, oidc-agent's `oidc-token`. hyperfine, when installed,
 * measures the two main commands once more as a cross-check. The import graph of `tokenbroker token`
 * is listed with a module-load hook and checked for the daemon's heavy dependencies.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OidcAgent } from './lib/agent.js';
import type { BenchContext, SectionResult, TargetCheck } from './lib/context.js';
import { BENCH_DIR, CLI, ROOT } from './lib/env.js';
import { fmt, fmtRatio, median, percentile, table } from './lib/stats.js';

/** Must never be loaded by `tokenbroker token`. */
const HEAVY = ['pino', 'got', 'keytar', 'node-ipc', 'jose', 'p-queue', 'open'];

interface Command {
  readonly key: string;
  readonly label: string;
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Written to stdin (git writes its request so); otherwise stdin is empty. */
  readonly input?: string;
}

/** The `tokenbroker` bin as package.json names it (the bundled fast entry since the CLI bundle). */
export const BIN = path.join(
  ROOT,
  (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['tokenbroker']!,
);

function timeRun(command: Command): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command.argv[0]!, command.argv.slice(1), {
      env: command.env,
      stdio: [command.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    child.stdin?.on('error', () => undefined).end(command.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, code, stdout, stderr });
    });
  });
}

export async function cliStartup(ctx: BenchContext, agent: OidcAgent | undefined): Promise<SectionResult> {
  const runs = ctx.smoke ? 6 : 40;
  const env = { ...process.env, TOKENBROKER_SOCKET: ctx.main.daemon.socketPath, NODE_OPTIONS: '' };
  const commands: Command[] = [
    { key: 'node', label: '`node -e 0`', argv: [process.execPath, '-e', '0'], env },
    { key: 'token', label: '`tokenbroker token`', argv: [process.execPath, BIN, 'token'], env },
    {
      key: 'execCredential',
      label: '`tokenbroker token --format exec-credential`',
      argv: [process.execPath, BIN, 'token', '--format', 'exec-credential'],
      env,
    },
    {
      key: 'gitCredential',
      label: '`tokenbroker git-credential get`',
      argv: [process.execPath, BIN, 'git-credential', '--profile', 'main', 'get'],
      env,
      input: 'protocol=https\nhost=git.example.com\n\n',
    },
    { key: 'tokenUnbundled', label: '`tokenbroker token`, unbundled (dist/daemon/cli/main.js, ES modules)', argv: [process.execPath, CLI, 'token'], env },
    { key: 'version', label: '`tokenbroker --version`', argv: [process.execPath, BIN, '--version'], env },
  ];
  if (agent) commands.push({ key: 'oidcToken', label: '`oidc-token` (oidc-agent 4.2.6)', argv: ['oidc-token', agent.account], env: { ...agent.env } });
  ctx.log(`5. CLI: ${runs} interleaved runs of ${commands.length} commands`);

  // Warm-up (page cache), and a correctness check: the token printed is the daemon's.
  for (const command of commands) {
    const r = await timeRun(command);
    if (r.code !== 0) throw new Error(`${command.label} failed (${r.code}): ${r.stderr}`);
    if (command.key === 'token' && r.stdout.trim() !== ctx.token.accessToken)
      throw new Error("tokenbroker token printed something other than the daemon's token");
  }
  const times: Record<string, number[]> = Object.fromEntries(commands.map((c) => [c.key, []]));
  const failures: string[] = [];
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? commands : [...commands].reverse();
    for (const command of order) {
      const r = await timeRun(command);
      if (r.code !== 0) failures.push(`${command.label}: exit ${r.code} ${r.stderr.trim().slice(0, 200)}`);
      times[command.key]!.push(r.ms);
    }
  }
  const base = median(times['node']!);
  const ratio = median(times['token']!) / base;
  // Paired: each token run against the node run of the same iteration.
  const pairedRatio = median(times['token']!.map((t, i) => t / times['node']![i]!));

  // The import graph.
  const traceFile = path.join(os.tmpdir(), `tb-bench-imports-${process.pid}.txt`);
  const traced = await timeRun({
    key: 'trace',
    label: 'trace',
    argv: [process.execPath, '--import', path.join(BENCH_DIR, 'trace-imports.mjs'), BIN, 'token'],
    env: { ...env, TRACE_IMPORTS_OUT: traceFile },
  });
  const modules = fs.existsSync(traceFile) ? fs.readFileSync(traceFile, 'utf8').trim().split('\n') : [];
  fs.rmSync(traceFile, { force: true });
  const ours = modules.filter((m) => m.startsWith('file:')).map((m) => path.relative(ROOT, new URL(m).pathname));
  const builtins = modules.filter((m) => m.startsWith('node:'));
  const heavy = ours.filter((m) => HEAVY.some((name) => m.includes(`node_modules/${name}/`)));
  const fromNodeModules = ours.filter((m) => m.includes('node_modules/'));

  let hyperfine: Record<string, { mean: number; median: number; stddev: number }> | undefined;
  if (!ctx.smoke && (await hasHyperfine())) hyperfine = await runHyperfine(commands.slice(0, 4), env);

  const targets: TargetCheck[] = [
    {
      what: '5. `tokenbroker token` vs `node -e 0`',
      target: '≤ 1.15×',
      value: `${fmtRatio(ratio)} (paired ${fmtRatio(pairedRatio)}${hyperfine ? `; hyperfine ${fmtRatio(hyperfine['token']!.median / hyperfine['node']!.median)}` : ''}; unbundled ${fmtRatio(median(times['tokenUnbundled']!) / base)})`,
      met: ratio <= 1.15,
    },
    ...(['execCredential', 'gitCredential'] as const).map((key) => {
      const r = median(times[key]!) / base;
      return {
        what: `5. \`tokenbroker ${key === 'execCredential' ? 'token --format exec-credential' : 'git-credential get'}\` vs \`node -e 0\``,
        target: '≤ 1.15×',
        value: `${fmtRatio(r)}${hyperfine?.[key] ? ` (hyperfine ${fmtRatio(hyperfine[key].median / hyperfine['node']!.median)})` : ''}`,
        met: r <= 1.15,
      };
    }),
    {
      what: '5. pino, got, keytar (and the other daemon deps) on the token path',
      target: 'none',
      value: heavy.length === 0 ? 'none' : heavy.join(', '),
      met: heavy.length === 0,
      breakage: true,
    },
    {
      what: '5. CLI runs failed',
      target: '0',
      value: String(failures.length + (traced.code === 0 ? 0 : 1)),
      met: failures.length === 0 && traced.code === 0,
      breakage: true,
    },
  ];
  const rows = commands.map((c) => {
    const t = times[c.key]!;
    return [c.label, fmt(median(t), 1), fmt(percentile(t, 0.1), 1), fmt(percentile(t, 0.9), 1), c.key === 'node' ? '1.00×' : fmtRatio(median(t) / base)];
  });
  const report = [
    `${runs} runs of each, interleaved (the order alternates every iteration), wall time from spawn to exit in ms, against daemon A's socket. \`tokenbroker\` is the bin package.json names (${path.relative(ROOT, BIN)}); the unbundled row runs tsc's output as the bin did before.`,
    '',
    table(['command', 'median', 'p10', 'p90', 'vs node -e 0'], rows),
    '',
    hyperfine
      ? `hyperfine cross-check (\`hyperfine -N --warmup 3 --runs 30\`, stdin empty, so git-credential gets \`--profile\`), medians: ${commands
          .slice(0, 4)
          .map((c) => `${c.label} ${fmt(hyperfine[c.key]!.median, 1)} ms (${fmtRatio(hyperfine[c.key]!.median / hyperfine['node']!.median)})`)
          .join(', ')}.`
      : 'hyperfine: not run (smoke run, or not installed).',
    '',
    `Import graph of \`tokenbroker token\`: ${ours.length} of our files (${fromNodeModules.length} from node_modules), builtins ${builtins.join(', ')}. Heavy daemon dependencies loaded: ${heavy.length === 0 ? 'none' : heavy.join(', ')}.`,
  ].join('\n');
  return {
    name: 'cli',
    title: '5. CLI: `tokenbroker token` as a whole process',
    report,
    targets,
    data: { runs, times, ratio, pairedRatio, hyperfine, modules: ours, builtins, failures },
  };
}

function hasHyperfine(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('hyperfine', ['--version'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('close', (code) => resolve(code === 0));
  });
}

function runHyperfine(
  commands: readonly Command[],
  env: NodeJS.ProcessEnv,
): Promise<Record<string, { mean: number; median: number; stddev: number }> | undefined> {
  const out = path.join(os.tmpdir(), `tb-bench-hyperfine-${process.pid}.json`);
  const quote = (a: string) => (/^[\w./=:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const args = ['-N', '--warmup', '3', '--runs', '30', '--export-json', out, ...commands.map((c) => c.argv.map(quote).join(' '))];
  return new Promise((resolve) => {
    const child = spawn('hyperfine', args, { env, stdio: 'ignore' });
    child.once('error', () => resolve(undefined));
    child.once('close', (code) => {
      if (code !== 0 || !fs.existsSync(out)) return resolve(undefined);
      const json = JSON.parse(fs.readFileSync(out, 'utf8')) as { results: Array<{ mean: number; median: number; stddev: number }> };
      fs.rmSync(out, { force: true });
      resolve(
        Object.fromEntries(
          commands.map((c, i) => [
            c.key,
            { mean: json.results[i]!.mean * 1000, median: json.results[i]!.median * 1000, stddev: json.results[i]!.stddev * 1000 },
          ]),
        ),
      );
    });
  });
}
