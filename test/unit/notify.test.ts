/**
 * Sign-in notifications (daemon/notify/): one per episode, only for profiles that want them, the platform's
 * command lines (argument quoting that cannot be broken out of), and a failing or missing notifier that is
 * logged and never thrown. The real notification server is exercised in test/e2e/notify.test.ts.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { BrokerEvent } from '../../proto/index.js';
import { commandsFor, desktopNotifier, gvariantString, type Notice } from '../../daemon/notify/desktop.js';
import { SignInNotices, signInNotice } from '../../daemon/notify/sign-in-notices.js';

function notices(profiles: Record<string, { notify: boolean; reloginBrowser?: 'on-demand' | 'immediately' }>) {
  const shown: Notice[] = [];
  const observer = new SignInNotices({
    notify: (notice) => shown.push(notice),
    profile: (name) => (profiles[name] ? { name, reloginBrowser: 'on-demand', ...profiles[name] } : undefined),
  });
  const emit = (...events: BrokerEvent[]) => events.forEach((e) => observer.observe(e));
  return { shown, emit };
}

const required = (profile: string, reason = 'invalid_grant'): BrokerEvent => ({ event: 'loginRequired', data: { profile, reason } });
const state = (
  profile: string,
  to: 'active' | 'login-required' | 'logged-out',
  from: 'active' | 'refreshing' | 'login-required' = 'refreshing',
): BrokerEvent => ({
  event: 'stateChanged',
  data: { profile, state: to, previous: from },
});

describe('SignInNotices', () => {
  it('one notification per episode; the next only after the session was active again', () => {
    const { shown, emit } = notices({ acme: { notify: true } });
    emit(state('acme', 'login-required'), required('acme'), required('acme'), state('acme', 'logged-out', 'login-required'), required('acme'));
    expect(shown).toEqual([
      {
        summary: 'Sign in to acme again',
        body: 'The provider ended the session (the sign-in expired or was revoked). Run: tokenbroker login --profile acme',
      },
    ]);
    emit(state('acme', 'active', 'login-required'), required('acme', 'no_refresh_token'));
    expect(shown).toHaveLength(2);
    expect(shown[1]!.body).toMatch(/^The access token expired and the provider gave no way to renew it\. Run: tokenbroker login --profile acme$/);
  });

  it('episodes are per profile; notify: false and unknown profiles get none; a deliberate logout ends an episode', () => {
    const { shown, emit } = notices({ a: { notify: true }, b: { notify: true }, quiet: { notify: false } });
    emit(required('a'), required('b'), required('quiet'), required('gone'), required('a'));
    expect(shown.map((n) => n.summary)).toEqual(['Sign in to a again', 'Sign in to b again']);
    emit({ event: 'loggedOut', data: { profile: 'a' } }, required('a'));
    expect(shown).toHaveLength(3);
  });

  it('with reloginBrowser "immediately" it points at the browser window first', () => {
    expect(signInNotice({ name: 'w', reloginBrowser: 'immediately' }, 'invalid_grant').body).toMatch(
      /Finish signing in in the browser window that opened, or run: tokenbroker login --profile w$/,
    );
    expect(signInNotice({ name: 'w', reloginBrowser: 'on-demand' }, 'weird').body).toBe('The session ended (weird). Run: tokenbroker login --profile w');
  });
});

describe('commandsFor', () => {
  const tricky: Notice = { summary: 'Sign in to a"b\\c again', body: `it's "quoted" \\ and\nnew` };

  it('Linux: gdbus Notify with GVariant-quoted strings, then notify-send', () => {
    const [gdbus, notifySend] = commandsFor('linux', tricky);
    expect(gdbus!.slice(0, 9)).toEqual([
      'gdbus',
      'call',
      '--session',
      '--dest',
      'org.freedesktop.Notifications',
      '--object-path',
      '/org/freedesktop/Notifications',
      '--method',
      'org.freedesktop.Notifications.Notify',
    ]);
    expect(gdbus![12]).toBe('"Sign in to a\\"b\\\\c again"');
    expect(gdbus![13]).toBe('"it\'s \\"quoted\\" \\\\ and\\nnew"');
    expect(notifySend).toEqual(['notify-send', '--app-name', 'tokenbroker', '--icon', 'dialog-password', '--', tricky.summary, tricky.body]);
    expect(gvariantString('plain')).toBe('"plain"');
  });

  it('macOS: osascript display notification with AppleScript-quoted strings', () => {
    expect(commandsFor('darwin', tricky)).toEqual([
      ['osascript', '-e', 'display notification "it\'s \\"quoted\\" \\\\ and\nnew" with title "Sign in to a\\"b\\\\c again"'],
    ]);
  });

  it('Windows: a PowerShell toast, the script base64 (UTF-16LE) encoded with the text XML-escaped', () => {
    const [argv] = commandsFor('win32', tricky);
    expect(argv!.slice(0, 6)).toEqual(['powershell.exe', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand']);
    const script = Buffer.from(argv![6]!, 'base64').toString('utf16le');
    expect(script).toContain('<text>Sign in to a&#34;b\\c again</text>');
    expect(script).toContain('<text>it&#39;s &#34;quoted&#34; \\ and\nnew</text>');
    expect(script).toContain('ToastNotificationManager]::CreateToastNotifier');
  });
});

describe('desktopNotifier', () => {
  function logCapture() {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    return { log, lines };
  }
  const notice: Notice = { summary: 'Sign in to a again', body: 'Run: tokenbroker login --profile a' };

  it('never blocks: returns before the command ends; a missing gdbus falls back to notify-send', async () => {
    const { log, lines } = logCapture();
    const ran: string[] = [];
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const notify = desktopNotifier({
      log,
      platform: 'linux',
      run: async (argv) => {
        ran.push(argv[0]!);
        await gate;
        return argv[0] === 'gdbus' ? { exitCode: 1, stdout: '', stderr: 'not found', missing: true } : { exitCode: 0, stdout: '', stderr: '', missing: false };
      },
    });
    notify(notice);
    expect(ran).toEqual(['gdbus']); // started, not awaited
    finish();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ran).toEqual(['gdbus', 'notify-send']);
    expect(lines.find((l) => l['msg'] === 'desktop notification shown')).toMatchObject({ via: 'notify-send' });
  });

  it('a failing notification server is logged as a warning, not thrown, and not retried with another tool', async () => {
    const { log, lines } = logCapture();
    const ran: string[] = [];
    const notify = desktopNotifier({
      log,
      platform: 'linux',
      run: (argv) => {
        ran.push(argv[0]!);
        return Promise.resolve({ exitCode: 1, stdout: '', stderr: 'Error: GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown', missing: false });
      },
    });
    expect(() => notify(notice)).not.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ran).toEqual(['gdbus']);
    expect(lines.find((l) => l['msg'] === 'could not show a desktop notification')).toMatchObject({
      level: 40,
      via: 'gdbus',
      err: { message: expect.stringMatching(/ServiceUnknown/) as unknown },
    });
  });
});
