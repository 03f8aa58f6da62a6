/**
 * A real OpenID provider (oidc-provider 9, a certified implementation) on 127.0.0.1 for tests and the demo.
 *
 * Layout: oidc-provider listens on an internal ephemeral port; the public (issuer) port is a recording reverse
 * proxy from ./fault-proxy.ts that forwards the `Host` header, so the provider's URLs all name the public port.
 * The proxy is where `counts`, `requests` and `issuedSecrets` are taken (the HTTP layer, as a client sees it),
 * and with `frontProxy: true` it is also exposed as `idp.faults` to break requests on purpose.
 *
 * Refresh tokens: oidc-provider follows OIDC Core §11 and drops `offline_access` unless the request also has
 * `prompt=consent`, which would show a consent page on every sign-in. Wristband issues a refresh token for
 * `offline_access` alone, and so does this IdP: the authorization requests that asked for `offline_access` are
 * remembered by their PKCE `code_challenge` (unique per request, and stored on the code), and `issueRefreshToken`
 * and `expiresWithSession` consult that. So prompt=consent is NOT needed; passing it still works (the consent
 * page is then shown and confirmed every time).
 */
import { generateKeyPair, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
// @ts-expect-error -- oidc-provider ships no type declarations; the few members used are typed below.
import OidcProviderClass, { errors as untypedErrors, interactionPolicy as untypedInteractionPolicy } from 'oidc-provider';
// @ts-expect-error -- internal module (no declarations): rebuilds a provider's key set in place (rotateSigningKey).
import untypedInitializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest, type ProxiedResponse } from './fault-proxy.js';

export interface TestIdpOptions {
  /** access token lifetime in seconds; @default 60 */
  accessTokenTtl?: number;
  /** ID token lifetime in seconds; @default 3600 */
  idTokenTtl?: number;
  /** issue a new refresh token on every refresh (rotation); @default false */
  rotateRefreshTokens?: boolean;
  /** serve Wristband's endpoint paths instead of oidc-provider's; @default false */
  wristbandRoutes?: boolean;
  /** @default 'tokenbroker-test' */
  clientId?: string;
  /** @default ['com.example.broker:/callback', 'http://127.0.0.1/callback'] (a loopback URI without port accepts any port) */
  redirectUris?: string[];
  /** @default ['com.example.broker:/logged-out', 'http://127.0.0.1/logged-out'] */
  postLogoutRedirectUris?: string[];
  /** public (issuer) port; @default 0 (ephemeral) */
  port?: number;
  /** expose the public port's proxy as `idp.faults` for fault injection; @default false */
  frontProxy?: boolean;
  /** the ID-token signing algorithm (a key of that kind signs ID tokens); @default 'RS256' */
  idTokenSigningAlg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  /** the issuer ends with "/" (Auth0 does); `issuer` and the tokens' `iss` then carry it; @default false */
  issuerTrailingSlash?: boolean;
  /** a client secret the native client must send (Google's desktop clients); @default none (a public client) */
  clientSecret?: string;
  /** with `clientSecret`: how the client must send it; @default 'client_secret_basic' */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  /**
   * OIDC Core §11 as oidc-provider implements it: a refresh token only when `offline_access` comes with
   * `prompt=consent` (else this IdP issues one for `offline_access` alone, as Wristband does); @default false
   */
  offlineAccessNeedsConsent?: boolean;
  /** ID tokens carry only `sub` and protocol claims; the email is at the UserInfo endpoint alone; @default false */
  idTokenOnlySub?: boolean;
  /**
   * RFC 8628 device authorization grant (oidc-provider's `deviceFlow`): a device_authorization_endpoint in
   * discovery, the user-code pages at `/device` (plain pages, no web fonts); @default false
   */
  deviceFlow?: boolean;
  /** the `interval` put into device authorization responses (oidc-provider sends none: clients use 5 s) */
  deviceInterval?: number;
  /** device code lifetime in seconds; @default 600 */
  deviceCodeTtl?: number;
  /**
   * RFC 8707 resource indicators (oidc-provider's `features.resourceIndicators`) for these resource servers: a
   * token request naming one gets a JWT access token whose `aud` is that URI; any other is `invalid_target`.
   * Every authorization request is given all of them as `resource` parameters (RFC 8707 §2.1), standing in for
   * a sign-in that names the APIs it wants, so refreshes may ask for each. @default none (feature off)
   */
  resourceServers?: readonly string[];
}

