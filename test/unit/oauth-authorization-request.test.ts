import { describe, expect, it } from 'vitest';
import { createAuthorizationRequest } from '../../daemon/oauth/authorization-request.js';
import type { ProviderMetadata } from '../../daemon/oauth/metadata.js';
import { calculateCodeChallenge, generateCodeVerifier } from '../../daemon/oauth/pkce.js';
import { Secret } from '../../daemon/secret.js';
import { BrokerError } from '../../proto/errors.js';

const metadata: ProviderMetadata = {
  issuer: 'https://idp.example.com',
  authorizationEndpoint: 'https://idp.example.com/authorize?tenant=acme',
  tokenEndpoint: 'https://idp.example.com/token',
  jwksUri: 'https://idp.example.com/jwks',
  logoutStyle: 'oidc',
  authorizationResponseIssParameterSupported: true,
};

const base = { metadata, clientId: 'client-1', redirectUri: 'com.example.broker:/callback', scopes: ['openid', 'offline_access', 'email'] };

describe('PKCE (RFC 7636)', () => {
  it('matches the Appendix B test vector', () => {
    const octets = Uint8Array.from([
      116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ]);
    const verifier = generateCodeVerifier(octets);
    expect(verifier.reveal()).toBe('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk');
    expect(calculateCodeChallenge(verifier)).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes a fresh 43-character verifier from the unreserved set each time (§4.1)', () => {
    const a = generateCodeVerifier().reveal();
    const b = generateCodeVerifier().reveal();
    expect(a).toMatch(/^[A-Za-z0-9\-._~]{43}$/);
    expect(a).not.toBe(b);
  });
});

describe('createAuthorizationRequest', () => {
  it('sends every required parameter with S256 and keeps the endpoint query (RFC 6749 §3.1)', () => {
    const request = createAuthorizationRequest(base);
    const url = new URL(request.url);
    expect(url.origin + url.pathname).toBe('https://idp.example.com/authorize');
    const p = url.searchParams;
    expect(p.get('tenant')).toBe('acme');
    expect(p.get('client_id')).toBe('client-1');
    expect(p.get('response_type')).toBe('code');
    expect(p.get('redirect_uri')).toBe('com.example.broker:/callback');
    expect(p.get('scope')).toBe('openid offline_access email');
    expect(p.get('state')).toBe(request.state);
    expect(p.get('nonce')).toBe(request.nonce.reveal());
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toBe(calculateCodeChallenge(request.codeVerifier));
    expect(p.has('code_verifier')).toBe(false);
  });

  it('makes state and nonce 43 base64url characters, within Wristband limits (22–512, 22–128)', () => {
    const request = createAuthorizationRequest(base);
    expect(request.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(request.nonce.reveal()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(request.codeVerifier.reveal()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const other = createAuthorizationRequest(base);
    expect(other.state).not.toBe(request.state);
    expect(other.nonce.reveal()).not.toBe(request.nonce.reveal());
  });

  it('keeps the nonce and verifier out of logs', () => {
    const request = createAuthorizationRequest(base);
    expect(JSON.stringify({ nonce: request.nonce, codeVerifier: request.codeVerifier })).toBe('{"nonce":"[redacted]","codeVerifier":"[redacted]"}');
    expect(request.nonce).toBeInstanceOf(Secret);
  });

  it('appends extra parameters such as prompt and login_hint', () => {
    const request = createAuthorizationRequest({ ...base, extraParams: { prompt: 'consent', login_hint: 'a@b.example' } });
    const p = new URL(request.url).searchParams;
    expect(p.get('prompt')).toBe('consent');
    expect(p.get('login_hint')).toBe('a@b.example');
  });

  it('refuses extra parameters that would replace reserved ones', () => {
    for (const name of ['state', 'code_challenge_method', 'redirect_uri', 'client_id']) {
      const attempt = () => createAuthorizationRequest({ ...base, extraParams: { [name]: 'x' } });
      expect(attempt).toThrow(BrokerError);
      expect(attempt).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', field: `authorizationParams.${name}` }));
    }
  });

  it('refuses an empty scope list', () => {
    expect(() => createAuthorizationRequest({ ...base, scopes: [] })).toThrow(expect.objectContaining({ field: 'scopes' }));
  });
});
