/**
 * Which failed redirects end a pending sign-in (Session.completeLogin): those refused before the code
 * exchange leave it pending — unless it is the provider's `error=` delivered by the user's own side
 * (our socket, or a loopback caller whose uid was checked), which is the user saying no.
 */
import { describe, expect, it } from 'vitest';
import { ISSUER, startSession } from '../support/session-fakes.js';

async function pendingSignIn() {
  const h = await startSession();
  const { login } = await h.session.startLogin({ openBrowser: false });
  const redirect = (query: string) => `com.example.broker:/callback?${query}`;
  return { h, login, redirect, state: login.state };
}

describe('a redirect refused before the code exchange', () => {
  it('a wrong iss, a missing code or repeated parameters leave the sign-in pending, whoever delivers them', async () => {
    const { h, login, redirect, state } = await pendingSignIn();
    for (const fromUser of [false, true]) {
      for (const query of [`code=c&state=${state}&iss=${encodeURIComponent('https://evil.example')}`, `state=${state}`, `code=c&code=d&state=${state}`]) {
        await expect(h.session.completeLogin(login, redirect(query), fromUser)).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
        expect(h.session.pendingLogin).toBe(login);
      }
    }
    expect(h.provider.requests).toHaveLength(0);
    expect(h.events.filter((e) => e.event === 'loginFailed')).toEqual([]);
  });

  it("the provider's error= from an unverified caller leaves it pending; from the user's own side it ends it", async () => {
    const { h, login, redirect, state } = await pendingSignIn();
    const denied = redirect(`error=access_denied&state=${state}&iss=${encodeURIComponent(ISSUER)}`);
    await expect(h.session.completeLogin(login, denied, false)).rejects.toMatchObject({
      code: 'LOGIN_FAILED',
      message: expect.stringMatching(/access_denied/) as unknown,
    });
    expect(h.session.pendingLogin).toBe(login);
    await expect(h.session.completeLogin(login, denied, true)).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    expect(h.session.pendingLogin).toBeUndefined();
    await expect(login.outcome).rejects.toMatchObject({ code: 'LOGIN_FAILED', message: expect.stringMatching(/access_denied/) as unknown });
    expect(h.events.filter((e) => e.event === 'loginFailed')).toHaveLength(1);
  });
});