export interface GrantCounts {
  authorizationCode: number;
  refreshToken: number;
  revocation: number;
  tokenEndpointErrors: number;
}

/** Absolute URLs of the endpoints, as advertised (Wristband's paths when `wristbandRoutes`). */
export interface TestIdpEndpoints {
  discovery: string;
  authorization: string;
  token: string;
  revocation: string;
  userinfo: string;
  jwks: string;
  /** oidc-provider's end_session endpoint (takes post_logout_redirect_uri) */
  endSession: string;
  /** Wristband's logout endpoint (takes redirect_url); only with `wristbandRoutes` */
  logout?: string;
  introspection: string;
  /** RFC 8628 device authorization endpoint; only with `deviceFlow` */
  deviceAuthorization?: string;
  /** the page where the user enters a device sign-in's code; only with `deviceFlow` */
  deviceVerification?: string;
}

export interface TestIdp {
  /** 'http://127.0.0.1:PORT' (no trailing slash, unless `issuerTrailingSlash`) */
  readonly issuer: string;
  readonly port: number;
  readonly clientId: string;
  /** live counters taken at the public port, whatever the outcome (faulted requests included) */
  readonly counts: GrantCounts;
  /** every HTTP request to the public port (harness calls such as introspect() excluded) */
  readonly requests: ReadonlyArray<{ method: string; path: string; at: number; status?: number }>;
  readonly endpoints: TestIdpEndpoints;
  /** the public port's proxy, to inject faults; undefined unless `frontProxy` */
  readonly faults: FaultProxy | undefined;
  /** RFC 7662 introspection at the provider's own endpoint (bypassing faults and the request log) */
  introspect(token: string): Promise<{ active: boolean; exp?: number; sub?: string; token_type?: string }>;
  /** Destroy a refresh token server-side, as an admin would; the next refresh gets invalid_grant. */
  revokeRefreshToken(refreshToken: string): Promise<void>;
  /** Access-token TTL for tokens issued from now on. */
  setAccessTokenTtl(seconds: number): void;
  /** Rotation for refreshes from now on. */
  setRotation(on: boolean): void;
  /** Whether refresh answers carry an ID token from now on (oidc-provider sends one; some providers never do). @default true */
  setIdTokenOnRefresh(on: boolean): void;
  /**
   * Signing-key rotation: a new RS256 key (new `kid`) signs every token from now on. With `keepOld` (a
   * provider's usual rollover) the JWKS publishes both keys, else only the new one. Returns the new `kid`.
   */
  rotateSigningKey(options?: { keepOld?: boolean }): Promise<string>;
  /** The `kid`s the JWKS publishes now, the signing one first. */
  readonly signingKids: readonly string[];
  /**
   * Every token (access, refresh, ID), authorization code and PKCE code_verifier seen at the token and
   * revocation endpoints, plus codes in redirect `Location`s: scan logs and files for these.
   */
  readonly issuedSecrets: ReadonlySet<string>;
  close(): Promise<void>;
}

