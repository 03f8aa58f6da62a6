/**
 * Fakes for unit tests of a Session: a scripted token endpoint (the `HttpClient` slice the OAuth code
 * uses), the in-memory token store, a browser that records URLs, and a logger that keeps its lines.
 * Meant for vitest fake timers: every time here comes from Date.now().
 */
import { RequestError } from 'got';
import { pino } from 'pino';
import type { BrokerEvent } from '../../proto/index.js';
import { parseConfig, type ProfileConfig } from '../../daemon/config.js';
import type { HttpClient, ProviderMetadata } from '../../daemon/oauth/index.js';
import { Secret } from '../../daemon/secret.js';
import { Session, type TokenRequest } from '../../daemon/session/session.js';
import type { StoredTokens } from '../../daemon/store/types.js';
import { MemoryStore } from './memory-store.js';

export const ISSUER = 'https://idp.example.test';

export const METADATA: ProviderMetadata = {
  issuer: ISSUER,
  authorizationEndpoint: `${ISSUER}/authorize`,
  tokenEndpoint: `${ISSUER}/token`,
  revocationEndpoint: `${ISSUER}/revoke`,
  endSessionEndpoint: `${ISSUER}/logout`,
  jwksUri: `${ISSUER}/jwks`,
  logoutStyle: 'oidc',
  authorizationResponseIssParameterSupported: false,
};

/** What the fake token endpoint does with one request. */
export type TokenAnswer =
  | { readonly kind: 'ok'; readonly expiresIn?: number; readonly refreshToken?: string | null; readonly delayMs?: number }
  | { readonly kind: 'network'; readonly delayMs?: number }
  | { readonly kind: 'status'; readonly status: number; readonly body?: unknown; readonly headers?: Record<string, string> }
  | { readonly kind: 'garbage' };

export interface FakeRequest {
  readonly at: number;
  readonly url: string;
  readonly form: Record<string, string>;
}

