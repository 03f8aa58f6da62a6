/**
 * What `tokenbroker login` shows for a device sign-in (RFC 8628 §3.3): the address and the code, a QR
 * code of the complete address on a terminal (a phone is often the nearest browser), and how long the
 * code has left. Also: whether this terminal has a display at all, to point at `--device` when not.
 */
import type { LoginResult } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { formatDuration } from '../../duration.js';

/**
 * No browser can come up here: an SSH session (the browser would open on the remote machine's screen,
 * if any), or on Linux and the BSDs no X11 or Wayland display.
 */
export function hasNoDisplay(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (env['SSH_CONNECTION'] || env['SSH_TTY']) return true;
  if (platform === 'darwin' || platform === 'win32') return false;
  return !env['DISPLAY'] && !env['WAYLAND_DISPLAY'];
}

/** The hint printed when a browser sign-in starts where no browser can come up, and the provider could do better. */
export function deviceHint(profile: string): string {
  return `No display here (SSH or headless)? Sign in with a code on another device, e.g. your phone:\n\n  tokenbroker login --device${profile === '' ? '' : ` --profile ${profile}`}\n`;
}

/** A QR code of `url` for a terminal, or undefined when it cannot be made (uqr is loaded only here). */
async function qrCode(url: string): Promise<string | undefined> {
  try {
    const { renderUnicodeCompact } = await import('uqr');
    return renderUnicodeCompact(url, { border: 1 });
  } catch {
    return undefined;
  }
}

export interface DevicePromptOptions {
  /** Draw the QR code (stdout is a terminal). */
  readonly qr: boolean;
}

/** Prints what the user must do on the other device. */
export async function showDevicePrompt(pending: LoginResult, context: CommandContext, options: DevicePromptOptions): Promise<void> {
  const device = pending.device!;
  const joined = pending.joined ? 'A device sign-in is already under way; waiting for it' : 'To sign in';
  context.err(
    `${joined} (profile ${pending.profile}): on any device with a browser, open\n\n  ${device.verificationUri}\n\nand enter the code\n\n  ${device.userCode}\n`,
  );
  if (device.verificationUriComplete !== undefined) {
    const qr = options.qr ? await qrCode(device.verificationUriComplete) : undefined;
    if (qr !== undefined) context.err(`Or scan this with your phone:\n\n${qr}\n`);
    context.err(`Or open this link, which has the code in it:\n\n  ${device.verificationUriComplete}\n`);
  }
}

/** The live progress line of a device sign-in (a terminal), or one line once (anything else). */
export function showDeviceWaiting(pending: LoginResult, context: CommandContext): NodeJS.Timeout | undefined {
  const device = pending.device!;
  const started = pending.startedAt ?? Date.now();
  if (!process.stderr.isTTY) {
    context.err(`Waiting for the sign-in to be confirmed (the code expires at ${new Date(device.expiresAt).toLocaleTimeString()})…`);
    return undefined;
  }
  const tick = () => {
    const left = formatDuration(Math.max(0, device.expiresAt - Date.now()));
    process.stderr.write(
      `\r\x1b[KWaiting for you to confirm on the other device… ${formatDuration(Date.now() - started)}, the code expires in ${left} (Ctrl-C to cancel)`,
    );
  };
  tick();
  return setInterval(tick, 1000);
}
