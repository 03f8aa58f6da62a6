/**
 * Command-line flags of `tokenbroker profile add` and `tokenbroker init`: one flag per config field
 * (README, "Configuration"), turned into the profile object as it is written to the config file. Only
 * what is given is written; the daemon fills in the defaults. A wrong value names the flag and what
 * was expected; the whole profile is then checked with the daemon's own rules (daemon/config.ts).
 */
import { UsageError } from './usage.js';

/** parseArgs options of every profile field. */
export const PROFILE_FLAG_OPTIONS = {
  issuer: { type: 'string' },
  'wristband-domain': { type: 'string' },
  tenant: { type: 'string' },
  'tenant-domain': { type: 'string' },
  'tenant-custom-domain': { type: 'string' },
  'wristband-custom-domain-active': { type: 'boolean' },
  'client-id': { type: 'string' },
  redirect: { type: 'string' },
  scope: { type: 'string', multiple: true },
  param: { type: 'string', multiple: true },
  'post-logout-redirect': { type: 'string' },
  'login-timeout': { type: 'string' },
  'http-timeout': { type: 'string' },
  'refresh-lead': { type: 'string' },
  'refresh-jitter': { type: 'string' },
  'min-valid': { type: 'string' },
  'retry-limit': { type: 'string' },
  'retry-base-delay': { type: 'string' },
  'retry-max-delay': { type: 'string' },
  'on-refresh-failure': { type: 'string' },
  'relogin-browser': { type: 'string' },
  set: { type: 'string', multiple: true },
} as const;

export type ProfileFlagValues = {
  [K in keyof typeof PROFILE_FLAG_OPTIONS]?: (typeof PROFILE_FLAG_OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof PROFILE_FLAG_OPTIONS)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

/** The help text of the profile flags (shared by `profile add` and `init`). */
export const PROFILE_FLAGS_HELP = `Provider (one of):
  --issuer URL                   an OpenID provider's issuer (https; http only on 127.0.0.1/localhost);
                                 its /.well-known/openid-configuration is used
  --wristband-domain HOST        Wristband: the application vanity domain (myapp-mycompany.us.wristband.dev)
    --tenant NAME                  the tenant's name (its login pages: NAME-HOST)
    --tenant-domain HOST           or the tenant's complete host
    --tenant-custom-domain HOST    or the tenant's custom domain
    --wristband-custom-domain-active  the application uses a custom domain
Client:
  --client-id ID                 the native (public) client's id (required)
  --redirect loopback|URI        "loopback" (default; RFC 8252 §7.3), http://127.0.0.1:PORT/PATH for a fixed
                                 port, or a custom scheme URI such as com.example.broker:/callback (§7.1)
  --scope SCOPE                  repeat, or space-separated (default: openid offline_access; Wristband + email)
  --param KEY=VALUE              an extra authorization parameter, e.g. prompt=consent (repeat)
  --post-logout-redirect URI     where the provider's logout page returns to
Timing and policy:
  --login-timeout SECONDS        how long a browser sign-in may take (default 300)
  --http-timeout SECONDS         each request to the provider (default 10)
  --refresh-lead SECONDS         refresh this long before expiry (default 60)
  --refresh-jitter SECONDS       random spread (default 5)
  --min-valid SECONDS            token.get refreshes first below this (default 30)
  --retry-limit N                attempts per refresh on transient failures (default 3)
  --retry-base-delay MS          first backoff delay (default 1000)
  --retry-max-delay MS           longest backoff delay (default 300000)
  --on-refresh-failure relogin|logout   after a permanent refresh failure (default relogin)
  --relogin-browser on-demand|immediately   (default on-demand)
  --set FIELD=JSON               any other profile field, e.g. --set refresh.leadSeconds=30 (repeat)`;

/** Which config field each flag writes, for messages that name both. */
export const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  issuer: '--issuer',
  'wristband.applicationVanityDomain': '--wristband-domain',
  'wristband.tenantName': '--tenant',
  'wristband.tenantDomain': '--tenant-domain',
  'wristband.tenantCustomDomain': '--tenant-custom-domain',
  clientId: '--client-id',
  redirectUri: '--redirect',
  scopes: '--scope',
  authorizationParams: '--param',
  postLogoutRedirectUri: '--post-logout-redirect',
  loginTimeoutSeconds: '--login-timeout',
  httpTimeoutSeconds: '--http-timeout',
  'refresh.leadSeconds': '--refresh-lead',
  'refresh.jitterSeconds': '--refresh-jitter',
  'refresh.minValidSeconds': '--min-valid',
  'refresh.retry.limit': '--retry-limit',
  'refresh.retry.baseDelayMs': '--retry-base-delay',
  'refresh.retry.maxDelayMs': '--retry-max-delay',
  onRefreshFailure: '--on-refresh-failure',
  reloginBrowser: '--relogin-browser',
};

/** True when any profile flag was given (then no wizard runs). */
export function anyProfileFlag(values: ProfileFlagValues): boolean {
  return Object.keys(PROFILE_FLAG_OPTIONS).some((flag) => (values as Record<string, unknown>)[flag] !== undefined);
}

function whole(flag: string, value: string | undefined, unit: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${flag}: expected a whole number of ${unit}, got ${JSON.stringify(value)}`);
  return Number(value.trim());
}

function oneOf(flag: string, value: string | undefined, allowed: readonly string[]): string | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value)) throw new UsageError(`--${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown, flag: string): void {
  const keys = dotted.split('.');
  if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) {
    throw new UsageError(`${flag}: ${JSON.stringify(dotted)} is not a field name (e.g. refresh.leadSeconds)`);
  }
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new UsageError(`${flag}: ${JSON.stringify(dotted)}: "${key}" is not an object`);
    }
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

