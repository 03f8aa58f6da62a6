/**
 * 6. Memory: the daemon's resident set size when idle (signed in, restored from the keychain, nobody
 * connected) against a bare `node` process that only waits, measured side by side; then growth after
 * 1M token.get requests (16 clients through the client library).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { BenchContext, SectionResult, TargetCheck } from './lib/context.js';
import { ROOT, delay, idpProfile, rssBytes, startRestoredBroker, type BrokerHarness } from './lib/env.js';
import { runLoad } from './lib/load.js';
import { fmtRatio, mb, median, table } from './lib/stats.js';

/** Median of a few RSS samples over `ms`. */
export async function sampleRss(pid: number, ms = 1000, samples = 5): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(rssBytes(pid));
    await delay(ms / samples);
  }
  return median(values);
}

/** Anonymous (heap, stacks) and file-backed (binary, libraries) parts of the RSS (Linux smaps_rollup). */
export function rssParts(pid: number): { anon: number; file: number } {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { anon: kb('Anonymous'), file: kb('Rss') - kb('Anonymous') };
}

/** What each of the daemon's dependencies costs on its own: a node process that loads just it. */
const DEPENDENCIES: ReadonlyArray<readonly [string, string]> = [
  ['node-ipc', "await import('node-ipc');"],
  ['keytar (+ libsecret, one read)', "const k = (await import('keytar')).default; await k.getPassword('tokenbroker-bench-probe', 'none').catch(() => null);"],
  ['pino', "const { pino } = await import('pino'); pino({ level: 'info' }, process.stderr);"],
  ['got', "await import('got');"],
  ['jose', "await import('jose');"],
  ['p-queue', "await import('p-queue');"],
  ['open', "await import('open');"],
];

function startIdleNode(code: string): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', `${code} setInterval(() => {}, 1 << 30);`], {
    cwd: ROOT,
    stdio: 'ignore',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
}

/** Per-dependency RSS above bare node, all processes started together and sampled together. */
async function dependencyCosts(settleMs: number): Promise<Array<{ name: string; rss: number }>> {
  const children = DEPENDENCIES.map(([name, code]) => ({ name, child: startIdleNode(code) }));
  try {
    await delay(settleMs);
    const out: Array<{ name: string; rss: number }> = [];
    for (const { name, child } of children) out.push({ name, rss: await sampleRss(child.pid!, 500, 3) });
    return out;
  } finally {
    for (const { child } of children) child.kill('SIGKILL');
  }
}

