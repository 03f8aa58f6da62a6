/**
 * The configuration file: where it is, its shape, and validation that names the wrong field.
 * Resolved once into complete `ProfileConfig`s with every default filled in.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkConfigPermissions } from './config-permissions.js';
import {
  BrokerError,
  PROFILE_NAME_PATTERN,
  arrayOf,
  boolean,
  integer,
  isPlainObject,
  object,
  oneOf,
  optional,
  profileName,
  record,
  string,
  type Check,
} from '../proto/index.js';
import { RESERVED_AUTHORIZATION_PARAMS } from './oauth/authorization-request.js';
import { checkHttpsUrl, checkRedirectUri, isLoopbackHost } from './oauth/url-rules.js';
import type { WristbandConfig } from './oauth/wristband.js';
import { Secret } from './secret.js';

export type TokenEndpointAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post';
export type RefreshFailurePolicy = 'relogin' | 'logout';
export type ReloginBrowser = 'on-demand' | 'immediately';
/** How the user signs in: the system browser (RFC 8252) or a code entered on another device (RFC 8628). */
export type LoginFlow = 'browser' | 'device';

export interface RetryConfig {
  /** Attempts per refresh before the session waits for its next backoff slot. @default 3 */
  readonly limit: number;
  /** First backoff delay. @default 1000 */
  readonly baseDelayMs: number;
  /** Longest backoff delay. @default 300000 (5 minutes) */
  readonly maxDelayMs: number;
}

export interface RefreshConfig {
  /** Refresh this long before expiry (capped at a third of the token lifetime). @default 60 */
  readonly leadSeconds: number;
  /** Random spread taken off the refresh time (capped at a tenth of the token lifetime) so machines and profiles do not refresh in lockstep. @default 300 */
  readonly jitterSeconds: number;
  /** `token.get` refreshes first when less than this is left. @default 30 */
  readonly minValidSeconds: number;
  readonly retry: RetryConfig;
}

/** One profile, every default resolved. */
export interface ProfileConfig {
  readonly name: string;
  /** "oidc" when configured by issuer, "wristband" by the preset. */
  readonly provider: 'oidc' | 'wristband';
  /** OIDC issuer URL (for Wristband, `https://{applicationVanityDomain}`). */
  readonly issuer: string;
  readonly wristband?: WristbandConfig;
  readonly clientId: string;
  /** A custom-scheme URI (`com.example.broker:/callback`) or "loopback". @default "loopback" */
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  /** Extra authorization request parameters such as `prompt` or `login_hint`. */
  readonly authorizationParams: Readonly<Record<string, string>>;
  readonly postLogoutRedirectUri?: string;
  /** RFC 7009 revocation endpoint, used only when neither the OpenID nor the RFC 8414 metadata names one. */
  readonly revocationEndpoint?: string;
  /** OIDC RP-Initiated Logout endpoint, used only when the provider's metadata names none. */
  readonly endSessionEndpoint?: string;
  /** RFC 8628 device authorization endpoint, used only when the provider's metadata names none. */
  readonly deviceAuthorizationEndpoint?: string;
  /** The API the access token is for, sent as `audience` on the authorization request (Auth0). */
  readonly audience?: string;
  /**
   * Send `prompt=consent` with `offline_access` (OIDC Core §11), for providers that issue a refresh token
   * only then. Ignored when `authorizationParams.prompt` is set. @default false
   */
  readonly offlineAccessConsent: boolean;
  /**
   * A client secret for providers that require one even for installed apps (Google's desktop clients);
   * not confidential there, but stored and logged as a secret all the same.
   */
  readonly clientSecret?: Secret;
  /** How the client authenticates at the token and revocation endpoints (RFC 6749 §2.3.1). @default "client_secret_basic" with a clientSecret, else "none" */
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** @default 300 */
  readonly loginTimeoutSeconds: number;
  /** Timeout of each HTTP request to the provider. @default 10 */
  readonly httpTimeoutSeconds: number;
  readonly refresh: RefreshConfig;
  /** @default "relogin" */
  readonly onRefreshFailure: RefreshFailurePolicy;
  /** @default "on-demand" */
  readonly reloginBrowser: ReloginBrowser;
  /** Show a desktop notification when the session needs a new sign-in (daemon/notify/). @default true */
  readonly notify: boolean;
  /** "device": every sign-in uses the device authorization grant (RFC 8628). @default "browser" */
  readonly flow: LoginFlow;
  /**
   * The token-request parameter that carries `token.get`'s `resource`, for providers with their own
   * (Auth0: "audience"). Absent: "resource" (RFC 8707).
   */
  readonly audienceParam?: string;
}

