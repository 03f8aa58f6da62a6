/**
 * Headless Chromium (playwright-core) playing the user on the test IdP's pages: sign in on the dev login page,
 * confirm consent, confirm logout. Plus the pieces for tests where the broker itself opens "the browser":
 * FAKE_BROWSER (set it as BROWSER) records each URL, and waitForBrowserUrl() picks them up.
 *
 * Chromium quirks this follows (see DESIGN.md, "Test infrastructure recipes"):
 * - a custom-scheme redirect only shows up in page.on('request'), and only without request interception, so
 *   nothing here calls page.route()/context.route();
 * - forms are submitted from script (after a custom-scheme navigation page.click() sends nothing), and every
 *   submit waits for the page to move on, or the provider gets the interaction twice and answers 400.
 * Each flow uses a fresh page in one long-lived context, so the provider's session cookie carries over between
 * flows until clearSession(). Cookies ignore ports: two IdPs on 127.0.0.1 share them, so clearSession() when
 * switching IdPs.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';

export interface SignInResult {
  /** custom-scheme URL (captured, not followed) or loopback http URL (followed; returned once answered) */
  redirectUrl: string;
}

export interface BrowserUser {
  signIn(authorizeUrl: string, options?: { login?: string; timeoutMs?: number }): Promise<SignInResult & { sawLoginForm: boolean }>;
  signOut(logoutUrl: string, options?: { timeoutMs?: number }): Promise<SignInResult>;
  /** Fresh browser context = no provider session cookie. */
  clearSession(): Promise<void>;
  close(): Promise<void>;
}

/** Absolute path of fake-browser.mjs: use as BROWSER, with TOKENBROKER_TEST_BROWSER_LOG naming the log file. */
export const FAKE_BROWSER: string = fileURLToPath(new URL('./fake-browser.mjs', import.meta.url));

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // Nothing but 127.0.0.1 resolves: pages that ask for web fonts fail at once instead of going out.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

const DEFAULT_TIMEOUT_MS = 20_000;

