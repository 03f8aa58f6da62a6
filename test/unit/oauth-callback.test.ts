import { describe, expect, it } from 'vitest';
import { AuthorizationResponseError, extractState, parseAuthorizationResponse } from '../../daemon/oauth/callback.js';

const issuer = 'https://idp.example.com';
const state = 'S'.repeat(43);
const expected = { state, issuer, issRequired: true };
const cb = (query: string) => `com.example.broker:/callback?${query}`;

describe('parseAuthorizationResponse', () => {
  it('returns the code, wrapped as a secret', () => {
    const { code } = parseAuthorizationResponse(cb(`code=abc&state=${state}&iss=${encodeURIComponent(issuer)}`), expected);
    expect(code.reveal()).toBe('abc');
    expect(String(code)).toBe('[redacted]');
  });

  it('works with a loopback redirect too', () => {
    const url = `http://127.0.0.1:53111/callback?code=abc&state=${state}`;
    expect(parseAuthorizationResponse(url, { ...expected, issRequired: false }).code.reveal()).toBe('abc');
  });

  it('reports a provider error= with its code and description (LOGIN_FAILED)', () => {
    const url = cb(`error=access_denied&error_description=${encodeURIComponent('User cancelled')}&state=${state}&iss=${encodeURIComponent(issuer)}`);
    let error: unknown;
    try {
      parseAuthorizationResponse(url, expected);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AuthorizationResponseError);
    expect(error).toMatchObject({ code: 'LOGIN_FAILED', oauthError: 'access_denied', oauthErrorDescription: 'User cancelled' });
    expect((error as Error).message).toContain('access_denied: User cancelled');
  });

  it('keeps login_required distinguishable (prompt=none without a provider session)', () => {
    const url = cb(`error=login_required&state=${state}&iss=${encodeURIComponent(issuer)}`);
    expect(() => parseAuthorizationResponse(url, expected)).toThrow(expect.objectContaining({ oauthError: 'login_required' }));
  });

  it('rejects a response from another issuer (RFC 9207 §2.4)', () => {
    const url = cb(`code=abc&state=${state}&iss=${encodeURIComponent('https://evil.example.com')}`);
    expect(() => parseAuthorizationResponse(url, expected)).toThrow(expect.objectContaining({ code: 'LOGIN_FAILED', field: 'iss' }));
    // also when the provider does not advertise iss: present means checked
    expect(() => parseAuthorizationResponse(url, { ...expected, issRequired: false })).toThrow(expect.objectContaining({ field: 'iss' }));
  });

  it('checks iss before trusting an error response (mix-up attacks)', () => {
    const url = cb(`error=access_denied&state=${state}&iss=${encodeURIComponent('https://evil.example.com')}`);
    expect(() => parseAuthorizationResponse(url, expected)).toThrow(expect.objectContaining({ field: 'iss' }));
  });

  it('rejects a missing iss when the provider promises one, accepts it otherwise', () => {
    const url = cb(`code=abc&state=${state}`);
    expect(() => parseAuthorizationResponse(url, expected)).toThrow(expect.objectContaining({ code: 'LOGIN_FAILED', field: 'iss' }));
    expect(parseAuthorizationResponse(url, { ...expected, issRequired: false }).code.reveal()).toBe('abc');
  });

  it('rejects a missing code', () => {
    const url = cb(`state=${state}&iss=${encodeURIComponent(issuer)}`);
    expect(() => parseAuthorizationResponse(url, expected)).toThrow(expect.objectContaining({ code: 'LOGIN_FAILED', field: 'code' }));
  });

  it('rejects a state of another request, or a repeated parameter', () => {
    expect(() => parseAuthorizationResponse(cb(`code=abc&state=other&iss=${issuer}`), expected)).toThrow(
      expect.objectContaining({ code: 'LOGIN_FAILED', field: 'state' }),
    );
    expect(() => parseAuthorizationResponse(cb(`code=a&code=b&state=${state}&iss=${issuer}`), expected)).toThrow(expect.objectContaining({ field: 'code' }));
  });

  it('rejects a response without state, or with an empty one (RFC 6749 §10.12)', () => {
    expect(() => parseAuthorizationResponse(cb(`code=abc&iss=${encodeURIComponent(issuer)}`), expected)).toThrow(
      expect.objectContaining({ code: 'LOGIN_FAILED', field: 'state' }),
    );
    expect(() => parseAuthorizationResponse(cb(`code=abc&state=&iss=${encodeURIComponent(issuer)}`), expected)).toThrow(
      expect.objectContaining({ code: 'LOGIN_FAILED', field: 'state' }),
    );
    // also an error response: without our state it is not an answer to our request
    expect(() => parseAuthorizationResponse(cb(`error=access_denied&iss=${encodeURIComponent(issuer)}`), expected)).toThrow(
      expect.objectContaining({ code: 'LOGIN_FAILED', field: 'state' }),
    );
  });

  it('rejects input that is not a URL with BAD_REQUEST on "url"', () => {
    expect(() => parseAuthorizationResponse('not a url', expected)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'url' }));
    expect(() => parseAuthorizationResponse(42 as unknown as string, expected)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'url' }));
  });
});

