/**
 * The interactive wizard of `profile add` and `init` (a terminal, no profile flags): asks for the
 * provider, the client id, the redirect and the scopes, checking each answer with the config rules
 * as it is typed. Loaded only by these commands; the prompt library only here.
 */
import { PROFILE_NAME_PATTERN } from '../../proto/index.js';
import { checkHttpsUrl, checkRedirectUri } from '../oauth/url-rules.js';

function valid(check: () => void): true | string {
  try {
    check();
    return true;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Asks for a profile name (for `init`, which may be run without one). */
export async function askProfileName(defaultName: string): Promise<string> {
  const { input } = await import('@inquirer/prompts');
  return input({
    message: 'Profile name',
    default: defaultName,
    validate: (value) => PROFILE_NAME_PATTERN.test(value) || 'letters, digits, ".", "_", "-" (starting with a letter or digit, at most 64)',
  });
}

/** Asks for every required field and the common optional ones; returns the profile as written to the file. */
export async function runProfileWizard(name: string): Promise<Record<string, unknown>> {
  const { input, select } = await import('@inquirer/prompts');
  const profile: Record<string, unknown> = {};
  const provider = await select({
    message: `Provider of profile "${name}"`,
    choices: [
      { name: 'OpenID Connect provider (by issuer URL)', value: 'oidc' },
      { name: 'Wristband (application domain and tenant)', value: 'wristband' },
    ],
  });
  if (provider === 'oidc') {
    profile['issuer'] = (
      await input({
        message: 'Issuer URL (https://…)',
        validate: (value) => valid(() => checkHttpsUrl(value.trim(), 'issuer')),
      })
    ).trim();
  } else {
    const applicationVanityDomain = (
      await input({
        message: 'Wristband application vanity domain (e.g. myapp-mycompany.us.wristband.dev)',
        validate: (value) => /^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(value.trim()) || 'a host name, without https:// or a path',
      })
    ).trim();
    const tenantName = (await input({ message: 'Tenant name', validate: (value) => /^[A-Za-z0-9-]+$/.test(value.trim()) || 'letters, digits and "-"' })).trim();
    profile['wristband'] = { applicationVanityDomain, tenantName };
  }
  profile['clientId'] = (await input({ message: 'Client id (of the native / public client)', validate: (value) => value.trim() !== '' || 'required' })).trim();
  const redirect = await select({
    message: 'Redirect after sign-in',
    choices: [
      { name: 'loopback (http://127.0.0.1:<any port>/callback; works everywhere)', value: 'loopback' },
      { name: 'a custom scheme (com.example.broker:/callback; needs the OS handler)', value: 'custom' },
      { name: 'loopback on a fixed port (http://127.0.0.1:PORT/callback)', value: 'fixed' },
    ],
  });
  if (redirect === 'loopback') profile['redirectUri'] = 'loopback';
  else {
    profile['redirectUri'] = (
      await input({
        message: redirect === 'custom' ? 'Redirect URI (as registered at the provider)' : 'Redirect URI',
        default: redirect === 'custom' ? 'com.example.broker:/callback' : 'http://127.0.0.1:8400/callback',
        validate: (value) => valid(() => checkRedirectUri(value.trim(), 'redirectUri')),
      })
    ).trim();
  }
  const defaultScopes = provider === 'wristband' ? 'openid offline_access email' : 'openid offline_access';
  const scopes = await input({ message: 'Scopes (space-separated; offline_access gets a refresh token)', default: defaultScopes });
  const list = scopes.split(/[\s,]+/).filter((s) => s !== '');
  if (list.join(' ') !== defaultScopes) profile['scopes'] = list;
  return profile;
}
