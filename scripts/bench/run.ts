/**
 * tokenbroker's benchmark suite (issue 6). Every figure is measured side by side with its baseline in
 * the same run, repeated, and reported as medians and ratios (these machines are shared and noisy).
 *
 *   npm run bench          full run (~10 min): writes bench/results/*.json, updates bench/README.md
 *   npm run bench:smoke    seconds, small counts (CI): exits non-zero only on a breakage (errors, wrong
 *                          answers, a single-flight count ≠ 1, expired tokens), never on a slow ratio
 *
 * Options: --smoke, --only=handout,peer,single-flight,soak,cli,memory,scale,fleet, --out=DIR (where the JSON
 * goes; the full run defaults to bench/results, the smoke run to a temp dir).
 *
 * Runs inside `node scripts/with-keyring.mjs` (a throw-away Secret Service) with tsx. Needs the build
 * (dist/), Chromium (the browser login), and optionally oidc-agent-cli and hyperfine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import keytar from 'keytar';
import { connect } from '../../client/index.js';
import { cliStartup } from './cli.js';
import { fleet } from './fleet.js';
import { handout } from './handout.js';
import { agentInstalled, startAgent, type OidcAgent } from './lib/agent.js';
import { startAuthShim, type AuthShim } from './lib/auth-shim.js';
import type { BenchContext, SectionResult } from './lib/context.js';
import { CLI, RESULTS_DIR, ROOT, idpProfile, signedInBroker, startEnv, type BrokerHarness } from './lib/env.js';
import { table } from './lib/stats.js';
import { memory } from './memory.js';
import { scale } from './scale.js';
import { singleFlight } from './single-flight.js';
import { soak } from './soak.js';

const SECTIONS = ['memory', 'handout', 'peer', 'scale', 'cli', 'single-flight', 'soak', 'fleet'] as const;
type SectionName = (typeof SECTIONS)[number];

const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
const onlyArg = argv.find((a) => a.startsWith('--only='));
const only = new Set<string>(onlyArg ? onlyArg.slice('--only='.length).split(',') : SECTIONS);
const outArg = argv.find((a) => a.startsWith('--out='));
const outDir = outArg ? path.resolve(outArg.slice('--out='.length)) : smoke ? path.join(os.tmpdir(), 'tokenbroker-bench-smoke') : RESULTS_DIR;
for (const name of only) {
  if (!(SECTIONS as readonly string[]).includes(name)) {
    process.stderr.write(`bench: unknown section "${name}" (sections: ${SECTIONS.join(', ')})\n`);
    process.exit(2);
  }
}

const startedAt = Date.now();
const log = (message: string) => process.stderr.write(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);

// Bounded: a stuck run stops itself.
const watchdog = setTimeout(
  () => {
    process.stderr.write(`bench: still running after ${smoke ? 3 : 25} minutes; giving up\n`);
    process.exit(3);
  },
  (smoke ? 3 : 25) * 60_000,
);
watchdog.unref();

ensureBuilt();

const results: SectionResult[] = [];
const crashed: string[] = [];
let agent: OidcAgent | undefined;
let shim: AuthShim | undefined;
let main: BrokerHarness | undefined;

// 8. The fleet simulation is pure computation (no daemon, no IdP): first, while nothing else runs.
if (only.has('fleet')) {
  try {
    results.push(await fleet({ log, smoke, chartDir: smoke || outArg ? outDir : path.join(ROOT, 'bench') }));
  } catch (error) {
    log(`fleet failed: ${(error as Error).stack ?? String(error)}`);
    crashed.push(`fleet: ${(error as Error).message}`);
  }
}

const env = [...only].some((name) => name !== 'fleet') ? await startEnv() : undefined;
if (env) {
  try {
    log(`signing in daemon A through the browser (IdP ${env.idp.issuer})`);
    main = await signedInBroker(env, { profiles: { main: idpProfile(env.idp) } });
    const client = await connect({ socketPath: main.daemon.socketPath });
    const token = await client.getToken();
    await client.close();
    const ctx: BenchContext = { smoke, env, main, token, log };

    if (only.has('peer') || only.has('cli')) {
      try {
        ({ agent, shim } = await setupAgent(ctx));
      } catch (error) {
        log(`oidc-agent could not be set up: ${(error as Error).message}`);
        crashed.push(`peer setup: ${(error as Error).message}`);
      }
    }

    const run = async (name: SectionName | SectionName[], section: () => Promise<SectionResult | SectionResult[]>) => {
      const names = Array.isArray(name) ? name : [name];
      if (!names.some((n) => only.has(n))) return;
      try {
        const out = await section();
        for (const r of Array.isArray(out) ? out : [out]) if (only.has(r.name)) results.push(r);
      } catch (error) {
        log(`${names.join('+')} failed: ${(error as Error).stack ?? String(error)}`);
        crashed.push(`${names.join('+')}: ${(error as Error).message}`);
      }
    };
    await run('memory', () => memory(ctx));
    await run(['handout', 'peer'], async () => {
      const { handout: h, peer } = await handout(ctx, agent);
      return [h, peer];
    });
    await run('scale', () => scale(ctx));
    await run('cli', () => cliStartup(ctx, agent));
    await run('single-flight', () => singleFlight(ctx));
    await run('soak', () => soak(ctx));
  } finally {
    await agent?.stop().catch(() => undefined);
    await shim?.close().catch(() => undefined);
    await main?.stop().catch(() => undefined);
    await env.close();
  }
}

// ---- report ------------------------------------------------------------------------------------------

const machine = {
  date: new Date().toISOString(),
  smoke,
  node: process.version,
  platform: `${os.type()} ${os.release()} ${os.arch()}`,
  cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
  memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))),
  oidcAgent: agent?.version ?? null,
  commit: git(['rev-parse', '--short', 'HEAD']),
  dirty: git(['status', '--porcelain', '--', 'client', 'daemon', 'proto']) !== '',
  durationSeconds: Math.round((Date.now() - startedAt) / 1000),
};
fs.mkdirSync(outDir, { recursive: true });
for (const r of results) {
  fs.writeFileSync(path.join(outDir, `${r.name}.json`), JSON.stringify({ ...r, machine }, null, 2) + '\n');
}
const allTargets = results.flatMap((r) => r.targets);
// A subset run leaves the full run's summary alone (its sections' own files are rewritten).
if (!onlyArg || outArg) fs.writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify({ machine, targets: allTargets, crashed }, null, 2) + '\n');

const command = smoke ? 'npm run bench:smoke' : 'npm run bench';
const summary = [
  `Made by \`${command}\` on ${machine.date.slice(0, 10)}: ${machine.cpus}, ${machine.memory}, Node ${machine.node}, commit ${machine.commit}${machine.dirty ? ' (with uncommitted changes)' : ''}, ${machine.durationSeconds} s, load average at the end ${machine.loadAverageAtEnd.join(' / ')}.`,
  '',
  table(
    ['#', 'what', 'target', 'measured', ''],
    allTargets.map((t) => [
      t.what.split('.')[0]!,
      t.what.replace(/^\d+\.\s*/, ''),
      t.target,
      t.value,
      t.met ? 'met' : t.breakage ? '**BROKEN**' : '**not met**',
    ]),
  ),
].join('\n');
const body = results.map((r) => `### ${r.title}\n\n${r.report}`).join('\n\n');
process.stdout.write(`\n## Targets\n\n${summary}\n\n${body}\n`);
if (crashed.length) process.stdout.write(`\nSections that crashed:\n${crashed.map((c) => `- ${c}`).join('\n')}\n`);
process.stdout.write(`\nJSON: ${outDir}\n`);