export interface BrokerConfig {
  /** The file it came from; null when no file exists. */
  readonly path: string | null;
  readonly defaultProfile: string | undefined;
  readonly profiles: ReadonlyMap<string, ProfileConfig>;
}

const hostname = string({
  min: 1,
  max: 253,
  pattern: /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:\d{1,5})?$/,
  what: 'a host name such as "myapp-mycompany.us.wristband.dev" (no scheme, no path)',
});

const seconds = (min: number, max: number) => integer({ min, max });

const profileShape = object(
  {
    issuer: optional(string({ min: 1, max: 2048 })),
    wristband: optional(
      object(
        {
          applicationVanityDomain: hostname,
          tenantDomain: optional(hostname),
          tenantName: optional(string({ min: 1, max: 253, pattern: /^[A-Za-z0-9-]+$/, what: 'a tenant name (letters, digits, "-")' })),
          tenantCustomDomain: optional(hostname),
          isApplicationCustomDomainActive: optional(boolean),
        },
        { strict: true },
      ),
    ),
    clientId: string({ min: 1, max: 512 }),
    redirectUri: optional(string({ min: 1, max: 2048 })),
    scopes: optional(arrayOf(string({ min: 1, max: 256, pattern: /^[\x21\x23-\x5B\x5D-\x7E]+$/, what: 'a scope token' }), { max: 64 })),
    authorizationParams: optional(record(string({ max: 2048 }), { key: reservedParamCheck() })),
    postLogoutRedirectUri: optional(string({ min: 1, max: 2048 })),
    revocationEndpoint: optional(string({ min: 1, max: 2048 })),
    endSessionEndpoint: optional(string({ min: 1, max: 2048 })),
    deviceAuthorizationEndpoint: optional(string({ min: 1, max: 2048 })),
    audience: optional(string({ min: 1, max: 2048 })),
    offlineAccessConsent: optional(boolean),
    clientSecret: optional(string({ min: 1, max: 2048 })),
    tokenEndpointAuthMethod: optional(oneOf(['none', 'client_secret_basic', 'client_secret_post'] as const)),
    loginTimeoutSeconds: optional(seconds(5, 3600)),
    httpTimeoutSeconds: optional(seconds(1, 300)),
    refresh: optional(
      object(
        {
          leadSeconds: optional(seconds(0, 3600)),
          jitterSeconds: optional(seconds(0, 600)),
          minValidSeconds: optional(seconds(0, 3600)),
          retry: optional(
            object(
              {
                limit: optional(integer({ min: 0, max: 10 })),
                baseDelayMs: optional(integer({ min: 10, max: 600_000 })),
                maxDelayMs: optional(integer({ min: 10, max: 3_600_000 })),
              },
              { strict: true },
            ),
          ),
        },
        { strict: true },
      ),
    ),
    onRefreshFailure: optional(oneOf(['relogin', 'logout'] as const)),
    reloginBrowser: optional(oneOf(['on-demand', 'immediately'] as const)),
    notify: optional(boolean),
    flow: optional(oneOf(['browser', 'device'] as const)),
    audienceParam: optional(audienceParamCheck()),
  },
  { strict: true },
);

/** Parameters of a refresh request the broker sets itself (RFC 6749 §6); `audienceParam` cannot be one. */
const REFRESH_REQUEST_PARAMS: readonly string[] = ['grant_type', 'refresh_token', 'client_id', 'client_secret', 'scope'];

function audienceParamCheck(): Check<string> {
  const name = string({ min: 1, max: 64, pattern: /^[A-Za-z0-9_.-]+$/, what: 'a parameter name such as "audience" (letters, digits, "_", ".", "-")' });
  return (value, field) => {
    const param = name(value, field);
    if (REFRESH_REQUEST_PARAMS.includes(param)) {
      throw new BrokerError('BAD_REQUEST', `${field}: "${param}" is set by the broker; name the provider's audience parameter (e.g. "audience")`, { field });
    }
    return param;
  };
}

type RawProfile = ReturnType<typeof profileShape>;

function reservedParamCheck(): Check<string> {
  return (key, field) => {
    const name = String(key);
    if (RESERVED_AUTHORIZATION_PARAMS.includes(name)) {
      throw new BrokerError('BAD_REQUEST', `${field}: "${name}" is set by the broker and cannot be configured`, { field });
    }
    return name;
  };
}

const fileShape = object(
  {
    defaultProfile: optional(profileName),
    profiles: optional((value: unknown, field: string) => {
      if (!isPlainObject(value)) throw new BrokerError('BAD_REQUEST', `${field}: expected an object of profiles`, { field });
      return value;
    }),
    // git and docker credential helpers' host mapping: read and checked by daemon/cli/credentials-config.ts.
    credentials: optional((value: unknown) => value),
  },
  { strict: true },
);

