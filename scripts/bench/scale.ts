/**
 * 7. Scale: a daemon with 1000 signed-in profiles (1000 armed refresh timers) and 1000 idle connected
 * clients, handing out tokens side by side with daemon A (one profile, no idle clients) and the floor.
 *
 * The 1000 sessions are real tokens from the IdP: daemon A's keychain entry (written by its browser
 * login) is copied into 1000 accounts (p0000…p0999) under this daemon's own keychain service; the
 * daemon restores them at start and arms a refresh timer for each. The entries are deleted afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import keytar from 'keytar';
import { connect } from '../../client/index.js';
import { CONCURRENCY, med, measureRounds, pairedRatio, total, type System } from './handout.js';
import type { BenchContext, SectionResult, TargetCheck } from './lib/context.js';
import { BENCH_DIR, ROOT, delay, idpProfile, startRestoredBroker, type BrokerHarness } from './lib/env.js';
import { startFloor } from './lib/load.js';
import { sampleRss } from './memory.js';
import { fmt, fmtRatio, mb, table } from './lib/stats.js';

const profileName = (i: number) => `p${String(i).padStart(4, '0')}`;

export async function scale(ctx: BenchContext): Promise<SectionResult> {
  const profiles = ctx.smoke ? 50 : 1000;
  const idleClients = ctx.smoke ? 50 : 1000;
  const rounds = ctx.smoke ? 1 : 3;
  const durationMs = ctx.smoke ? 300 : 2000;
  const concurrency = ctx.smoke ? [16] : CONCURRENCY;
  const service = `tokenbroker-bench-scale-${randomBytes(6).toString('hex')}`;
  ctx.log(`7. scale: ${profiles} profiles + ${idleClients} idle clients; seeding the keychain`);
  const entry = await keytar.getPassword(ctx.main.keychainService, 'main');
  if (!entry) throw new Error('daemon A has no keychain entry to copy');
  const seedStart = Date.now();
  for (let i = 0; i < profiles; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, profiles - i) }, (_, j) => keytar.setPassword(service, profileName(i + j), entry)));
  }
  const seedMs = Date.now() - seedStart;
  const config = {
    defaultProfile: profileName(0),
    profiles: Object.fromEntries(Array.from({ length: profiles }, (_, i) => [profileName(i), idpProfile(ctx.env.idp)])),
  };
  let big: BrokerHarness | undefined;
  let single: BrokerHarness | undefined;
  let holder: ChildProcess | undefined;
  try {
    const startAt = Date.now();
    big = await startRestoredBroker(service, config, { startTimeoutMs: 120_000 });
    const startupMs = Date.now() - startAt;
    single = await startRestoredBroker(ctx.main.keychainService, { profiles: { main: idpProfile(ctx.env.idp) } });
    // Restored: the daemon's log line per session, and a token.get per profile answered with the copied token.
    const restoredLogs = big.daemon.logs().filter((l) => l['msg'] === 'session restored from the keychain').length;
    const client = await connect({ socketPath: big.daemon.socketPath, timeoutMs: 30_000 });
    const expected = ctx.token.accessToken;
    let answered = 0;
    for (let i = 0; i < profiles; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, profiles - i) }, (_, j) =>
          client.getToken({ profile: profileName(i + j) }).then(
            (t) => t.accessToken === expected,
            () => false,
          ),
        ),
      );
      answered += batch.filter(Boolean).length;
    }
    // Armed timers: `status` shows nextRefreshAt per profile, when its answer fits in a frame (64 KiB).
    let active = -1;
    let armed = -1;
    let statusError: string | undefined;
    try {
      const status = await client.status();
      active = status.profiles.filter((p) => p.state === 'active').length;
      armed = status.profiles.filter((p) => p.nextRefreshAt !== undefined).length;
    } catch (error) {
      statusError = `${(error as { code?: string }).code ?? ''}: ${(error as Error).message}`;
    }
    await client.close();
    await delay(1500);
    const [bigIdle, singleIdle] = [await sampleRss(big.daemon.child.pid!), await sampleRss(single.daemon.child.pid!)];

    ctx.log(
      `  ${restoredLogs}/${profiles} restored, ${answered} answered token.get, status: ${statusError ?? `${active} active, ${armed} armed`} (start-up ${startupMs} ms); connecting ${idleClients} idle clients`,
    );
    holder = spawn(
      process.execPath,
      [path.join(BENCH_DIR, 'idle-clients.mjs'), pathToFileURL(path.join(ROOT, 'dist/client/index.js')).href, big.daemon.socketPath, String(idleClients)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    // "ready N": N clients connected and through hello (`status` cannot count them: see above).
    const connected = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('idle clients did not connect within 60 s')), 60_000);
      holder!.stdout!.setEncoding('utf8').on('data', (c: string) => {
        const ready = /ready (\d+)/.exec(c);
        if (ready) {
          clearTimeout(timer);
          resolve(Number(ready[1]));
        }
      });
      holder!.once('exit', (code) => reject(new Error(`idle clients exited with ${code}`)));
    });
    await delay(1000);
    const bigWithClients = await sampleRss(big.daemon.child.pid!);

    ctx.log(`  hand-out: ${rounds} round(s), floor vs A vs the big daemon`);
    const token = ctx.token;
    const floor = await startFloor(token);
    const systems: System[] = [
      { key: 'floor', label: 'floor', config: { target: 'floor', socketPath: floor.socketPath, expectToken: token.accessToken } },
      { key: 'single', label: 'daemon, 1 profile', config: { target: 'broker', socketPath: single.daemon.socketPath, expectToken: token.accessToken } },
      {
        key: 'big',
        label: `daemon, ${profiles} profiles + ${idleClients} idle clients`,
        config: { target: 'broker', socketPath: big.daemon.socketPath, profiles, expectToken: token.accessToken },
      },
    ];
    let samples;
    try {
      samples = await measureRounds(systems, { rounds, durationMs, warmupMs: ctx.smoke ? 100 : 300, concurrency, log: ctx.log });
    } finally {
      await floor.stop();
    }

    const perProfile = (bigIdle - singleIdle) / (profiles - 1);
    const perClient = (bigWithClients - bigIdle) / idleClients;
    const targets: TargetCheck[] = [
      {
        what: '7. profiles restored (log) and answering token.get with the real token',
        target: `${profiles}/${profiles}`,
        value: `${restoredLogs} restored, ${answered} answered`,
        met: restoredLogs === profiles && answered === profiles,
        breakage: true,
      },
      {
        what: '7. `status` lists every profile with its refresh timer armed',
        target: `${profiles}/${profiles}`,
        value: statusError === undefined ? `${active} active, ${armed} armed` : `status failed (${statusError.slice(0, 120)})`,
        met: statusError === undefined && active === profiles && armed === profiles,
        // Not a breakage of the hand-out: status with ~200+ profiles exceeds the protocol's 64 KiB frame.
        breakage: statusError === undefined && (active !== profiles || armed !== profiles),
      },
      { what: '7. idle clients connected (hello done)', target: `${idleClients}`, value: String(connected), met: connected === idleClients, breakage: true },
    ];
    const rows: string[][] = [];
    for (const c of concurrency) {
      const f = samples['floor']![c];
      const s = samples['single']![c];
      const b = samples['big']![c];
      const vsSingle = pairedRatio(b, s, 'rps');
      const vsFloor = pairedRatio(b, f, 'rps');
      const p99VsFloor = pairedRatio(b, f, 'p99');
      const errors = total(b, 'connectErrors') + total(b, 'errors') + total(b, 'wrongToken');
      rows.push([
        String(c),
        fmt(med(f, 'rps'), 0),
        fmt(med(s, 'rps'), 0),
        fmt(med(b, 'rps'), 0),
        fmtRatio(vsSingle),
        fmtRatio(vsFloor),
        `${fmt(med(s, 'p99'), 3)} / ${fmt(med(b, 'p99'), 3)}`,
        fmtRatio(p99VsFloor),
        `${fmt(med(b, 'max'))}`,
        String(errors),
      ]);
      targets.push(
        {
          what: `7. big daemon vs 1-profile daemon, ${c} client${c > 1 ? 's' : ''}`,
          target: 'unchanged (≥ 0.9×)',
          value: fmtRatio(vsSingle),
          met: vsSingle >= 0.9,
        },
        { what: `7. big daemon vs floor, ${c} client${c > 1 ? 's' : ''}`, target: '≥ 0.80× (as in 1)', value: fmtRatio(vsFloor), met: vsFloor >= 0.8 },
        { what: `7. big daemon p99 vs floor, ${c} client${c > 1 ? 's' : ''}`, target: '≤ 2× (as in 1)', value: fmtRatio(p99VsFloor), met: p99VsFloor <= 2 },
        { what: `7. errors, ${c} client${c > 1 ? 's' : ''}`, target: '0', value: String(errors), met: errors === 0, breakage: true },
      );
    }
    const report = [
      `${profiles} profiles restored from the keychain (daemon A's real tokens copied into ${profiles} accounts; seeding took ${(seedMs / 1000).toFixed(1)} s), each with its refresh timer armed; ${idleClients} idle clients connected (client library, hello done) in another process. Load clients ask for different profiles (client i → p{i mod ${profiles}}). Daemon start-up with ${profiles} profiles: ${(startupMs / 1000).toFixed(1)} s.`,
      '',
      table(
        [
          'clients',
          'floor req/s',
          '1 profile req/s',
          `${profiles} profiles + ${idleClients} idle req/s`,
          'vs 1 profile',
          'vs floor',
          'p99 1 profile / big',
          'p99 vs floor',
          'max (big)',
          'errors',
        ],
        rows,
      ),
      '',
      table(
        ['memory', 'RSS'],
        [
          ['daemon, 1 profile, idle', mb(singleIdle)],
          [`daemon, ${profiles} profiles, idle`, mb(bigIdle)],
          [`daemon, ${profiles} profiles + ${idleClients} idle clients`, mb(bigWithClients)],
          ['per profile', `${fmt(perProfile / 1024, 1)} KB`],
          ['per idle client', `${fmt(perClient / 1024, 1)} KB`],
        ],
      ),
    ].join('\n');
    return {
      name: 'scale',
      title: `7. Scale: ${profiles} profiles with armed timers + ${idleClients} idle clients`,
      report,
      targets,
      data: {
        profiles,
        idleClients,
        seedMs,
        startupMs,
        restoredLogs,
        answered,
        active,
        armed,
        statusError,
        connected,
        singleIdle,
        bigIdle,
        bigWithClients,
        perProfile,
        perClient,
        rounds,
        durationMs,
        samples,
      },
    };
  } finally {
    holder?.kill('SIGTERM');
    await big?.stop();
    await single?.stop();
    for (let i = 0; i < profiles; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, profiles - i) }, (_, j) => keytar.deletePassword(service, profileName(i + j)).catch(() => false)));
    }
  }
}