const fleetResult = results.find((r) => r.name === 'fleet');
if (!smoke && !onlyArg && !outArg) {
  const others = results.filter((r) => r !== fleetResult);
  updateReadme(`## Latest results\n\n${summary}\n\n${others.map((r) => `#### ${r.title}\n\n${r.report}`).join('\n\n')}\n`);
}
// The fleet view is deterministic (seeded simulation): its own block, rewritten by any run that made it.
if (fleetResult && !smoke && !outArg) updateReadme(`### ${fleetResult.title}\n\n${fleetResult.report}\n`, 'fleet');

const broken = allTargets.filter((t) => t.breakage && !t.met);
if (broken.length || crashed.length) {
  process.stderr.write(
    `bench: ${broken.length} breakage(s)${crashed.length ? ` and ${crashed.length} crashed section(s)` : ''}:\n${broken.map((t) => `  ${t.what}: ${t.value} (target ${t.target})`).join('\n')}\n`,
  );
  process.exit(1);
}
process.exit(0);

// ---- helpers -------------------------------------------------------------------------------------------

/** oidc-agent with an account made from a refresh token of the same IdP (see lib/agent.ts, lib/auth-shim.ts). */
async function setupAgent(ctx: BenchContext): Promise<{ agent: OidcAgent | undefined; shim: AuthShim | undefined }> {
  if (!agentInstalled()) {
    log('oidc-agent is not installed (apt-get install oidc-agent-cli): the peer comparison is skipped');
    return { agent: undefined, shim: undefined };
  }
  log('setting up oidc-agent against the same IdP');
  // oidc-agent always asks for offline_access on refresh; oidc-provider keeps that scope on the refresh
  // token only when the sign-in had prompt=consent.
  const mint = await signedInBroker(ctx.env, { profiles: { peer: idpProfile(ctx.env.idp, { authorizationParams: { prompt: 'consent' } }) } });
  let refreshToken: string;
  try {
    const raw = await keytar.getPassword(mint.keychainService, 'peer');
    refreshToken = (JSON.parse(raw ?? '{}') as { refreshToken?: string }).refreshToken ?? '';
    if (!refreshToken) throw new Error('the sign-in for oidc-agent brought no refresh token');
  } finally {
    await mint.stop();
    await keytar.deletePassword(mint.keychainService, 'peer').catch(() => false);
  }
  const authShim = await startAuthShim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-bench-agent-'));
  const started = await startAgent({
    dir,
    issuer: ctx.env.idp.issuer,
    client: { clientId: ctx.env.idp.clientId, clientSecret: 'unused-public-client' },
    refreshToken,
    scopes: 'openid offline_access email',
    httpProxy: authShim.url,
  });
  await started.token(); // it answers
  return { agent: started, shim: authShim };
}

/** Builds (tsc) when dist/ is missing or older than a source file: the benchmarks measure dist/. */
function ensureBuilt(): void {
  const newest = (dir: string): number => {
    let latest = 0;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) latest = Math.max(latest, newest(full));
      else if (entry.name.endsWith('.ts')) latest = Math.max(latest, fs.statSync(full).mtimeMs);
    }
    return latest;
  };
  // tsc's output and the bundled bin (scripts/build-cli.mjs).
  const built = Math.min(...[CLI, path.join(ROOT, 'dist/daemon/cli/tokenbroker.cjs')].map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0)));
  const sources = Math.max(...['proto', 'client', 'daemon'].map((d) => newest(path.join(ROOT, d))));
  if (built >= sources) return;
  log('dist/ is missing or older than the sources: building (tsc, then the CLI bundle)');
  const result = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', ...['proto', 'client', 'daemon'].map((d) => path.join(ROOT, d))],
    { stdio: 'inherit' },
  );
  const bundled = result.status === 0 ? spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-cli.mjs')], { stdio: 'inherit' }) : result;
  if (bundled.status !== 0) {
    process.stderr.write('bench: the build failed\n');
    process.exit(1);
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

/** Replaces the part of bench/README.md between the results markers. */
function updateReadme(section: string, block = 'results'): void {
  const file = path.join(ROOT, 'bench', 'README.md');
  const start = `<!-- ${block}:start -->`;
  const end = `<!-- ${block}:end -->`;
  if (!fs.existsSync(file)) return;
  const text = fs.readFileSync(file, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a === -1 || b === -1) return;
  fs.writeFileSync(file, `${text.slice(0, a + start.length)}\n${section}\n${text.slice(b)}`);
}
