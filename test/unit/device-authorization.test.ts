/**
 * RFC 8628 on the client side, with a fake clock: the device authorization response's validation (§3.2) and
 * the polling schedule (§3.4–3.5) — the interval, slow_down (+5 s for good), authorization_pending,
 * expired_token, access_denied, the code's own expiry, and backoff when the provider is unreachable.
 */
import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../proto/errors.js';
import { parseDeviceAuthorizationResponse, pollDeviceTokens, type PollState } from '../../daemon/oauth/device-authorization.js';
import { TokenEndpointError } from '../../daemon/oauth/provider-error.js';
import type { TokenSet } from '../../daemon/oauth/token-endpoint.js';
import { Secret } from '../../daemon/secret.js';

const T0 = 1_700_000_000_000;

/** A provider answer to one poll: tokens, an OAuth error (HTTP 400), or no answer at all. */
type Answer = 'tokens' | 'unreachable' | 'http-503' | { readonly error: string; readonly description?: string };

const TOKENS: TokenSet = { accessToken: new Secret('at'), tokenType: 'Bearer', expiresAt: T0 + 3_600_000, scopes: ['openid'] };

function providerError(answer: Exclude<Answer, 'tokens'>): TokenEndpointError {
  if (answer === 'unreachable')
    return new TokenEndpointError('IDP_UNAVAILABLE', 'token endpoint could not be reached (ECONNREFUSED)', { kind: 'transient', networkError: 'ECONNREFUSED' });
  if (answer === 'http-503') return new TokenEndpointError('IDP_UNAVAILABLE', 'token endpoint answered HTTP 503', { kind: 'transient', status: 503 });
  return new TokenEndpointError('IDP_ERROR', `token endpoint answered HTTP 400: ${answer.error}`, {
    kind: 'permanent',
    status: 400,
    oauthError: answer.error,
    ...(answer.description === undefined ? {} : { oauthErrorDescription: answer.description }),
  });
}

/**
 * Runs the poller against `answers` (one per poll) on a fake clock. Returns the waits before each poll
 * (ms), the fake time of each poll, and the outcome.
 */
