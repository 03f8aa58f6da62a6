import { connect, type LoginResult } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { parse } from '../usage.js';
import { formatDuration } from '../../duration.js';
import { deviceHint, hasNoDisplay, showDevicePrompt, showDeviceWaiting } from './login-device.js';

export const help = `Usage: tokenbroker login [--profile NAME] [--device] [--no-browser] [--json] [--socket PATH]

Signs in through your browser (OAuth 2.0 authorization code with PKCE). The daemon opens the browser
and waits for the provider's redirect (custom scheme or loopback); this command shows how long it has
been waiting and prints the URL in case no browser opened. Ctrl-C cancels the sign-in.
If a sign-in for the profile is already under way (another app asked), this joins it.

Without a browser here (over SSH, in a container, on a server), use --device: the daemon asks the
provider for a short code (OAuth 2.0 Device Authorization Grant, RFC 8628); open the printed address
on any device — or scan the QR code with your phone — enter the code and sign in there. This command
waits until you have confirmed (or the code expires). A profile with "flow": "device" always signs in
this way. The provider must support it (discovery's device_authorization_endpoint).

Options:
  --profile NAME  the profile (default: the configured default profile)
  --device        sign in with a code on another device (RFC 8628); takes over a browser sign-in
                  under way
  --no-browser    do not open a browser; just print the URL (for headless machines)
  --json          print the result as JSON; with a device sign-in, two JSON lines: first the pending
                  sign-in (its "device" has userCode, verificationUri, verificationUriComplete,
                  expiresAt), then the result
  --socket PATH   the daemon's socket
  -h, --help      this help

Exit codes: 0 signed in, 1 sign-in failed or timed out, 3 daemon not running, 130 cancelled.`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('login', argv, {
    profile: { type: 'string' },
    device: { type: 'boolean' },
    'no-browser': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-cli', reconnect: false });
  const profile = values.profile === undefined ? {} : { profile: values.profile };
  let progress: NodeJS.Timeout | undefined;
  let cancelled = false;
  let device = false;
  let prompt: Promise<void> = Promise.resolve();
  const onSigint = () => {
    cancelled = true;
    void client.cancelLogin(profile).catch(() => {});
  };
  process.once('SIGINT', onSigint);
  try {
    const result = await client.login({
      ...profile,
      openBrowser: !values['no-browser'],
      ...(values.device ? { device: true } : {}),
      onPending: (pending) => {
        if (pending.device === undefined) {
          progress = showWaiting(pending, context, !values['no-browser']);
          return;
        }
        // A device sign-in (--device, or the profile's flow): the code, where to enter it, a QR code.
        device = true;
        if (values.json) context.out(JSON.stringify(pending));
        prompt = showDevicePrompt(pending, context, { qr: process.stdout.isTTY === true && !values.json })
          .catch(() => {})
          .then(() => {
            progress = showDeviceWaiting(pending, context);
          });
      },
    });
    await prompt;
    clearInterval(progress);
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (values.json) context.out(device ? JSON.stringify(result) : JSON.stringify(result, null, 2));
    else {
      const who = result.email ?? result.username ?? result.subject;
      const until = result.expiresAt === undefined ? '' : `; access token valid until ${new Date(result.expiresAt).toLocaleTimeString()}`;
      context.out(`Signed in to ${result.profile}${who ? ` as ${who}` : ''}${until}.`);
      if (result.previousSubject !== undefined) {
        context.err(
          `Note: this is a different account than the previous session of ${result.profile} (was ${result.previousSubject}, now ${result.subject ?? 'unknown'}).`,
        );
      }
    }
    return 0;
  } catch (error) {
    await prompt;
    clearInterval(progress);
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (cancelled) {
      context.err('tokenbroker: sign-in cancelled.');
      return EXIT.CANCELLED;
    }
    throw await (await import('../first-run.js')).explainNoProfiles(error, client);
  } finally {
    process.off('SIGINT', onSigint);
    await client.close();
  }
}

/** Tells the user what to do, then how long we have waited (a live line on a terminal). */
function showWaiting(pending: LoginResult, context: CommandContext, browser: boolean): NodeJS.Timeout | undefined {
  const verb = pending.joined ? 'A sign-in is already under way; waiting for it' : browser ? 'Opened your browser to sign in' : 'Sign in';
  context.err(`${verb} (profile ${pending.profile}).`);
  // A one-time link: opening it a second time (say, here and in the browser) stops the sign-in.
  context.err(`If no browser opened, visit (once):\n\n  ${pending.authorizationUrl}\n`);
  if (pending.deviceFlowAvailable && hasNoDisplay()) context.err(deviceHint(pending.profile));
  const started = pending.startedAt ?? Date.now();
  const timesOutAt = pending.timesOutAt;
  if (!process.stderr.isTTY) {
    context.err('Waiting for the sign-in to complete…');
    return undefined;
  }
  const tick = () => {
    const left = timesOutAt === undefined ? '' : `, times out in ${formatDuration(Math.max(0, timesOutAt - Date.now()))}`;
    process.stderr.write(`\r\x1b[KWaiting for the browser… ${formatDuration(Date.now() - started)}${left} (Ctrl-C to cancel)`);
  };
  tick();
  return setInterval(tick, 1000);
}
