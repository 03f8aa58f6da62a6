/**
 * Plays the user on oidc-provider's dev interaction pages with plain HTTP (no browser): posts the login
 * and consent forms and returns the redirect that leaves the provider — a custom-scheme URL, or a
 * loopback URL, which is returned without being followed.
 */
export async function signInWithDevForm(authorizeUrl: string, login = 'alice'): Promise<string> {
  // The broker's one-time launcher (http://127.0.0.1:<port>/start/<random>) leads to the provider once.
  if (/^http:\/\/127\.0\.0\.1:\d+\/start\//.test(authorizeUrl)) {
    const launched = await fetch(authorizeUrl, { redirect: 'manual' });
    const target = launched.headers.get('location');
    await launched.body?.cancel();
    if (launched.status !== 302 || target === null) throw new Error(`the sign-in link answered ${launched.status}`);
    authorizeUrl = target;
  }
  const provider = new URL(authorizeUrl).origin;
  const jar = new Map<string, string>();
  let url = authorizeUrl;
  let body: string | undefined;
  for (let step = 0; step < 20; step++) {
    const response = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; '),
        ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(body === undefined ? {} : { body }),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const pair = cookie.split(';')[0]!;
      const name = pair.slice(0, pair.indexOf('=')).trim();
      const value = pair.slice(pair.indexOf('=') + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      const next = new URL(location, url).toString();
      if (new URL(next).origin !== provider) return next; // left the provider: the redirect to the app
      url = next;
      body = undefined;
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`the IdP answered ${response.status}: ${html.slice(0, 300)}`);
    const action = /action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (action === undefined || prompt === undefined) throw new Error(`no interaction form: ${html.slice(0, 300)}`);
    url = new URL(action.replaceAll('&amp;', '&'), url).toString();
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'pw' } : { prompt }).toString();
  }
  throw new Error('the sign-in did not reach the redirect URI');
}