async function poll(answers: Answer[], options: { intervalSeconds?: number; expiresInSeconds?: number; signal?: AbortSignal } = {}) {
  let now = T0;
  const waits: number[] = [];
  const pollTimes: number[] = [];
  const states: PollState[] = [];
  const script = [...answers];
  const outcome = await pollDeviceTokens({
    authorization: { intervalSeconds: options.intervalSeconds ?? 5, expiresAt: T0 + (options.expiresInSeconds ?? 600) * 1000 },
    now: () => now,
    sleep: (ms, signal) => {
      if (signal.aborted) return Promise.reject(new Error('aborted'));
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
    signal: options.signal ?? new AbortController().signal,
    exchange: () => {
      pollTimes.push(now);
      if (pollTimes.length > 1000) return Promise.reject(new Error('runaway polling')); // a broken poller must end
      const answer = script.shift();
      if (answer === undefined) return Promise.reject(providerError({ error: 'authorization_pending' }));
      return answer === 'tokens' ? Promise.resolve(TOKENS) : Promise.reject(providerError(answer));
    },
    onPoll: (state) => states.push(state),
  }).then(
    (tokens): { tokens?: TokenSet; error?: unknown } => ({ tokens }),
    (error: unknown): { tokens?: TokenSet; error?: unknown } => ({ error }),
  );
  return { waits, pollTimes, states, outcome, polls: pollTimes.length };
}

const pending = { error: 'authorization_pending' } as const;
const slowDown = { error: 'slow_down' } as const;

describe('polling the token endpoint (RFC 8628 §3.4–3.5)', () => {
  it('waits the interval before every poll, through authorization_pending, until the tokens come', async () => {
    const run = await poll([pending, pending, pending, 'tokens'], { intervalSeconds: 5 });
    expect(run.outcome).toEqual({ tokens: TOKENS });
    expect(run.waits).toEqual([5000, 5000, 5000, 5000]);
    expect(run.states).toEqual(['authorization_pending', 'authorization_pending', 'authorization_pending']);
  });

  it('slow_down adds 5 seconds to the interval for this and every later poll', async () => {
    const run = await poll([pending, slowDown, pending, pending, slowDown, pending, 'tokens'], { intervalSeconds: 2 });
    expect(run.outcome).toEqual({ tokens: TOKENS });
    expect(run.waits).toEqual([2000, 2000, 7000, 7000, 7000, 12_000, 12_000]);
    expect(run.states).toContain('slow_down');
  });

  it('expired_token ends the sign-in at once with LOGIN_TIMEOUT', async () => {
    const run = await poll([pending, { error: 'expired_token' }, 'tokens']);
    expect(run.polls).toBe(2);
    expect(run.outcome.error).toBeInstanceOf(BrokerError);
    expect(run.outcome.error).toMatchObject({ code: 'LOGIN_TIMEOUT', message: expect.stringContaining('expired') as unknown });
  });

  it('access_denied (the user declined) ends the sign-in with LOGIN_FAILED', async () => {
    const run = await poll([pending, { error: 'access_denied' }, 'tokens']);
    expect(run.polls).toBe(2);
    expect(run.outcome.error).toMatchObject({ code: 'LOGIN_FAILED', message: expect.stringContaining('declined at the provider (access_denied)') as unknown });
  });

  it('stops at the code’s own expiry (expires_in): one last poll at the expiry, then LOGIN_TIMEOUT', async () => {
    const run = await poll([], { intervalSeconds: 5, expiresInSeconds: 12 });
    expect(run.waits).toEqual([5000, 5000, 2000]);
    expect(run.pollTimes.at(-1)).toBe(T0 + 12_000);
    expect(run.outcome.error).toMatchObject({ code: 'LOGIN_TIMEOUT' });
  });

  it('backs off exponentially (up to 8 intervals) while the provider cannot be reached, and returns to the interval', async () => {
    const run = await poll(['unreachable', 'unreachable', 'http-503', 'unreachable', 'unreachable', pending, 'tokens'], { intervalSeconds: 1 });
    expect(run.outcome).toEqual({ tokens: TOKENS });
    expect(run.waits).toEqual([1000, 2000, 4000, 8000, 8000, 8000, 1000]);
    expect(run.states.slice(0, 5)).toEqual(['unreachable', 'unreachable', 'unreachable', 'unreachable', 'unreachable']);
  });

  it('any other error answer ends the sign-in with the provider’s description', async () => {
    const run = await poll([pending, { error: 'invalid_client', description: 'client is not allowed the device grant' }]);
    expect(run.outcome.error).toMatchObject({
      code: 'LOGIN_FAILED',
      message: expect.stringContaining('invalid_client (client is not allowed the device grant)') as unknown,
    });
  });

  it('stops when its signal fires (a cancel, a logout, shutdown)', async () => {
    const controller = new AbortController();
    controller.abort();
    const run = await poll(['tokens'], { signal: controller.signal });
    expect(run.polls).toBe(0);
    expect(run.outcome.error).toBeInstanceOf(Error);
  });
});

describe('the device authorization response (RFC 8628 §3.2)', () => {
  const valid = {
    device_code: 'GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS',
    user_code: 'WDJB-MJHT',
    verification_uri: 'https://example.com/device',
    verification_uri_complete: 'https://example.com/device?user_code=WDJB-MJHT',
    expires_in: 1800,
    interval: 5,
  };
  const parse = (body: Record<string, unknown>) => parseDeviceAuthorizationResponse(JSON.stringify(body), T0);

  it('reads the RFC example; the device code stays a Secret', () => {
    const a = parse(valid);
    expect(a).toMatchObject({
      userCode: 'WDJB-MJHT',
      verificationUri: 'https://example.com/device',
      verificationUriComplete: 'https://example.com/device?user_code=WDJB-MJHT',
      expiresAt: T0 + 1_800_000,
      intervalSeconds: 5,
    });
    expect(a.deviceCode.reveal()).toBe(valid.device_code);
    expect(JSON.stringify(a)).not.toContain(valid.device_code);
  });

  it('uses 5 seconds when the provider names no interval, and keeps an interval within 1–60 s', () => {
    const { interval: _none, ...noInterval } = valid;
    expect(parse(noInterval).intervalSeconds).toBe(5);
    expect(parse({ ...valid, interval: 0 }).intervalSeconds).toBe(1);
    expect(parse({ ...valid, interval: 3600 }).intervalSeconds).toBe(60);
    expect(parse({ ...valid, verification_uri_complete: undefined }).verificationUriComplete).toBeUndefined();
  });

  it('refuses what cannot be shown safely or used, naming the field', () => {
    const field = (body: Record<string, unknown>) => {
      try {
        parse(body);
        return 'accepted';
      } catch (error) {
        return (error as BrokerError).field;
      }
    };
    expect(field({ ...valid, device_code: '' })).toBe('device_code');
    expect(field({ ...valid, user_code: 'AB\u001b[2JCD' })).toBe('user_code'); // a terminal escape
    expect(field({ ...valid, user_code: 'x'.repeat(65) })).toBe('user_code');
    expect(field({ ...valid, verification_uri: 'javascript:alert(1)' })).toBe('verification_uri');
    expect(field({ ...valid, verification_uri: 'http://example.com/device' })).toBe('verification_uri');
    expect(field({ ...valid, verification_uri_complete: 'https://user:pw@example.com/device' })).toBe('verification_uri_complete');
    expect(field({ ...valid, expires_in: undefined })).toBe('expires_in');
    expect(field({ ...valid, expires_in: 0 })).toBe('expires_in');
    expect(field({ ...valid, interval: 'soon' })).toBe('interval');
    expect(field({ ...valid, verification_uri: 'http://127.0.0.1:8080/device' })).toBe('accepted'); // a local provider
  });
});