/**
 * The profile object as written to the config file, from the flags. Throws UsageError naming the flag
 * for values that are wrong on their face; the rest is checked by the config rules afterwards.
 */
export function profileFromFlags(values: ProfileFlagValues): Record<string, unknown> {
  const profile: Record<string, unknown> = {};
  const put = (field: string, value: unknown, flag: string) => {
    if (value !== undefined) setPath(profile, field, value, flag);
  };
  const wristbandGiven = ['wristband-domain', 'tenant', 'tenant-domain', 'tenant-custom-domain', 'wristband-custom-domain-active'].some(
    (flag) => (values as Record<string, unknown>)[flag] !== undefined,
  );
  if (values.issuer !== undefined && wristbandGiven) {
    throw new UsageError('--issuer and the Wristband flags (--wristband-domain, --tenant …) exclude each other: give one provider');
  }
  put('issuer', values.issuer, '--issuer');
  if (wristbandGiven) {
    if (values['wristband-domain'] === undefined)
      throw new UsageError('--wristband-domain is required with --tenant, --tenant-domain or --tenant-custom-domain');
    const tenants = [values.tenant, values['tenant-domain'], values['tenant-custom-domain']].filter((t) => t !== undefined);
    if (tenants.length !== 1) throw new UsageError('Wristband: give exactly one of --tenant, --tenant-domain or --tenant-custom-domain');
    put('wristband.applicationVanityDomain', values['wristband-domain'], '--wristband-domain');
    put('wristband.tenantName', values.tenant, '--tenant');
    put('wristband.tenantDomain', values['tenant-domain'], '--tenant-domain');
    put('wristband.tenantCustomDomain', values['tenant-custom-domain'], '--tenant-custom-domain');
    put('wristband.isApplicationCustomDomainActive', values['wristband-custom-domain-active'], '--wristband-custom-domain-active');
  }
  put('clientId', values['client-id'], '--client-id');
  put('redirectUri', values.redirect, '--redirect');
  if (values.scope !== undefined) {
    const scopes = values.scope.flatMap((s) => s.split(/[\s,]+/)).filter((s) => s !== '');
    if (scopes.length === 0) throw new UsageError('--scope: expected at least one scope, e.g. --scope "openid offline_access"');
    put('scopes', [...new Set(scopes)], '--scope');
  }
  if (values.param !== undefined) {
    const params: Record<string, string> = {};
    for (const pair of values.param) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--param: expected KEY=VALUE, e.g. prompt=consent, got ${JSON.stringify(pair)}`);
      params[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    put('authorizationParams', params, '--param');
  }
  put('postLogoutRedirectUri', values['post-logout-redirect'], '--post-logout-redirect');
  put('loginTimeoutSeconds', whole('login-timeout', values['login-timeout'], 'seconds'), '--login-timeout');
  put('httpTimeoutSeconds', whole('http-timeout', values['http-timeout'], 'seconds'), '--http-timeout');
  put('refresh.leadSeconds', whole('refresh-lead', values['refresh-lead'], 'seconds'), '--refresh-lead');
  put('refresh.jitterSeconds', whole('refresh-jitter', values['refresh-jitter'], 'seconds'), '--refresh-jitter');
  put('refresh.minValidSeconds', whole('min-valid', values['min-valid'], 'seconds'), '--min-valid');
  put('refresh.retry.limit', whole('retry-limit', values['retry-limit'], 'attempts'), '--retry-limit');
  put('refresh.retry.baseDelayMs', whole('retry-base-delay', values['retry-base-delay'], 'milliseconds'), '--retry-base-delay');
  put('refresh.retry.maxDelayMs', whole('retry-max-delay', values['retry-max-delay'], 'milliseconds'), '--retry-max-delay');
  put('onRefreshFailure', oneOf('on-refresh-failure', values['on-refresh-failure'], ['relogin', 'logout']), '--on-refresh-failure');
  put('reloginBrowser', oneOf('relogin-browser', values['relogin-browser'], ['on-demand', 'immediately']), '--relogin-browser');
  for (const assignment of values.set ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set: expected FIELD=JSON, e.g. refresh.leadSeconds=30, got ${JSON.stringify(assignment)}`);
    const raw = assignment.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw; // a bare string: --set postLogoutRedirectUri=com.example.broker:/bye
    }
    setPath(profile, assignment.slice(0, eq), value, '--set');
  }
  return profile;
}

/**
 * The flag that sets a config field, from a CONFIG_INVALID field such as `profiles.work.refresh.leadSeconds`
 * (for messages: "… (--refresh-lead)").
 */
export function flagForField(field: string | undefined, profile: string): string | undefined {
  if (field === undefined) return undefined;
  const prefix = `profiles.${profile}.`;
  if (!field.startsWith(prefix)) return undefined;
  const rest = field.slice(prefix.length);
  for (let key = rest; key !== ''; key = key.includes('.') ? key.slice(0, key.lastIndexOf('.')) : '') {
    if (FLAG_OF_FIELD[key] !== undefined) return FLAG_OF_FIELD[key];
  }
  return undefined;
}

/** The fields `tokenbroker init`/`profile add` cannot do without, as flags (for a non-interactive run). */
export function missingRequiredFlags(profile: Record<string, unknown>): string[] {
  const missing: string[] = [];
  if (profile['issuer'] === undefined && profile['wristband'] === undefined) missing.push('--issuer URL (or --wristband-domain HOST --tenant NAME)');
  if (profile['clientId'] === undefined) missing.push('--client-id ID');
  return missing;
}