/** Where the config file is: `--config`, else `$TOKENBROKER_CONFIG`, else the platform's config dir. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['TOKENBROKER_CONFIG']) return env['TOKENBROKER_CONFIG'];
  const home = os.homedir();
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'tokenbroker', 'config.json');
  if (process.platform === 'win32') {
    return path.join(env['APPDATA'] ?? path.join(home, 'AppData', 'Roaming'), 'tokenbroker', 'config.json');
  }
  return path.join(env['XDG_CONFIG_HOME'] || path.join(home, '.config'), 'tokenbroker', 'config.json');
}

/**
 * Loads and validates the config. A missing file gives an empty config when `allowMissing`; a broken
 * one throws CONFIG_INVALID naming the field.
 */
export function loadConfig(file: string, options: { readonly allowMissing?: boolean } = {}): BrokerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && options.allowMissing) {
      return { path: null, defaultProfile: undefined, profiles: new Map() };
    }
    throw new BrokerError('CONFIG_INVALID', `cannot read the config file ${file}: ${(error as Error).message}`);
  }
  // Whoever can write the config decides where refresh tokens go: it must be the user's own (config-permissions.ts).
  checkConfigPermissions(file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BrokerError('CONFIG_INVALID', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  return { path: file, ...parseConfig(json, file) };
}

/**
 * Validates an already parsed config object. Throws CONFIG_INVALID naming the field; the message starts
 * with `source` (the file) when given.
 */
export function parseConfig(json: unknown, source?: string): Omit<BrokerConfig, 'path'> {
  try {
    return resolveConfig(json);
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    // The checks are the protocol's combinators, which say BAD_REQUEST; in a config file that is CONFIG_INVALID.
    const message = source === undefined ? error.message : `${source}: ${error.message}`;
    throw new BrokerError('CONFIG_INVALID', message, { ...(error.field === undefined ? {} : { field: error.field }), cause: error });
  }
}

function resolveConfig(json: unknown): Omit<BrokerConfig, 'path'> {
  const raw = fileShape(json, '');
  const profiles = new Map<string, ProfileConfig>();
  for (const [name, value] of Object.entries(raw.profiles ?? {})) {
    const field = `profiles.${name}`;
    if (!PROFILE_NAME_PATTERN.test(name)) {
      throw new BrokerError('BAD_REQUEST', `${field}: a profile name has letters, digits, ".", "_", "-" (at most 64)`, { field });
    }
    profiles.set(name, resolveProfile(name, profileShape(value, field), field));
  }
  if (raw.defaultProfile !== undefined && !profiles.has(raw.defaultProfile)) {
    throw new BrokerError('BAD_REQUEST', `defaultProfile: no profile named "${raw.defaultProfile}" in profiles`, {
      field: 'defaultProfile',
    });
  }
  const defaultProfile = raw.defaultProfile ?? (profiles.size === 1 ? [...profiles.keys()][0] : undefined);
  return { defaultProfile, profiles };
}

function resolveProfile(name: string, raw: RawProfile, field: string): ProfileConfig {
  if ((raw.issuer === undefined) === (raw.wristband === undefined)) {
    throw new BrokerError('BAD_REQUEST', `${field}: set exactly one of "issuer" (any OpenID provider) or "wristband" (the preset)`, {
      field: `${field}.issuer`,
    });
  }
  let issuer: string;
  let wristband: WristbandConfig | undefined;
  if (raw.wristband) {
    const tenants = [raw.wristband.tenantDomain, raw.wristband.tenantName, raw.wristband.tenantCustomDomain].filter((t) => t !== undefined);
    if (tenants.length !== 1) {
      throw new BrokerError('BAD_REQUEST', `${field}.wristband: set exactly one of tenantDomain, tenantName or tenantCustomDomain`, {
        field: `${field}.wristband.tenantDomain`,
      });
    }
    wristband = { ...raw.wristband, isApplicationCustomDomainActive: raw.wristband.isApplicationCustomDomainActive ?? false };
    // The token issuer is the application host (a local stand-in on a loopback host speaks http).
    const appHost = raw.wristband.applicationVanityDomain;
    issuer = `${isLoopbackHost(appHost.replace(/:\d+$/, '')) ? 'http' : 'https'}://${appHost}`;
  } else {
    issuer = checkHttpsUrl(raw.issuer!, `${field}.issuer`);
  }
  const redirectUri = raw.redirectUri ?? 'loopback';
  checkRedirectUri(redirectUri, `${field}.redirectUri`);
  if (raw.postLogoutRedirectUri !== undefined) checkRedirectUri(raw.postLogoutRedirectUri, `${field}.postLogoutRedirectUri`);
  for (const name of ['revocationEndpoint', 'endSessionEndpoint', 'deviceAuthorizationEndpoint'] as const) {
    const value = raw[name];
    if (value !== undefined) checkHttpsUrl(value, `${field}.${name}`);
  }
  const tokenEndpointAuthMethod = raw.tokenEndpointAuthMethod ?? (raw.clientSecret === undefined ? 'none' : 'client_secret_basic');
  if ((tokenEndpointAuthMethod === 'none') !== (raw.clientSecret === undefined)) {
    throw new BrokerError(
      'BAD_REQUEST',
      raw.clientSecret === undefined
        ? `${field}.tokenEndpointAuthMethod: "${tokenEndpointAuthMethod}" needs a clientSecret`
        : `${field}.tokenEndpointAuthMethod: "none" sends no secret; remove clientSecret or use "client_secret_basic" or "client_secret_post"`,
      { field: `${field}.tokenEndpointAuthMethod` },
    );
  }
  const authorizationParams: Record<string, string> = { ...(raw.authorizationParams ?? {}) };
  if (raw.audience !== undefined) {
    if (authorizationParams['audience'] !== undefined) {
      throw new BrokerError('BAD_REQUEST', `${field}.audience: set either "audience" or authorizationParams.audience, not both`, {
        field: `${field}.audience`,
      });
    }
    authorizationParams['audience'] = raw.audience;
  }
  const scopes = raw.scopes ?? (raw.wristband ? ['openid', 'offline_access', 'email'] : ['openid', 'offline_access']);
  // OIDC Core §11: offline_access is to be asked with prompt=consent (unless a prompt is configured).
  if (raw.offlineAccessConsent === true && scopes.includes('offline_access') && authorizationParams['prompt'] === undefined) {
    authorizationParams['prompt'] = 'consent';
  }
  if (wristband && raw.flow === 'device') {
    // Wristband documents no device authorization endpoint (RFC 8628): none is invented.
    throw new BrokerError('BAD_REQUEST', `${field}.flow: the wristband preset has no device authorization endpoint; use "browser"`, {
      field: `${field}.flow`,
    });
  }
  const retry = raw.refresh?.retry;
  const baseDelayMs = retry?.baseDelayMs ?? 1_000;
  const maxDelayMs = retry?.maxDelayMs ?? 300_000;
  if (maxDelayMs < baseDelayMs) {
    throw new BrokerError('BAD_REQUEST', `${field}.refresh.retry.maxDelayMs: must be at least baseDelayMs (${baseDelayMs})`, {
      field: `${field}.refresh.retry.maxDelayMs`,
    });
  }
  return {
    name,
    provider: wristband ? 'wristband' : 'oidc',
    issuer,
    ...(wristband ? { wristband } : {}),
    clientId: raw.clientId,
    redirectUri,
    scopes,
    authorizationParams,
    ...(raw.postLogoutRedirectUri === undefined ? {} : { postLogoutRedirectUri: raw.postLogoutRedirectUri }),
    ...(raw.revocationEndpoint === undefined ? {} : { revocationEndpoint: raw.revocationEndpoint }),
    ...(raw.endSessionEndpoint === undefined ? {} : { endSessionEndpoint: raw.endSessionEndpoint }),
    ...(raw.deviceAuthorizationEndpoint === undefined ? {} : { deviceAuthorizationEndpoint: raw.deviceAuthorizationEndpoint }),
    ...(raw.audience === undefined ? {} : { audience: raw.audience }),
    offlineAccessConsent: raw.offlineAccessConsent ?? false,
    ...(raw.clientSecret === undefined ? {} : { clientSecret: new Secret(raw.clientSecret) }),
    tokenEndpointAuthMethod,
    loginTimeoutSeconds: raw.loginTimeoutSeconds ?? 300,
    httpTimeoutSeconds: raw.httpTimeoutSeconds ?? 10,
    refresh: {
      leadSeconds: raw.refresh?.leadSeconds ?? 60,
      jitterSeconds: raw.refresh?.jitterSeconds ?? 300,
      minValidSeconds: raw.refresh?.minValidSeconds ?? 30,
      retry: { limit: retry?.limit ?? 3, baseDelayMs, maxDelayMs },
    },
    onRefreshFailure: raw.onRefreshFailure ?? 'relogin',
    reloginBrowser: raw.reloginBrowser ?? 'on-demand',
    notify: raw.notify ?? true,
    flow: raw.flow ?? 'browser',
    ...(raw.audienceParam === undefined ? {} : { audienceParam: raw.audienceParam }),
  };
}
