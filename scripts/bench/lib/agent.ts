/**
 * oidc-agent 4.2.6 (Debian `oidc-agent-cli`), the closest peer, run side by side against the same IdP.
 * Recipe: /work/shared/notes/oidc-agent-peer.md (own HOME and TMPDIR, foreground so we own the pid,
 * an account generated non-interactively from a refresh token, loaded with oidc-add).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { delay } from './env.js';

export interface OidcAgent {
  readonly socketPath: string;
  readonly account: string;
  readonly pid: number;
  readonly version: string;
  readonly env: NodeJS.ProcessEnv;
  /** One plain-JSON access_token request on a fresh connection (the agent serves one request per connection). */
  token(): Promise<{ access_token: string; expires_at: number }>;
  stop(): Promise<void>;
}

export function agentInstalled(): boolean {
  return spawnSync('oidc-agent', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface AgentClient {
  readonly clientId: string;
  readonly clientSecret?: string;
}

export async function startAgent(options: {
  readonly dir: string;
  readonly issuer: string;
  readonly client: AgentClient;
  readonly refreshToken: string;
  readonly scopes: string;
  readonly account?: string;
  /** An HTTP proxy for the agent's calls to the IdP (see auth-shim.ts). */
  readonly httpProxy?: string;
}): Promise<OidcAgent> {
  const account = options.account ?? 'bench';
  const home = path.join(options.dir, 'home');
  const tmp = path.join(options.dir, 'tmp');
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
  const socketPath = path.join(tmp, 'oidc-agent.sock');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    TMPDIR: tmp,
    OIDC_SOCK: socketPath,
    OIDC_ENCRYPTION_PW: 'bench-pw',
    ...(options.httpProxy ? { http_proxy: options.httpProxy, no_proxy: '', NO_PROXY: '' } : {}),
  };
  const version = (spawnSync('oidc-agent', ['--version'], { encoding: 'utf8' }).stdout || '').trim().split('\n')[0] ?? 'oidc-agent';
  const child: ChildProcess = spawn('oidc-agent', ['-d', '--no-autoload', '--quiet', '-a', socketPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(socketPath)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`oidc-agent did not start: ${output}`);
    await delay(20);
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, delay(3000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(options.dir, { recursive: true, force: true }); // its account file holds a refresh token
  };
  try {
    const gen = await run(
      'oidc-gen',
      [
        account,
        `--iss=${options.issuer}`,
        `--client-id=${options.client.clientId}`,
        ...(options.client.clientSecret === undefined ? [] : [`--client-secret=${options.client.clientSecret}`]),
        `--rt-env=BENCH_RT`,
        `--scope=${options.scopes}`,
        '--redirect-uri=http://localhost:4242/',
        '--pw-env',
        '--no-url-call',
        '--confirm-default',
        '--prompt=none',
      ],
      { ...env, BENCH_RT: options.refreshToken },
    );
    if (gen.status !== 0) throw new Error(`oidc-gen failed (${gen.status}): ${gen.stdout}\n${gen.stderr}`);
    // oidc-gen loads the account into the agent; make sure it is (re)added from the saved config.
    await run('oidc-add', ['-r', account], env);
    const add = await run('oidc-add', ['--pw-env', account], env);
    if (add.status !== 0) throw new Error(`oidc-add failed (${add.status}): ${add.stdout}\n${add.stderr}`);
  } catch (error) {
    await stop();
    throw error;
  }
  const agent: OidcAgent = {
    socketPath,
    account,
    pid: child.pid!,
    version,
    env,
    token: () => agentRequest(socketPath, account),
    stop,
  };
  return agent;
}

/** Runs a command without blocking the event loop (the IdP lives in this process). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The agent's plain (unencrypted) JSON mode: one request, one answer, then the agent closes. */
export function agentRequest(socketPath: string, account: string): Promise<{ access_token: string; expires_at: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    let text = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => {
      socket.write(JSON.stringify({ request: 'access_token', account, min_valid_period: 60, application_hint: 'bench' }));
    });
    socket.on('data', (chunk: string) => {
      text += chunk;
      try {
        const answer = JSON.parse(text) as { status?: string; error?: string; access_token: string; expires_at: number };
        socket.destroy();
        if (answer.status !== 'success') reject(new Error(`oidc-agent: ${answer.error ?? text}`));
        else resolve(answer);
      } catch {
        // incomplete: wait for more
      }
    });
    socket.once('error', reject);
  });
}