describe('extractState', () => {
  it('returns the state, or undefined when there is none (or several)', () => {
    expect(extractState(cb(`code=abc&state=${state}`))).toBe(state);
    expect(extractState(cb('code=abc'))).toBeUndefined();
    expect(extractState(cb('state=a&state=b'))).toBeUndefined();
  });

  it('rejects input that is not a URL with BAD_REQUEST on "url"', () => {
    expect(() => extractState('/callback?state=x')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'url' }));
  });
});

describe('parseAuthorizationResponse: what each refusal says', () => {
  const withIss = (query: string) => cb(`${query}&iss=${encodeURIComponent(issuer)}`);
  const thrown = (run: () => unknown): Error & Record<string, unknown> => {
    try {
      run();
    } catch (error) {
      return error as Error & Record<string, unknown>;
    }
    throw new Error('expected a throw');
  };

  it('names the refused field and the reason in the message', () => {
    expect(thrown(() => parseAuthorizationResponse(withIss('code=abc&state=other'), expected)).message).toBe(
      'the authorization response does not match the login request (state)',
    );
    expect(thrown(() => parseAuthorizationResponse(cb(`code=abc&state=${state}&iss=https%3A%2F%2Fevil.example.com`), expected)).message).toBe(
      `the authorization response came from issuer "https://evil.example.com", expected ${issuer} (RFC 9207)`,
    );
    expect(thrown(() => parseAuthorizationResponse(cb(`code=abc&state=${state}`), expected)).message).toMatch(
      /has no "iss" although the provider promises one/,
    );
    expect(thrown(() => parseAuthorizationResponse(withIss(`state=${state}`), expected)).message).toBe('the authorization response has no "code"');
    expect(thrown(() => parseAuthorizationResponse(withIss(`code=a&code=b&state=${state}`), expected)).message).toBe(
      'the authorization response repeats "code"',
    );
    expect(thrown(() => parseAuthorizationResponse('not a url', expected)).message).toBe('url: not an absolute URL');
    expect(thrown(() => parseAuthorizationResponse(42 as unknown as string, expected)).message).toBe('url: expected the redirect URL as a string');
  });

  it('refuses an empty code', () => {
    expect(() => parseAuthorizationResponse(withIss(`code=&state=${state}`), expected)).toThrow(
      expect.objectContaining({ code: 'LOGIN_FAILED', field: 'code' }),
    );
  });

  it('accepts a redirect URL of 16 384 characters and refuses a longer one', () => {
    const base = cb(`code=abc&state=${state}&iss=${encodeURIComponent(issuer)}&pad=`);
    const longest = base + 'p'.repeat(16_384 - base.length);
    expect(longest).toHaveLength(16_384);
    expect(parseAuthorizationResponse(longest, expected).code.reveal()).toBe('abc');
    expect(() => parseAuthorizationResponse(longest + 'p', expected)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: 'url' }));
  });

  it('an error without a description says only the code; with one, both', () => {
    const bare = thrown(() => parseAuthorizationResponse(withIss(`error=access_denied&state=${state}`), expected));
    expect(bare).toBeInstanceOf(AuthorizationResponseError);
    expect(bare.message).toBe('the provider refused the login (access_denied)');
    expect(bare).toMatchObject({ code: 'LOGIN_FAILED', field: 'error', oauthError: 'access_denied', oauthErrorDescription: undefined });
    const described = thrown(() => parseAuthorizationResponse(withIss(`error=access_denied&error_description=No&state=${state}`), expected));
    expect(described.message).toBe('the provider refused the login (access_denied: No)');
  });

  it('shows provider text without control characters, trimmed and bounded to 300 characters', () => {
    const noisy = ` \u0007evil\u001b[31m${'x'.repeat(400)} `;
    const error = thrown(() => parseAuthorizationResponse(cb(`code=abc&state=${state}&iss=${encodeURIComponent(noisy)}`), expected));
    const shown = JSON.parse(/issuer (".*"), expected/.exec(error.message)![1]!) as string;
    expect(shown).toBe(`evil [31m${'x'.repeat(400)}`.slice(0, 300));
    expect(shown).toHaveLength(300);
  });
});