// The slice of oidc-provider's (untyped) API used here.
interface KoaContext {
  method: string;
  path: string;
  querystring: string;
  url: string;
  host: string;
  type: string;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface OidcProvider {
  callback(): http.RequestListener;
  use(middleware: Middleware): void;
  on(event: 'server_error', listener: (ctx: KoaContext, error: Error) => void): void;
  RefreshToken: { find(value: string): Promise<{ destroy(): Promise<void> } | undefined> };
}
const Provider = OidcProviderClass as new (issuer: string, configuration: object) => OidcProvider;
const initializeKeystore = untypedInitializeKeystore as (this: OidcProvider, jwks: { keys: object[] }) => void;
interface Prompts extends Array<unknown> {
  get(name: string): { checks: { remove(reason: string): void } } | undefined;
}
const interactionPolicy = untypedInteractionPolicy as { base(): Prompts };
const { InvalidTarget } = untypedErrors as { InvalidTarget: new (description?: string) => Error };
/** What the provider hands to issueRefreshToken / expiresWithSession: here, an authorization code. */
interface GrantSource {
  scopes: Set<string>;
  codeChallenge?: string;
}

const DEFAULT_ROUTES = {
  authorization: '/auth',
  token: '/token',
  revocation: '/token/revocation',
  userinfo: '/me',
  jwks: '/jwks',
  end_session: '/session/end',
  introspection: '/token/introspection',
};
const WRISTBAND_ROUTES = {
  authorization: '/api/v1/oauth2/authorize',
  token: '/api/v1/oauth2/token',
  revocation: '/api/v1/oauth2/revoke',
  userinfo: '/api/v1/oauth2/userinfo',
  jwks: '/api/v1/oauth2/jwks',
  // Not Wristband paths: end_session is reached through WRISTBAND_LOGOUT; introspection is for the harness.
  end_session: '/api/v1/oauth2/end-session',
  introspection: '/api/v1/oauth2/introspect',
};
const WRISTBAND_LOGOUT = '/api/v1/logout';
/** oidc-provider's default routes of the device flow (RFC 8628 §3.1 endpoint, and the user's page). */
const DEVICE_AUTHORIZATION_PATH = '/device/auth';

/**
 * oidc-provider's device-flow pages without web fonts: the code input (form `op.deviceInputForm`), the
 * confirmation (form `op.deviceConfirmForm`: "Continue", or "Abort" = `abort=yes`, which the device's
 * next poll sees as access_denied) and the success page ("Sign-in Success").
 */
function deviceFlowFeature(): object {
  return {
    enabled: true,
    userCodeInputSource: (ctx: KoaContext, form: string, _out: unknown, err: { name?: string; userCode?: string } | undefined) => {
      const message = err ? '<p class="error">The code you entered is incorrect. Try again</p>' : '<p>Enter the code displayed on your device</p>';
      ctx.body = page('Sign-in', `<h1>Sign-in</h1>${message}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
    },
    userCodeConfirmSource: (ctx: KoaContext, form: string, _client: unknown, _deviceInfo: unknown, userCode: string) => {
      ctx.body = page(
        'Device Login Confirmation',
        `<h1>Confirm Device</h1><p>The code on your device: <code>${escapeHtml(userCode)}</code></p>${form}` +
          '<button autofocus type="submit" form="op.deviceConfirmForm">Continue</button>' +
          '<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>',
      );
    },
    successSource: (ctx: KoaContext) => {
      ctx.body = page('Sign-in Success', '<h1>Sign-in Success</h1><p>You can close this page.</p>');
    },
  };
}

const INTROSPECTOR_ID = 'tokenbroker-test-introspector';
const DAY = 24 * 60 * 60;

// One RS256 key per process (Wristband signs with RS256); generating RSA keys is slow-ish.
let signingKey: Promise<SigningJwk> | undefined;
type SigningJwk = { kid: string } & Record<string, unknown>;
function newRs256Key(): Promise<SigningJwk> {
  return promisify(generateKeyPair)('rsa', { modulusLength: 2048 }).then(({ privateKey }) => ({
    ...privateKey.export({ format: 'jwk' }),
    kid: randomUUID(),
    alg: 'RS256',
    use: 'sig',
  }));
}
function rs256Key(): Promise<SigningJwk> {
  signingKey ??= newRs256Key();
  return signingKey;
}

/** A signing key for `alg` other than RS256 (PS256: RSA; ES256: P-256; EdDSA: Ed25519). */
async function signingKeyFor(alg: 'PS256' | 'ES256' | 'EdDSA'): Promise<SigningJwk> {
  const generate = promisify(generateKeyPair) as (type: string, options: object) => Promise<{ privateKey: KeyObject }>;
  const { privateKey } =
    alg === 'PS256'
      ? await generate('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? await generate('ec', { namedCurve: 'P-256' })
        : await generate('ed25519', {});
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg, use: 'sig' };
}

/**
 * oidc-provider's default prompts, except that native clients are not asked to consent on every authorization
 * (its `native_client_prompt` check, after RFC 8252 §8.6). Wristband's first-party apps are not, and a live
 * provider session should sign the user back in without any page. The first authorization still asks for
 * consent (scopes not yet granted), and so does prompt=consent.
 */
function interactionPolicyWithoutNativeConsent(): Prompts {
  const policy = interactionPolicy.base();
  policy.get('consent')?.checks.remove('native_client_prompt');
  return policy;
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function page(title: string, body: string): string {
  // No external fonts or scripts: the browser must not reach beyond 127.0.0.1.
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

function parseJsonObject(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export async function startTestIdp(options: TestIdpOptions = {}): Promise<TestIdp> {
  const clientId = options.clientId ?? 'tokenbroker-test';
  const routes = options.wristbandRoutes ? WRISTBAND_ROUTES : DEFAULT_ROUTES;
  const live = { accessTokenTtl: options.accessTokenTtl ?? 60, rotate: options.rotateRefreshTokens ?? false, idTokenOnRefresh: true };
  const resourceServers = options.resourceServers ?? [];
  const idTokenTtl = options.idTokenTtl ?? 3600;
  const introspectorSecret = randomBytes(24).toString('base64url');
  const offlineChallenges = new Set<string>();
  const offlineRequested = (source: GrantSource): boolean =>
    source.scopes.has('offline_access') ||
    (!options.offlineAccessNeedsConsent && source.codeChallenge !== undefined && offlineChallenges.has(source.codeChallenge));

  const counts: GrantCounts = { authorizationCode: 0, refreshToken: 0, revocation: 0, tokenEndpointErrors: 0 };
  type RequestEntry = { method: string; path: string; at: number; status?: number };
  const requests: RequestEntry[] = [];
  const entries = new WeakMap<ProxiedRequest, RequestEntry>();
  const issuedSecrets = new Set<string>();
  const keep = (value: unknown): void => {
    if (typeof value === 'string' && value.length > 0) issuedSecrets.add(value);
  };

  const onRequest = (request: ProxiedRequest): void => {
    const entry: RequestEntry = { method: request.method, path: request.path, at: request.at };
    requests.push(entry);
    entries.set(request, entry);
    if (request.method !== 'POST') return;
    const form = new URLSearchParams(request.body.toString('utf8'));
    if (request.path === routes.token) {
      const grantType = form.get('grant_type');
      if (grantType === 'authorization_code') counts.authorizationCode += 1;
      if (grantType === 'refresh_token') counts.refreshToken += 1;
      for (const name of ['code', 'code_verifier', 'refresh_token']) keep(form.get(name));
    } else if (request.path === routes.revocation) {
      counts.revocation += 1;
      keep(form.get('token'));
    }
  };

  const onResponse = (request: ProxiedRequest, response: ProxiedResponse): void => {
    const entry = entries.get(request);
    if (entry) entry.status = response.status;
    if (request.path === routes.token && request.method === 'POST') {
      if (response.status >= 400) counts.tokenEndpointErrors += 1;
      // A 'forward' fault passes the provider's real answer on.
      if ((request.fault === undefined || request.fault.kind === 'forward') && response.status === 200) {
        const json = parseJsonObject(response.body.toString('utf8'));
        for (const name of ['access_token', 'refresh_token', 'id_token']) keep(json[name]);
      }
    }
    const location = response.headers.location;
    if (typeof location === 'string' && URL.canParse(location, 'http://base.invalid')) {
      const redirect = new URL(location, 'http://base.invalid');
      keep(redirect.searchParams.get('code'));
    }
  };

  // Internal server first (its handler is attached once the provider exists), then the public edge.
  const internal = http.createServer();
  const internalPort = await listen(internal, 0);
  const edge = await startFaultProxy(`http://127.0.0.1:${internalPort}`, {
    port: options.port ?? 0,
    onRequest,
    onResponse,
  });
  const base = edge.url;
  const issuer = options.issuerTrailingSlash ? `${base}/` : base;
  const port = Number(new URL(issuer).port);

  const alg = options.idTokenSigningAlg ?? 'RS256';
  let signingKeys: SigningJwk[] = alg === 'RS256' ? [await rs256Key()] : [await signingKeyFor(alg), await rs256Key()];
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        application_type: 'native',
        token_endpoint_auth_method: options.clientSecret === undefined ? 'none' : (options.tokenEndpointAuthMethod ?? 'client_secret_basic'),
        ...(options.clientSecret === undefined ? {} : { client_secret: options.clientSecret }),
        ...(alg === 'RS256' ? {} : { id_token_signed_response_alg: alg }),
        grant_types: ['authorization_code', 'refresh_token', ...(options.deviceFlow ? ['urn:ietf:params:oauth:grant-type:device_code'] : [])],
        response_types: ['code'],
        redirect_uris: options.redirectUris ?? ['com.example.broker:/callback', 'http://127.0.0.1/callback'],
        post_logout_redirect_uris: options.postLogoutRedirectUris ?? ['com.example.broker:/logged-out', 'http://127.0.0.1/logged-out'],
      },
      {
        // A confidential client only for introspect(): RFC 7662 requires the caller to authenticate.
        client_id: INTROSPECTOR_ID,
        client_secret: introspectorSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: signingKeys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // devInteractions accept any login name; it becomes the subject.
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub, email: `${sub}@example.test`, email_verified: true, preferred_username: sub }),
    }),
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
    conformIdTokenClaims: options.idTokenOnlySub === true, // false: scope-requested claims (email) in the ID token too
    clockTolerance: 0, // else tokens stay valid 15 s past their exp
    interactions: { policy: interactionPolicyWithoutNativeConsent() },
    pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
    routes,
    features: {
      devInteractions: { enabled: true },
      ...(options.deviceFlow ? { deviceFlow: deviceFlowFeature() } : {}),
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) =>
          client.clientId === INTROSPECTOR_ID || token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: resourceServers.length > 0,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          if (!resourceServers.includes(indicator)) throw new InvalidTarget(`${indicator} is not a resource server of this provider`);
          return { scope: 'api:read api:write', audience: indicator, accessTokenFormat: 'jwt', accessTokenTTL: live.accessTokenTtl };
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        // Same shape as oidc-provider's default page (the browser user submits the "yes" button), minus fonts.
        logoutSource: (ctx: KoaContext, form: string) => {
          ctx.body = page(
            'Logout Request',
            `<h1>Sign out from ${escapeHtml(ctx.host)}?</h1>${form}` +
              '<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>' +
              '<button type="submit" form="op.logoutForm">No, stay signed in</button>',
          );
        },
        postLogoutSuccessSource: (ctx: KoaContext) => {
          ctx.body = page('Signed out', '<h1>Signed out</h1>');
        },
      },
    },
    clientBasedCORS: () => false,
    renderError: (ctx: KoaContext, out: Record<string, string>) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>${escapeHtml(out['error'] ?? 'error')}</h1><p>${escapeHtml(out['error_description'] ?? '')}</p>`);
    },
    ttl: {
      AccessToken: () => live.accessTokenTtl,
      IdToken: () => idTokenTtl,
      RefreshToken: () => 14 * DAY,
      Grant: () => 14 * DAY,
      Session: () => 14 * DAY,
      Interaction: () => 60 * 60,
      DeviceCode: () => options.deviceCodeTtl ?? 600,
    },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }, source: GrantSource) =>
      client.grantTypeAllowed('refresh_token') && offlineRequested(source),
    // Offline grants outlive the provider session (oidc-provider's rule, keyed on our notion of "offline").
    expiresWithSession: (_ctx: unknown, source: GrantSource) => !offlineRequested(source),
    rotateRefreshToken: () => live.rotate,
  });

  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === routes.authorization) {
      const query = new URLSearchParams(ctx.querystring);
      const challenge = query.get('code_challenge');
      if (challenge && query.get('scope')?.split(' ').includes('offline_access')) offlineChallenges.add(challenge);
      if (resourceServers.length > 0 && !query.has('resource')) {
        for (const resource of resourceServers) query.append('resource', resource);
        ctx.url = `${ctx.path}?${query.toString()}`;
      }
    }
    if (options.wristbandRoutes && ctx.method === 'GET' && ctx.path === WRISTBAND_LOGOUT) {
      // Wristband: /api/v1/logout?client_id&redirect_url&state → OIDC RP-Initiated Logout 1.0 §2 parameters.
      const query = new URLSearchParams(ctx.querystring);
      const mapped = new URLSearchParams();
      const names = [
        ['client_id', 'client_id'],
        ['redirect_url', 'post_logout_redirect_uri'],
        ['state', 'state'],
      ] as const;
      for (const [from, to] of names) {
        const value = query.get(from);
        if (value !== null) mapped.set(to, value);
      }
      ctx.url = `${routes.end_session}?${mapped.toString()}`;
    }
    await next();
    if (options.deviceInterval !== undefined && ctx.method === 'POST' && ctx.path === DEVICE_AUTHORIZATION_PATH && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...(ctx.body as Record<string, unknown>), interval: options.deviceInterval };
    }
    // A provider that sends no ID token with a refresh (OIDC Core §12.2 lets it).
    if (!live.idTokenOnRefresh && ctx.method === 'POST' && ctx.path === routes.token && typeof ctx.body === 'object' && ctx.body !== null) {
      const body = ctx.body as Record<string, unknown>;
      const grantType = (ctx as KoaContext & { oidc?: { params?: Record<string, unknown> } }).oidc?.params?.['grant_type'];
      if (grantType === 'refresh_token') delete body['id_token'];
    }
  });
  provider.on('server_error', (_ctx, error) => console.error('test IdP server_error:', error));
  internal.on('request', provider.callback());

  const endpoints: TestIdpEndpoints = {
    discovery: `${base}/.well-known/openid-configuration`,
    authorization: base + routes.authorization,
    token: base + routes.token,
    revocation: base + routes.revocation,
    userinfo: base + routes.userinfo,
    jwks: base + routes.jwks,
    endSession: base + routes.end_session,
    ...(options.wristbandRoutes ? { logout: base + WRISTBAND_LOGOUT } : {}),
    introspection: base + routes.introspection,
    ...(options.deviceFlow ? { deviceAuthorization: base + DEVICE_AUTHORIZATION_PATH, deviceVerification: `${base}/device` } : {}),
  };

  // Straight to the provider's own port: no faults, not in `requests`. (The response names no URLs, so the
  // internal Host does not matter here; client_secret_basic has no audience to check.)
  const introspect = async (token: string): Promise<{ active: boolean; exp?: number; sub?: string; token_type?: string }> => {
    const response = await fetch(`http://127.0.0.1:${internalPort}${routes.introspection}`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${INTROSPECTOR_ID}:${introspectorSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`introspection failed: ${response.status} ${text}`);
    return JSON.parse(text) as { active: boolean };
  };

  return {
    issuer,
    port,
    clientId,
    counts,
    requests,
    endpoints,
    faults: options.frontProxy ? edge : undefined,
    introspect,
    async revokeRefreshToken(refreshToken) {
      const token = await provider.RefreshToken.find(refreshToken);
      if (!token) throw new Error('revokeRefreshToken: no such refresh token');
      await token.destroy();
    },
    setAccessTokenTtl(seconds) {
      live.accessTokenTtl = seconds;
    },
    setRotation(on) {
      live.rotate = on;
    },
    setIdTokenOnRefresh(on) {
      live.idTokenOnRefresh = on;
    },
    async rotateSigningKey(rotation = {}) {
      const key = await newRs256Key();
      signingKeys = rotation.keepOld ? [key, ...signingKeys] : [key];
      // oidc-provider signs with the first matching key of its key set and serves the set at jwks_uri.
      initializeKeystore.call(provider, { keys: signingKeys });
      return key.kid;
    },
    get signingKids() {
      return signingKeys.map((key) => key.kid);
    },
    issuedSecrets,
    async close() {
      await edge.close();
      const closed = new Promise<void>((resolve) => internal.close(() => resolve()));
      internal.closeAllConnections();
      await closed;
    },
  };
}
