/**
 * The authorization response that arrives at the redirect URI (RFC 6749 §4.1.2), checked for the
 * issuer (RFC 9207) before anything in it is trusted.
 */
import { BrokerError } from '../../proto/errors.js';
import { Secret } from '../secret.js';

export interface ExpectedAuthorizationResponse {
  /** The `state` of the request this response answers. */
  readonly state: string;
  /** The provider's issuer identifier. */
  readonly issuer: string;
  /** The provider advertises `authorization_response_iss_parameter_supported` (RFC 9207 §3). */
  readonly issRequired: boolean;
}

/** LOGIN_FAILED from the provider's error response, keeping its `error` code (e.g. access_denied, login_required). */
export class AuthorizationResponseError extends BrokerError {
  readonly oauthError: string;
  readonly oauthErrorDescription?: string;

  constructor(oauthError: string, oauthErrorDescription: string | undefined) {
    const text = oauthError + (oauthErrorDescription === undefined ? '' : `: ${oauthErrorDescription}`);
    super('LOGIN_FAILED', `the provider refused the login (${text})`, { field: 'error' });
    this.oauthError = oauthError;
    if (oauthErrorDescription !== undefined) this.oauthErrorDescription = oauthErrorDescription;
  }
}

export interface AuthorizationResponse {
  readonly code: Secret;
}

function parseUrl(input: string): URL {
  if (typeof input !== 'string' || input.length > 16_384) {
    throw new BrokerError('BAD_REQUEST', 'url: expected the redirect URL as a string', { field: 'url' });
  }
  try {
    return new URL(input);
  } catch {
    throw new BrokerError('BAD_REQUEST', 'url: not an absolute URL', { field: 'url' });
  }
}

/** One parameter, refusing repeats (RFC 6749 §3.1: parameters MUST NOT be included more than once). */
function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw new BrokerError('LOGIN_FAILED', `the authorization response repeats "${name}"`, { field: name });
  return values[0];
}

/** Safe-to-show text from the provider: control characters removed, bounded. */
function printable(value: string): string {
  return value
    .replace(/[\x00-\x1F\x7F]/g, ' ')
    .trim()
    .slice(0, 300);
}

/**
 * The `state` of a redirect URL, for the session layer to find the login it belongs to.
 * Throws BAD_REQUEST (field "url") for input that is not a URL.
 */
export function extractState(url: string): string | undefined {
  const params = parseUrl(url).searchParams;
  const values = params.getAll('state');
  return values.length === 1 ? values[0] : undefined;
}

/**
 * Validates the authorization response and returns the code. Order per RFC 9207 §2.4: the issuer is
 * checked before the response (success or error) is processed.
 */
export function parseAuthorizationResponse(url: string, expected: ExpectedAuthorizationResponse): AuthorizationResponse {
  const params = parseUrl(url).searchParams;

  // RFC 6749 §10.12: the response must carry the state of our request.
  const state = single(params, 'state');
  if (state !== expected.state) {
    throw new BrokerError('LOGIN_FAILED', 'the authorization response does not match the login request (state)', { field: 'state' });
  }

  // RFC 9207 §2.4: when present, iss must equal the issuer; when the provider advertises it, it must be present.
  const iss = single(params, 'iss');
  if (iss !== undefined && iss !== expected.issuer) {
    throw new BrokerError(
      'LOGIN_FAILED',
      `the authorization response came from issuer ${JSON.stringify(printable(iss))}, expected ${expected.issuer} (RFC 9207)`,
      {
        field: 'iss',
      },
    );
  }
  if (iss === undefined && expected.issRequired) {
    throw new BrokerError('LOGIN_FAILED', 'the authorization response has no "iss" although the provider promises one (RFC 9207 §2.4)', {
      field: 'iss',
    });
  }

  // RFC 6749 §4.1.2.1: an error response.
  const error = single(params, 'error');
  if (error !== undefined) {
    const description = single(params, 'error_description');
    throw new AuthorizationResponseError(printable(error), description === undefined ? undefined : printable(description));
  }

  const code = single(params, 'code');
  if (code === undefined || code === '') {
    throw new BrokerError('LOGIN_FAILED', 'the authorization response has no "code"', { field: 'code' });
  }
  return { code: new Secret(code) };
}
