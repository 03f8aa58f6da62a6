/**
 * `provider:<profile>`: the profile's provider answers — OIDC discovery (OIDC Discovery §4) and the JWKS,
 * or for the Wristband preset its JWKS — and its clock agrees with ours, measured from the HTTP `Date`
 * header (RFC 9110 §6.6.1) of the JWKS response. Expiry times in tokens are the provider's clock: with a
 * large skew the broker refreshes too early or hands out tokens that the API already rejects.
 */
import { RequestError, type Response } from 'got';
import { BrokerError } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import { createHttpClient, resolveProviderMetadata, type HttpClient, type ProviderMetadata } from '../oauth/index.js';
import { OPENID_CONFIGURATION_PATH } from '../oauth/metadata.js';
import { ProviderEndpointError } from '../oauth/provider-error.js';
import { logoutLimits } from './provider-logout.js';
import { result, type CheckResult, type DoctorContext } from './types.js';

/** Above this, a warning. @see the refresh defaults: minValidSeconds 30 */
export const SKEW_WARN_SECONDS = 30;
/**
 * Above this, a failure: ID tokens are checked with 60 s of clock tolerance (daemon/oauth/id-token.ts),
 * so a clock this far off makes sign-ins fail, and expiry checks are off by more than a refresh lead.
 */
export const SKEW_FAIL_SECONDS = 60;

const CLOCK_FIX =
  "synchronise this machine's clock: enable NTP (systemd: timedatectl set-ntp true; macOS: System Settings > General > " +
  'Date & Time > Set time automatically; Windows: Settings > Time & language > Sync now)';

export async function checkProvider(profile: ProfileConfig, context: DoctorContext): Promise<CheckResult> {
  const id = `provider:${profile.name}`;
  const title = `provider (${profile.name})`;
  const field = profile.provider === 'wristband' ? `profiles.${profile.name}.wristband.applicationVanityDomain` : `profiles.${profile.name}.issuer`;
  const http = createHttpClient({ timeoutMs: context.httpTimeoutMs, retry: { limit: 0 } });

  let metadata: ProviderMetadata;
  const discoveryUrl = profile.issuer.replace(/\/$/, '') + OPENID_CONFIGURATION_PATH;
  try {
    metadata = await resolveProviderMetadata(profile, http);
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    if (error instanceof ProviderEndpointError) {
      const what = error.networkError ?? (error.status === undefined ? error.message : `HTTP ${error.status}`);
      return result(id, title, 'fail', `discovery ${discoveryUrl} failed: ${what}`, unreachableFix(discoveryUrl, field, error.status));
    }
    if (profile.provider === 'wristband') {
      return result(
        id,
        title,
        'fail',
        `${error.message} [${error.code}]`,
        `correct the wristband settings of profile ${profile.name} (see the README, section "Configuration")`,
      );
    }
    return result(
      id,
      title,
      'fail',
      `discovery ${discoveryUrl}: ${error.message} [${error.code}]`,
      error.field === 'issuer'
        ? `set ${field} to exactly the "issuer" of ${discoveryUrl}`
        : `the provider's discovery document is unusable; check ${field}, or ask the provider's administrator`,
    );
  }

  const jwksUrl = metadata.jwksUri;
  let response: Response<string>;
  const before = context.now();
  try {
    response = await get(http, jwksUrl);
  } catch (error) {
    const what = describeRequestError(error);
    return result(id, title, 'fail', `JWKS ${jwksUrl} failed: ${what.text}`, unreachableFix(jwksUrl, field, what.status));
  }
  const after = context.now();
  const keys = jwksKeyCount(response.body);
  if (keys === undefined) {
    return result(id, title, 'fail', `JWKS ${jwksUrl} is not a JSON Web Key Set (RFC 7517 §5)`, `check ${field}: it does not lead to the provider's key set`);
  }
  if (keys === 0) {
    return result(id, title, 'fail', `JWKS ${jwksUrl} has no keys: no token can be verified`, "ask the provider's administrator to publish its signing keys");
  }
  const reached = `${profile.provider === 'oidc' ? 'discovery and ' : ''}JWKS reachable (${keys} ${keys === 1 ? 'key' : 'keys'}, ${jwksUrl})`;
  const clockResult = clockCheck(id, title, reached, response.headers.date, before, after);
  // What logout cannot do at this provider turns an "ok" into a warning (a clock failure stays a failure).
  const limits = logoutLimits(profile, metadata);
  if (limits === undefined || clockResult.status === 'fail') return clockResult;
  return result(
    id,
    title,
    'warn',
    `${clockResult.detail}; but ${limits.detail}`,
    clockResult.fix === undefined ? limits.fix : `${clockResult.fix}; ${limits.fix}`,
  );
}

function clockCheck(id: string, title: string, reached: string, date: string | undefined, before: number, after: number): CheckResult {
  const skew = clockSkewSeconds(date, before, after);
  if (skew === undefined) return result(id, title, 'ok', `${reached}; clock skew not measured (no Date header)`);
  const skewText = describeSkew(skew);
  const magnitude = Math.abs(skew);
  if (magnitude > SKEW_FAIL_SECONDS) {
    return result(
      id,
      title,
      'fail',
      `${reached}, but ${skewText} (more than ${SKEW_FAIL_SECONDS} s): sign-ins will fail and token expiry checks will be wrong`,
      CLOCK_FIX,
    );
  }
  if (magnitude > SKEW_WARN_SECONDS) {
    return result(id, title, 'warn', `${reached}, but ${skewText} (more than ${SKEW_WARN_SECONDS} s): tokens may be refreshed late or early`, CLOCK_FIX);
  }
  return result(id, title, 'ok', `${reached}; clock skew ${skew >= 0 ? '+' : ''}${skew.toFixed(1)} s`);
}

function get(http: HttpClient, url: string): Promise<Response<string>> {
  return http.get(url, { followRedirect: true });
}

/**
 * The provider's clock minus ours, in seconds. A `Date` header has whole seconds (truncated), so the
 * provider's time was on average half a second later than it says; ours is the middle of the request.
 */
export function clockSkewSeconds(dateHeader: string | undefined, before: number, after: number): number | undefined {
  if (dateHeader === undefined) return undefined;
  const providerTime = Date.parse(dateHeader);
  if (Number.isNaN(providerTime)) return undefined;
  return (providerTime + 500 - (before + after) / 2) / 1000;
}

export function describeSkew(skew: number): string {
  const seconds = Math.round(Math.abs(skew));
  return skew >= 0 ? `this machine's clock is ${seconds} s behind the provider's` : `this machine's clock is ${seconds} s ahead of the provider's`;
}

function jwksKeyCount(body: unknown): number | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const value = JSON.parse(body) as { keys?: unknown };
    return typeof value === 'object' && value !== null && Array.isArray(value.keys) ? value.keys.length : undefined;
  } catch {
    return undefined;
  }
}

function describeRequestError(error: unknown): { text: string; status?: number } {
  if (error instanceof RequestError) {
    if (error.response !== undefined) return { text: `HTTP ${error.response.statusCode}`, status: error.response.statusCode };
    return { text: error.code || error.name };
  }
  return { text: error instanceof Error ? error.message : String(error) };
}

function unreachableFix(url: string, field: string, status: number | undefined): string {
  const host = new URL(url).host;
  if (status !== undefined && status >= 400 && status < 500) {
    return `${url} does not exist: check ${field} in the config`;
  }
  if (status !== undefined) return `the provider at ${host} is failing (HTTP ${status}); try again later or check its status page`;
  return `check that ${host} is reachable from this machine (network, VPN, firewall, DNS) and that ${field} is right`;
}