export async function memory(ctx: BenchContext): Promise<SectionResult> {
  const total = ctx.smoke ? 20_000 : 1_000_000;
  const warm = ctx.smoke ? 5_000 : 100_000;
  const settleMs = ctx.smoke ? 1000 : 2000;
  const sample = (pid: number) => (ctx.smoke ? sampleRss(pid, 200, 3) : sampleRss(pid));
  ctx.log(`6. memory: idle RSS vs bare node, then ${total.toLocaleString('en-US')} requests`);
  const bare = startIdleNode('');
  const profiles = { profiles: { main: idpProfile(ctx.env.idp) } };
  const daemons: Array<{ key: string; label: string; harness: BrokerHarness }> = [];
  try {
    daemons.push({ key: 'default', label: 'daemon', harness: await startRestoredBroker(ctx.main.keychainService, profiles) });
    daemons.push({
      key: 'semi1',
      label: 'daemon, --max-semi-space-size=1',
      harness: await startRestoredBroker(ctx.main.keychainService, profiles, { env: { NODE_OPTIONS: '--max-semi-space-size=1' } }),
    });
    await delay(settleMs); // all settle
    const bareRss = await sample(bare.pid!);
    const bareParts = rssParts(bare.pid!);
    const rows: Record<
      string,
      {
        idle: number;
        idleParts: { anon: number; file: number };
        warm: number;
        after: number;
        afterParts: { anon: number; file: number };
        requests: number;
        failures: number;
        rps: number[];
      }
    > = {};
    for (const d of daemons) {
      const pid = d.harness.daemon.child.pid!;
      rows[d.key] = {
        idle: await sample(pid),
        idleParts: rssParts(pid),
        warm: 0,
        after: 0,
        afterParts: { anon: 0, file: 0 },
        requests: 0,
        failures: 0,
        rps: [],
      };
    }
    // The same load on each, phase by phase: first `warm` requests, then the rest.
    for (const [phase, count] of [
      ['warm', warm],
      ['after', total - warm],
    ] as const) {
      for (const d of daemons) {
        const r = await runLoad({ target: 'broker', socketPath: d.harness.daemon.socketPath, clients: 16, requests: count, warmupMs: 0 });
        const row = rows[d.key]!;
        row.requests += r.completed;
        row.failures += r.errors + r.connectErrors + r.wrongToken;
        row.rps.push(r.rps);
      }
      await delay(settleMs / 2);
      for (const d of daemons) rows[d.key]![phase] = await sample(d.harness.daemon.child.pid!);
    }
    for (const d of daemons) rows[d.key]!.afterParts = rssParts(d.harness.daemon.child.pid!);
    const deps = ctx.smoke ? [] : await dependencyCosts(3000);

    const def = rows['default']!;
    const growth = def.after - def.idle;
    const steady = def.after - def.warm;
    const idleRatio = def.idle / bareRss;
    const failures = Object.values(rows).reduce((n, r) => n + r.failures, 0);
    const targets: TargetCheck[] = [
      { what: '6. idle RSS vs bare node', target: '≤ 1.3×', value: `${fmtRatio(idleRatio)} (${mb(def.idle)} vs ${mb(bareRss)})`, met: idleRatio <= 1.3 },
      {
        what: `6. RSS growth after ${def.requests.toLocaleString('en-US')} requests`,
        target: '≤ 5 MB',
        value: `${mb(growth)} from idle; ${mb(steady)} after the first ${warm.toLocaleString('en-US')}`,
        met: growth <= 5 * 1024 * 1024,
      },
      { what: '6. failed requests during the load', target: '0', value: String(failures), met: failures === 0, breakage: true },
    ];
    const table1 = table(
      [
        'process',
        'idle RSS',
        'anon / file-backed',
        'vs bare',
        `after ${warm.toLocaleString('en-US')}`,
        `after ${def.requests.toLocaleString('en-US')}`,
        'growth (from idle / from warm)',
        'req/s',
      ],
      [
        ['bare node', mb(bareRss), `${mb(bareParts.anon)} / ${mb(bareParts.file)}`, '1.00×', '', '', '', ''],
        ...daemons.map((d) => {
          const r = rows[d.key]!;
          return [
            d.label,
            mb(r.idle),
            `${mb(r.idleParts.anon)} / ${mb(r.idleParts.file)}`,
            fmtRatio(r.idle / bareRss),
            mb(r.warm),
            mb(r.after),
            `${mb(r.after - r.idle)} / ${mb(r.after - r.warm)}`,
            r.rps.map((x) => Math.round(x).toLocaleString('en-US')).join(', '),
          ];
        }),
      ],
    );
    const table2 = deps.length
      ? table(
          ['a node process that loads only…', 'RSS', 'above bare node'],
          deps.map((d) => [d.name, mb(d.rss), mb(d.rss - bareRss)]),
        )
      : '';
    const report = [
      `Daemons restored from the keychain (one signed-in profile, nobody connected) and \`node -e "setInterval(() => {}, 1 << 30)"\`, started together and sampled together (median of ${ctx.smoke ? '3 samples over 0.2 s' : '5 samples over 1 s'}, /proc VmRSS). Then ${def.requests.toLocaleString('en-US')} token.get requests from 16 clients (client library) on each daemon. The second daemon runs with V8's young generation capped at 1 MB per semi-space (\`NODE_OPTIONS=--max-semi-space-size=1\`, what a service unit could set); the target is judged on the first, as shipped.`,
      '',
      table1,
      ...(table2 ? ['', 'Where the idle RSS comes from: each dependency alone, in a process of its own (same run):', '', table2] : []),
    ].join('\n');
    return {
      name: 'memory',
      title: '6. Memory: idle and after 1M requests',
      report,
      targets,
      data: { bareRss, bareParts, rows, dependencies: deps },
    };
  } finally {
    bare.kill('SIGKILL');
    for (const d of daemons) await d.harness.stop();
  }
}