export async function launchBrowserUser(): Promise<BrowserUser> {
  const browser: Browser = await chromium.launch({
    executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  let context: BrowserContext = await browser.newContext();

  const run = async <T>(url: string, timeoutMs: number, flow: (page: Page, url: string) => Promise<T>): Promise<T> => {
    const page = await context.newPage();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const where = Promise.race([describePage(page), delay(1000).then(() => `at ${page.url()}`)]);
        where.then(
          (text) => reject(new Error(`browser user: no final redirect within ${timeoutMs} ms; ${text}`)),
          (error: unknown) => reject(new Error(`browser user: no final redirect within ${timeoutMs} ms; page not described: ${String(error)}`)),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([flow(page, url), timeout]);
    } finally {
      clearTimeout(timer);
      // Also ends a flow still running after a timeout. Bounded: a wedged tab must not hang the test.
      await Promise.race([page.close().catch(() => undefined), delay(2000)]);
    }
  };

  return {
    signIn(authorizeUrl, options = {}) {
      const login = options.login ?? 'alice';
      return run(authorizeUrl, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, (page, url) => drive(page, url, login));
    },
    async signOut(logoutUrl, options = {}) {
      const { redirectUrl } = await run(logoutUrl, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, (page, url) => drive(page, url, undefined));
      return { redirectUrl };
    },
    async clearSession() {
      const old = context;
      context = await browser.newContext();
      await old.close();
    },
    async close() {
      await browser.close();
    },
  };
}

type PageKind = 'login' | 'consent' | 'logout' | 'other';

// Page scripts are strings: test code is compiled without DOM types.
const DETECT = `(() => {
  if (document.querySelector('form input[name="prompt"][value="login"]')) return 'login';
  if (document.querySelector('form input[name="prompt"][value="consent"]')) return 'consent';
  if (document.getElementById('op.logoutForm')) return 'logout';
  return 'other';
})()`;

const submitLogin = (login: string): string => `(() => {
  const form = document.querySelector('input[name="prompt"][value="login"]').form;
  form.elements.namedItem('login').value = ${JSON.stringify(login)};
  const password = form.elements.namedItem('password');
  if (password) password.value = 'any password';
  form.submit();
})()`;

const SUBMIT_CONSENT = `document.querySelector('input[name="prompt"][value="consent"]').form.submit()`;

// oidc-provider's logout form carries the answer in the submit button (name=logout value=yes).
const SUBMIT_LOGOUT = `(() => {
  const form = document.getElementById('op.logoutForm');
  const yes = document.querySelector('button[form="op.logoutForm"][name="logout"][value="yes"]');
  if (yes) form.requestSubmit(yes); else form.submit();
})()`;

const WEB = /^https?:/i;
const NOT_A_REDIRECT = /^(about|data|blob|chrome|chrome-error|devtools):/i;

/**
 * The flow ends at the first request that leaves the provider: a custom scheme (what the OS would hand to the
 * app) or a main-frame navigation to another origin (a loopback redirect). Works for any parameter naming
 * (redirect_uri, post_logout_redirect_uri, Wristband's redirect_url).
 */
function isFinalRedirect(request: Request, page: Page, providerOrigin: string): boolean {
  const url = request.url();
  if (NOT_A_REDIRECT.test(url)) return false;
  if (!WEB.test(url)) return true;
  return request.isNavigationRequest() && request.frame() === page.mainFrame() && new URL(url).origin !== providerOrigin;
}

/** The broker's one-time launcher (`http://127.0.0.1:<port>/start/<random>`): it redirects to the provider once. */
export const LAUNCHER_URL = /^http:\/\/127\.0\.0\.1:\d+\/start\/[A-Za-z0-9_-]+$/;

/** Fetches a launcher URL once (as the browser would) and returns its redirect target; other URLs as they are. */
export async function followLauncher(url: string): Promise<string> {
  if (!LAUNCHER_URL.test(url)) return url;
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  await response.body?.cancel();
  if (response.status !== 302 || location === null) throw new Error(`launcher ${url} answered ${response.status} without a redirect`);
  return location;
}

async function drive(page: Page, url: string, login: string | undefined): Promise<SignInResult & { sawLoginForm: boolean }> {
  // Opened with the broker's launcher: the provider is wherever the launcher redirects to.
  let providerOrigin = LAUNCHER_URL.test(url) ? undefined : new URL(url).origin;
  const final = new Promise<string>((resolve) => {
    let seen = false;
    page.on('request', (request) => {
      if (providerOrigin === undefined) {
        if (request.redirectedFrom()?.url() === url) providerOrigin = new URL(request.url()).origin;
        return;
      }
      if (seen || !isFinalRedirect(request, page, providerOrigin)) return;
      seen = true;
      const redirectUrl = request.url();
      if (!WEB.test(redirectUrl)) {
        resolve(redirectUrl); // custom scheme: Chromium cannot follow it anyway
        return;
      }
      // Loopback: let the broker's listener answer and the page load (it may redirect within its origin), then
      // report. Closing the page mid-navigation can stall Chromium for minutes. A refused connection resolves
      // at once: the test's own assertions on what the listener received then fail with a clearer message.
      const origin = new URL(redirectUrl).origin;
      const loaded = page
        .waitForEvent('framenavigated', {
          predicate: (frame) => frame === page.mainFrame() && frame.url().startsWith(`${origin}/`),
          timeout: 5000,
        })
        .then(() => page.waitForLoadState('domcontentloaded'))
        .catch(() => undefined); // not loaded in 5 s, or the page closed: report the redirect anyway
      // Cannot reject: the first step handles a failed response, `loaded` never rejects, and resolve() does not throw.
      void request
        .response()
        .then(
          (response) => (response ? loaded : undefined),
          () => undefined,
        )
        .then(() => resolve(redirectUrl));
    });
  });
  const DONE: unique symbol = Symbol('done');
  const done = final.then((): typeof DONE => DONE);
  const orDone = <T>(work: Promise<T>): Promise<T | typeof DONE> => Promise.race([work, done]);

  const moved = (timeout = 0): Promise<unknown> =>
    page
      .waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame(), timeout })
      .then(() => page.waitForLoadState('domcontentloaded'))
      .catch(() => undefined);

  // Submit from script, and wait until the main frame has moved on (or the flow ended) before looking again.
  const submit = async (script: string): Promise<void> => {
    const next = moved();
    await page.evaluate(script).catch(() => undefined); // navigation may destroy the context mid-call
    await orDone(next);
  };

  let sawLoginForm = false;
  await orDone(page.goto(url, { waitUntil: 'domcontentloaded', timeout: 0 }).catch(() => undefined));
  for (;;) {
    if (page.isClosed()) throw new Error('browser user: page closed'); // timed out: run() closed it
    const kind = await orDone(
      page.evaluate(DETECT).then(
        (k) => k as PageKind,
        () => 'other' as const,
      ),
    );
    if (kind === DONE) break;
    if (kind === 'login' && login !== undefined) {
      sawLoginForm = true;
      await submit(submitLogin(login));
    } else if (kind === 'consent') {
      await submit(SUBMIT_CONSENT);
    } else if (kind === 'logout') {
      await submit(SUBMIT_LOGOUT);
    } else {
      // Still loading, or a page we do not handle (an error page: the timeout reports its text).
      await orDone(moved(250));
    }
  }
  return { redirectUrl: await final, sawLoginForm };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function describePage(page: Page): Promise<string> {
  const text = await page.evaluate('document.body ? document.body.innerText : ""').then(
    (t) => String(t).replace(/\s+/g, ' ').slice(0, 300),
    () => '(unreadable)',
  );
  return `stuck at ${page.url()}: ${text}`;
}

/**
 * Waits for the fake browser to have been asked to open a URL (line `after`, 0-based, of the log file) and
 * returns it. Pass the number of lines already consumed as `after` to wait for the next one.
 */
export async function waitForBrowserUrl(logFile: string, options: { timeoutMs?: number; after?: number } = {}): Promise<string> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const after = options.after ?? 0;
  for (;;) {
    const text = await readFile(logFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const lines = text.split('\n').slice(0, -1); // only complete lines
    const line = lines[after];
    if (line !== undefined) return line;
    if (Date.now() > deadline) {
      throw new Error(`waitForBrowserUrl: no URL #${after + 1} in ${logFile} within ${options.timeoutMs ?? 10_000} ms`);
    }
    await delay(50);
  }
}
