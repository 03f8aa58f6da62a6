/**
 * No daemon listens, but the user service is installed: start it (`systemctl --user start` /
 * `launchctl kickstart`) and wait until its socket answers, up to START_WAIT_MS, saying so on
 * stderr. `token`, `login` and `status` then run again. Without an installed service nothing is done
 * and the DAEMON_NOT_RUNNING error (which names both ways to start one) stands.
 */
import net from 'node:net';
import { resolveSocketPath } from '../../client/socket-path.js';
import type { CommandContext } from './context.js';

/** How long to wait for the started service to listen. $TOKENBROKER_START_WAIT_MS overrides it. */
const START_WAIT_MS = 2_000;

/** The --socket value of a command line (both `--socket P` and `--socket=P`), else undefined. */
function socketOption(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') break;
    if (argv[i] === '--socket') return argv[i + 1];
    if (argv[i]!.startsWith('--socket=')) return argv[i]!.slice('--socket='.length);
  }
  return undefined;
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts the installed service and waits for its socket; true when it answers. */
export async function startInstalledService(argv: readonly string[], context: CommandContext, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const { startCommand } = await import('../service/index.js');
  const command = startCommand({ env });
  if (command === undefined) return false;
  const { execCommand, formatCommand } = await import('../system/run.js');
  const socketPath = socketOption(argv) ?? resolveSocketPath(env);
  const waitMs = Number(env['TOKENBROKER_START_WAIT_MS']) > 0 ? Number(env['TOKENBROKER_START_WAIT_MS']) : START_WAIT_MS;
  context.err(`tokenbroker: no daemon is listening; starting the installed service (${formatCommand(command)}) …`);
  const started = await execCommand(command, env, 10_000);
  if (started.exitCode !== 0) {
    const said = started.missing ? `${command[0]} is not installed` : (started.stderr.trim().split('\n')[0] ?? '').slice(0, 300);
    context.err(`tokenbroker: the service did not start (${said || `exit ${started.exitCode}`}); see "tokenbroker service logs".`);
    return false;
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (await answers(socketPath)) {
      context.err('tokenbroker: the service is up.');
      return true;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  context.err(`tokenbroker: the service started but does not listen on ${socketPath} after ${(waitMs / 1000).toFixed(1)} s; see "tokenbroker service logs".`);
  return false;
}
