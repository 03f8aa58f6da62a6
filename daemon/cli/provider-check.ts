/**
 * Before `profile add` / `init` write a profile, they ask its provider for real whether sign-in can
 * work: the discovery document (OIDC Discovery §4; for the Wristband preset the derived endpoints),
 * the JWKS (RFC 7517 §5: at least one key), and PKCE S256 (RFC 7636 §4.2) in
 * `code_challenge_methods_supported` (RFC 8414 §2). Each step is reported; the first failure stops.
 */
import { BrokerError } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import { createHttpClient, wristbandMetadata, type HttpClient } from '../oauth/index.js';
import { OPENID_CONFIGURATION_PATH, parseDiscoveryDocument } from '../oauth/metadata.js';

export interface CheckStep {
  readonly step: 'discovery' | 'pkce' | 'jwks' | 'tenant';
  readonly ok: boolean;
  /** For `pkce` when the provider does not list its methods: sign-in works if it supports S256 anyway. */
  readonly warning?: boolean;
  readonly detail: string;
}

export interface ProviderCheckResult {
  readonly ok: boolean;
  readonly steps: readonly CheckStep[];
}

function describe(error: unknown): string {
  const e = error as { response?: { statusCode?: number }; code?: string; message?: string };
  if (e.response?.statusCode !== undefined) return `HTTP ${e.response.statusCode}`;
  return e.code ?? e.message ?? String(error);
}

async function getText(http: HttpClient, url: string): Promise<string> {
  return (await http.get(url, { followRedirect: true })).body;
}

/** Checks `profile`'s provider. Never throws for provider problems: they are failed steps. */
export async function checkProvider(profile: ProfileConfig, options: { readonly timeoutMs?: number } = {}): Promise<ProviderCheckResult> {
  const http = createHttpClient({ timeoutMs: options.timeoutMs ?? profile.httpTimeoutSeconds * 1000, retry: { limit: 0 } });
  const steps: CheckStep[] = [];
  const done = (step: CheckStep): ProviderCheckResult => {
    steps.push(step);
    return { ok: false, steps };
  };
  let jwksUri: string;
  if (profile.provider === 'wristband') {
    try {
      const metadata = wristbandMetadata(profile.wristband!);
      jwksUri = metadata.jwksUri;
      steps.push({ step: 'discovery', ok: true, detail: `Wristband endpoints: authorize ${metadata.authorizationEndpoint}, token ${metadata.tokenEndpoint}` });
      // The tenant's login pages live on their own host: it must answer (any HTTP status will do).
      try {
        await http.get(metadata.authorizationEndpoint, { throwHttpErrors: false });
        steps.push({ step: 'tenant', ok: true, detail: `tenant host answers (${new URL(metadata.authorizationEndpoint).host})` });
      } catch (error) {
        return done({
          step: 'tenant',
          ok: false,
          detail: `the tenant's login host ${new URL(metadata.authorizationEndpoint).host} does not answer: ${describe(error)}`,
        });
      }
    } catch (error) {
      return done({ step: 'discovery', ok: false, detail: error instanceof Error ? error.message : String(error) });
    }
    // Wristband documents PKCE S256 as required for native apps; there is no document to read it from.
    steps.push({ step: 'pkce', ok: true, detail: 'S256 (Wristband requires PKCE S256 for native apps)' });
  } else {
    // OIDC Discovery §4.1: remove a terminating "/" before appending the well-known path.
    const url = profile.issuer.replace(/\/$/, '') + OPENID_CONFIGURATION_PATH;
    let document: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(await getText(http, url));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      document = parsed as Record<string, unknown>;
    } catch (error) {
      return done({ step: 'discovery', ok: false, detail: `${url}: ${describe(error)} — check --issuer` });
    }
    try {
      jwksUri = parseDiscoveryDocument(document, profile.issuer).jwksUri;
    } catch (error) {
      const field = error instanceof BrokerError && error.field !== undefined ? error.field : undefined;
      if (field === 'code_challenge_methods_supported') {
        return done({ step: 'pkce', ok: false, detail: `${url}: ${(error as Error).message}; the broker signs in only with PKCE S256` });
      }
      return done({ step: 'discovery', ok: false, detail: `${url}: ${(error as Error).message}` });
    }
    steps.push({ step: 'discovery', ok: true, detail: url });
    const methods = document['code_challenge_methods_supported'];
    if (Array.isArray(methods)) steps.push({ step: 'pkce', ok: true, detail: `S256 in code_challenge_methods_supported (${methods.join(', ')})` });
    else {
      steps.push({
        step: 'pkce',
        ok: true,
        warning: true,
        detail: 'the provider does not list code_challenge_methods_supported; S256 is sent anyway (sign in once to be sure)',
      });
    }
  }
  try {
    const keys = (JSON.parse(await getText(http, jwksUri)) as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) return done({ step: 'jwks', ok: false, detail: `${jwksUri} is not a JSON Web Key Set (RFC 7517 §5)` });
    if (keys.length === 0) return done({ step: 'jwks', ok: false, detail: `${jwksUri} has no keys: no token could be verified` });
    steps.push({ step: 'jwks', ok: true, detail: `${jwksUri} (${keys.length} ${keys.length === 1 ? 'key' : 'keys'})` });
  } catch (error) {
    return done({ step: 'jwks', ok: false, detail: `${jwksUri}: ${describe(error)}` });
  }
  return { ok: true, steps };
}

/** The lines printed for a check (one per step). */
export function formatCheck(result: ProviderCheckResult): string[] {
  return result.steps.map((s) => `  ${s.ok ? (s.warning ? 'warn' : 'ok  ') : 'FAIL'}  ${s.step.padEnd(9)} ${s.detail}`);
}
