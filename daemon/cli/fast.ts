#!/usr/bin/env node
/**
 * The `tokenbroker` bin. kubectl and git run `tokenbroker token --format exec-credential` and
 * `tokenbroker git-credential get` on every invocation, so these commands start from one file: the
 * build bundles this module with what they import (esbuild, scripts/build-cli.mjs →
 * dist/daemon/cli/tokenbroker.cjs, CommonJS: no ES module loader to set up). Every other command, and
 * `--help`, loads the full CLI (main.js) as before.
 *
 * No compile cache (`module.enableCompileCache`): for this 40 KB file it measured no gain in CPU time,
 * and a cache of compiled code is one more place to keep away from other users.
 */
import * as gitCredential from './commands/git-credential.js';
import * as token from './commands/token.js';
import { BrokerError } from '../../proto/errors.js';
import { context, runCli } from './cli-runner.js';

const HOT: Record<string, { run: typeof token.run }> = { token, 'git-credential': gitCredential };

const [first, ...rest] = process.argv.slice(2);
const hot = first !== undefined && Object.hasOwn(HOT, first) ? HOT[first] : undefined;
const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
if (hot && !own.includes('--help') && !own.includes('-h')) runCli(() => runHot(hot));
else void import('./main.js');

/**
 * No daemon listens: the full CLI starts the installed service if there is one (autostart.ts) and runs
 * the command again, or reports the error as before. Nothing has been printed yet, so it starts over.
 */
async function runHot(command: { run: typeof token.run }): Promise<number> {
  try {
    return await command.run(rest, context);
  } catch (error) {
    if (first !== 'token' || !(error instanceof BrokerError) || error.code !== 'DAEMON_NOT_RUNNING') throw error;
    await import('./main.js'); // sets the exit code itself
    return new Promise<number>(() => {}); // never settles: main.js reports
  }
}
