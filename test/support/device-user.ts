/**
 * Headless Chromium playing the user of a device sign-in (RFC 8628 §3.3) on the test IdP's pages: open the
 * verification URI (the complete one, or the plain one and type the code), confirm the device, sign in on
 * the dev login page, consent — or abort on the confirmation page (the device then gets access_denied).
 * The flow never leaves the provider: it ends on the success page. Same Chromium flags and quirks as
 * browser-user.ts (forms submitted from script; wait for the page to move on after each submit).
 */
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

export interface DeviceUser {
  /**
   * Confirms a device sign-in: `url` is the verification URI; `userCode` is typed when the page asks for
   * it. `abort` presses "Abort" on the confirmation page instead. Resolves on the success page (or, when
   * aborting, once the abort was submitted).
   */
  confirm(url: string, options?: { readonly userCode?: string; readonly login?: string; readonly abort?: boolean; readonly timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}

type Kind = 'code' | 'confirm' | 'login' | 'consent' | 'success' | 'other';

const DETECT = `(() => {
  if (document.getElementById('op.deviceInputForm')) return 'code';
  if (document.getElementById('op.deviceConfirmForm')) return 'confirm';
  if (document.querySelector('form input[name="prompt"][value="login"]')) return 'login';
  if (document.querySelector('form input[name="prompt"][value="consent"]')) return 'consent';
  if (document.title === 'Sign-in Success') return 'success';
  return 'other';
})()`;

const typeCode = (code: string) => `(() => {
  const form = document.getElementById('op.deviceInputForm');
  form.elements.namedItem('user_code').value = ${JSON.stringify(code)};
  form.submit();
})()`;

const confirmDevice = (abort: boolean) => `(() => {
  const form = document.getElementById('op.deviceConfirmForm');
  const button = document.querySelector(${JSON.stringify(abort ? 'button[name="abort"]' : 'button[autofocus][form="op.deviceConfirmForm"]')});
  form.requestSubmit(button);
})()`;

const submitLogin = (login: string) => `(() => {
  const form = document.querySelector('input[name="prompt"][value="login"]').form;
  form.elements.namedItem('login').value = ${JSON.stringify(login)};
  const password = form.elements.namedItem('password');
  if (password) password.value = 'any password';
  form.submit();
})()`;

const SUBMIT_CONSENT = `document.querySelector('input[name="prompt"][value="consent"]').form.submit()`;

export async function launchDeviceUser(): Promise<DeviceUser> {
  const browser: Browser = await chromium.launch({ executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  return {
    async confirm(url, options = {}) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const deadline = Date.now() + (options.timeoutMs ?? 30_000);
      try {
        await drive(page, url, options, deadline);
      } finally {
        await context.close().catch(() => undefined);
      }
    },
    close: () => browser.close(),
  };
}

async function drive(page: Page, url: string, options: { userCode?: string; login?: string; abort?: boolean }, deadline: number): Promise<void> {
  const moved = (timeout: number): Promise<unknown> =>
    page
      .waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame(), timeout })
      .then(() => page.waitForLoadState('domcontentloaded'))
      .catch(() => undefined);
  const submit = async (script: string): Promise<void> => {
    const next = moved(10_000);
    await page.evaluate(script).catch(() => undefined); // navigation may destroy the context mid-call
    await next;
  };
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  let codeTyped = false;
  for (;;) {
    if (Date.now() > deadline) {
      const text = await page.evaluate('document.body ? document.body.innerText : ""').catch(() => '');
      throw new Error(`device user: not done in time; stuck at ${page.url()}: ${String(text).replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    const kind = (await page.evaluate(DETECT).catch(() => 'other')) as Kind;
    if (kind === 'success') return;
    if (kind === 'code') {
      if (options.userCode === undefined || codeTyped) throw new Error(`device user: the provider asks for the code again at ${page.url()}`);
      codeTyped = true;
      await submit(typeCode(options.userCode));
    } else if (kind === 'confirm') {
      await submit(confirmDevice(options.abort === true));
      if (options.abort) return;
    } else if (kind === 'login') {
      await submit(submitLogin(options.login ?? 'alice'));
    } else if (kind === 'consent') {
      await submit(SUBMIT_CONSENT);
    } else {
      await moved(250);
    }
  }
}