export interface FakeProvider {
  readonly http: HttpClient;
  /** Every POST, in order. */
  readonly requests: FakeRequest[];
  /** Refresh grants only. */
  refreshes(): FakeRequest[];
  revocations(): FakeRequest[];
  /** The answer to every refresh grant from now on. */
  answer: TokenAnswer;
  /** Rotate refresh tokens (a new one in each refresh response); otherwise the same one is sent back. */
  rotate: boolean;
  /** The access tokens issued so far. */
  readonly issued: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A got RequestError carrying a response, as got throws for an HTTP error status. */
export function httpError(status: number, body: unknown = {}, headers: Record<string, string> = {}): RequestError {
  const response = { statusCode: status, headers, body: typeof body === 'string' ? body : JSON.stringify(body) };
  const request = { _onResponse() {}, response, options: {} };
  return new RequestError(`Response code ${status}`, {}, request as never);
}

export function fakeProvider(): FakeProvider {
  let counter = 0;
  const provider: FakeProvider = {
    requests: [],
    issued: [],
    answer: { kind: 'ok' },
    rotate: false,
    refreshes: () => provider.requests.filter((r) => r.url === METADATA.tokenEndpoint && r.form['grant_type'] === 'refresh_token'),
    revocations: () => provider.requests.filter((r) => r.url === METADATA.revocationEndpoint),
    http: {
      post: async (url: string, options: { form: Record<string, string> }) => {
        provider.requests.push({ at: Date.now(), url, form: { ...options.form } });
        if (url !== METADATA.tokenEndpoint) return { body: '' };
        const answer = provider.answer;
        if (answer.kind === 'network') {
          if (answer.delayMs) await sleep(answer.delayMs);
          throw new Error('connect ECONNREFUSED');
        }
        if (answer.kind === 'status') throw httpError(answer.status, answer.body, answer.headers);
        if (answer.kind === 'garbage') return { body: '<html>captive portal</html>' };
        if (answer.delayMs) await sleep(answer.delayMs);
        counter += 1;
        const accessToken = `at-${counter}`;
        provider.issued.push(accessToken);
        const refreshToken =
          answer.refreshToken === null ? undefined : (answer.refreshToken ?? (provider.rotate ? `rt-${counter}` : options.form['refresh_token']));
        return {
          body: JSON.stringify({
            access_token: accessToken,
            token_type: 'Bearer',
            expires_in: answer.expiresIn ?? 300,
            scope: 'openid offline_access',
            ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
          }),
        };
      },
    } as unknown as HttpClient,
  };
  return provider;
}

export function profileConfig(overrides: Record<string, unknown> = {}): ProfileConfig {
  const config = parseConfig({
    profiles: {
      main: {
        issuer: ISSUER,
        clientId: 'unit-client',
        redirectUri: 'com.example.broker:/callback',
        postLogoutRedirectUri: 'com.example.broker:/logged-out',
        ...overrides,
      },
    },
  });
  return config.profiles.get('main')!;
}

/** Tokens as a login would have stored them: issued now, `lifetimeMs` to live. */
export function signedInTokens(lifetimeMs: number, overrides: Partial<StoredTokens> = {}): StoredTokens {
  const now = Date.now();
  return {
    accessToken: new Secret('at-0'),
    refreshToken: new Secret('rt-0'),
    idToken: new Secret('id-token-0'),
    expiresAt: now + lifetimeMs,
    scopes: ['openid', 'offline_access'],
    tokenType: 'Bearer',
    subject: 'alice',
    savedAt: now,
    issuer: ISSUER,
    clientId: 'unit-client',
    ...overrides,
  };
}

export interface SessionHarness {
  readonly session: Session;
  readonly provider: FakeProvider;
  readonly store: MemoryStore;
  readonly events: BrokerEvent[];
  readonly browser: string[];
  readonly logs: Array<Record<string, unknown>>;
  readonly profile: ProfileConfig;
  /** token.get as the broker calls it. */
  getToken(options?: Partial<Omit<TokenRequest, 'signal'>>): ReturnType<Session['getToken']>;
}

/** A session restored from a store that holds `tokens` (none: logged out). */
export async function startSession(
  options: {
    profile?: Record<string, unknown>;
    tokens?: StoredTokens;
    store?: MemoryStore;
    provider?: FakeProvider;
    onEvent?: (event: BrokerEvent) => void;
  } = {},
): Promise<SessionHarness> {
  const profile = profileConfig(options.profile);
  const store = options.store ?? new MemoryStore();
  const provider = options.provider ?? fakeProvider();
  const events: BrokerEvent[] = [];
  const browser: string[] = [];
  const launchers = new Map<string, () => string>();
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  if (options.tokens) await store.save('main', options.tokens);
  const session = new Session({
    profile,
    isDefault: true,
    store,
    http: provider.http,
    log,
    metadata: () => Promise.resolve(METADATA),
    publish: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
    openBrowser: (url) => {
      // A sign-in opens its one-time launcher, which leads the browser to the authorization URL.
      browser.push(launchers.get(url)?.() ?? url);
      return Promise.resolve(true);
    },
    onLoopbackCallback: () => Promise.resolve({ ok: false, message: 'not used' }),
    // No socket in unit tests: a listener that only hands out its launcher URL.
    startListener: (listenerOptions) => {
      const launchUrl = `http://127.0.0.1:1/start/fake-${launchers.size}`;
      launchers.set(launchUrl, () => listenerOptions.launcher?.target() ?? launchUrl);
      return Promise.resolve({ redirectUri: 'http://127.0.0.1:1/callback', port: 1, launchUrl, close: () => {}, done: new Promise<never>(() => {}) });
    },
    expectLogoutReturn: () => {},
  });
  await session.restore();
  return {
    session,
    provider,
    store,
    events,
    browser,
    logs,
    profile,
    getToken: (request = {}) => session.getToken({ waitMs: 10_000, signal: new AbortController().signal, ...request }),
  };
}

/** Settles a promise without throwing, to inspect it later. */
export function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}
