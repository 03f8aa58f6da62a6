/**
 * A desktop notification through the platform's own way, without a shell and without a new dependency:
 *
 * - Linux (and other freedesktop desktops): `org.freedesktop.Notifications.Notify` on the session D-Bus
 *   (Desktop Notifications Specification 1.2, "Notify"), sent with `gdbus call`; `notify-send` (libnotify)
 *   when gdbus is not installed.
 * - macOS: AppleScript's `display notification` through `osascript`.
 * - Windows: a toast (Windows.UI.Notifications.ToastNotificationManager) from PowerShell.
 *
 * Never throws and never blocks the caller: the command runs in the background with a timeout; a failure
 * is logged. The text is the profile name and fixed words only: never a token.
 */
import type { Logger } from '../log.js';
import { execCommand, type CommandResult } from '../system/run.js';

export interface Notice {
  /** One line: "Sign in to acme again". */
  readonly summary: string;
  /** What to do. */
  readonly body: string;
}

export type Notify = (notice: Notice) => void;

/** How long a notification command may take before it is given up on. */
const NOTIFY_TIMEOUT_MS = 10_000;
/** The application name the notification server shows. */
const APP_NAME = 'tokenbroker';

export interface DesktopNotifierOptions {
  readonly log: Logger;
  /** @default process.platform */
  readonly platform?: NodeJS.Platform;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Runs a command (tests pass a fake). @default execCommand */
  readonly run?: (argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number) => Promise<CommandResult>;
}

export function desktopNotifier(options: DesktopNotifierOptions): Notify {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  const run = options.run ?? execCommand;
  const { log } = options;
  return (notice) => {
    void send(platform, notice, (argv) => run(argv, env, NOTIFY_TIMEOUT_MS)).then(
      (outcome) => {
        if (outcome.ok) log.debug({ via: outcome.via }, 'desktop notification shown');
        else log.warn({ via: outcome.via, err: { message: outcome.error } }, 'could not show a desktop notification');
      },
      (error: unknown) => log.warn({ err: { message: (error as Error).message } }, 'could not show a desktop notification'),
    );
  };
}

type Runner = (argv: readonly string[]) => Promise<CommandResult>;

async function send(platform: NodeJS.Platform, notice: Notice, run: Runner): Promise<{ ok: boolean; via: string; error?: string }> {
  const attempts = commandsFor(platform, notice);
  let last: { ok: boolean; via: string; error?: string } = { ok: false, via: 'none', error: `no notification command for ${platform}` };
  for (const argv of attempts) {
    const result = await run(argv);
    if (result.exitCode === 0) return { ok: true, via: argv[0]! };
    last = { ok: false, via: argv[0]!, error: result.missing ? `${argv[0]} is not installed` : result.stderr.trim() || `exit code ${result.exitCode}` };
    if (!result.missing) break; // the program ran and failed: another one would fail the same way (no server)
  }
  return last;
}

/** The commands to try, in order (the next one only when a program is missing). */
export function commandsFor(platform: NodeJS.Platform, notice: Notice): string[][] {
  if (platform === 'darwin') {
    return [['osascript', '-e', `display notification ${appleScriptString(notice.body)} with title ${appleScriptString(notice.summary)}`]];
  }
  if (platform === 'win32') {
    return [['powershell.exe', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand', encodePowerShell(toastScript(notice))]];
  }
  return [
    // Notify(app_name s, replaces_id u, app_icon s, summary s, body s, actions as, hints a{sv}, expire_timeout i)
    [
      'gdbus',
      'call',
      '--session',
      '--dest',
      'org.freedesktop.Notifications',
      '--object-path',
      '/org/freedesktop/Notifications',
      '--method',
      'org.freedesktop.Notifications.Notify',
      gvariantString(APP_NAME),
      'uint32 0',
      gvariantString('dialog-password'),
      gvariantString(notice.summary),
      gvariantString(notice.body),
      '@as []',
      '@a{sv} {"urgency": <byte 1>, "desktop-entry": <"tokenbroker">}',
      'int32 -1',
    ],
    ['notify-send', '--app-name', APP_NAME, '--icon', 'dialog-password', '--', notice.summary, notice.body],
  ];
}

/** A GVariant text-format string literal (gdbus parses each argument as GVariant text). */
export function gvariantString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}

/** An AppleScript string literal. */
export function appleScriptString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function xmlText(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A toast from PowerShell (the text travels XML-escaped inside a single-quoted here-string). */
function toastScript(notice: Notice): string {
  const xml = `<toast><visual><binding template="ToastGeneric"><text>${xmlText(notice.summary)}</text><text>${xmlText(notice.body)}</text></binding></visual></toast>`;
  return [
    '$ErrorActionPreference = "Stop"',
    '[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] | Out-Null',
    '[Windows.Data.Xml.Dom.XmlDocument, Windows.Data.Xml.Dom.XmlDocument, ContentType = WindowsRuntime] | Out-Null',
    '$xml = New-Object Windows.Data.Xml.Dom.XmlDocument',
    `$xml.LoadXml(@'\n${xml}\n'@)`,
    // The PowerShell app id: a toast needs a registered AppUserModelID, and this one always is.
    '$app = "{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\\WindowsPowerShell\\v1.0\\powershell.exe"',
    '[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier($app).Show([Windows.UI.Notifications.ToastNotification]::new($xml))',
  ].join('\n');
}

/** PowerShell's -EncodedCommand: base64 of UTF-16LE (no quoting of the script on the command line). */
function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}
