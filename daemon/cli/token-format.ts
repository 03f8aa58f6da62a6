/**
 * How `tokenbroker token` prints a token for each kind of consumer. Pure functions (no imports beyond
 * types): this module is on the path of every kubectl and git call.
 */
import type { TokenResult } from '../../proto/messages.js';

export const TOKEN_FORMATS = ['token', 'header', 'json', 'env', 'exec-credential'] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];

/** Variables printed by `--format env` (README: Integrations). */
export const ENV_NAMES = {
  accessToken: 'TOKENBROKER_ACCESS_TOKEN',
  tokenType: 'TOKENBROKER_TOKEN_TYPE',
  expiresAt: 'TOKENBROKER_EXPIRES_AT',
  profile: 'TOKENBROKER_PROFILE',
} as const;

export const EXEC_CREDENTIAL_GROUP = 'client.authentication.k8s.io';
export const EXEC_CREDENTIAL_VERSIONS = [`${EXEC_CREDENTIAL_GROUP}/v1`, `${EXEC_CREDENTIAL_GROUP}/v1beta1`] as const;

export function isTokenFormat(value: string): value is TokenFormat {
  return (TOKEN_FORMATS as readonly string[]).includes(value);
}

/**
 * POSIX shell single quoting: everything between single quotes is literal; a single quote itself is
 * closed, escaped and reopened (`'\''`). Safe for any byte string without NUL.
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** RFC 3339 in UTC, whole seconds, rounded down (a consumer caching to this instant never overshoots). */
export function rfc3339(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * The ExecCredential apiVersion to answer with. kubectl passes the kubeconfig's `exec.apiVersion` in
 * `KUBERNETES_EXEC_INFO` (an ExecCredential with `spec`) and refuses an answer in any other version.
 * Without it (a person or another tool running the command) we answer v1, the GA version (kubectl ≥ 1.22).
 * @see https://kubernetes.io/docs/reference/access-authn-authz/authentication/#input-and-output-formats
 */
export function execCredentialVersion(execInfo: string | undefined): string {
  if (execInfo === undefined || execInfo.trim() === '') return EXEC_CREDENTIAL_VERSIONS[0];
  let apiVersion: unknown;
  try {
    apiVersion = (JSON.parse(execInfo) as { apiVersion?: unknown } | null)?.apiVersion;
  } catch {
    throw new ExecInfoError('KUBERNETES_EXEC_INFO is not JSON');
  }
  if (typeof apiVersion !== 'string' || !(EXEC_CREDENTIAL_VERSIONS as readonly string[]).includes(apiVersion)) {
    throw new ExecInfoError(
      `KUBERNETES_EXEC_INFO asks for apiVersion ${JSON.stringify(apiVersion)}; supported: ${EXEC_CREDENTIAL_VERSIONS.join(', ')} (set users[].user.exec.apiVersion in the kubeconfig to one of them)`,
    );
  }
  return apiVersion;
}

/** A KUBERNETES_EXEC_INFO we cannot answer. */
export class ExecInfoError extends Error {
  override readonly name = 'ExecInfoError';
}

/** The text printed on stdout (without the final newline). */
export function formatToken(token: TokenResult, format: TokenFormat, env: Readonly<Record<string, string | undefined>> = {}): string {
  switch (format) {
    case 'token':
      return token.accessToken;
    case 'header':
      // RFC 6750 §2.1; the scheme is "Bearer" whatever case the provider used for token_type.
      return `Authorization: ${/^bearer$/i.test(token.tokenType) ? 'Bearer' : token.tokenType} ${token.accessToken}`;
    case 'json':
      return JSON.stringify(token, null, 2);
    case 'env':
      return [
        `export ${ENV_NAMES.accessToken}=${shellQuote(token.accessToken)}`,
        `export ${ENV_NAMES.tokenType}=${shellQuote(token.tokenType)}`,
        `export ${ENV_NAMES.expiresAt}=${shellQuote(rfc3339(token.expiresAt))}`,
        `export ${ENV_NAMES.profile}=${shellQuote(token.profile)}`,
      ].join('\n');
    case 'exec-credential':
      // client.authentication.k8s.io ExecCredential; kubectl caches the token until expirationTimestamp.
      return JSON.stringify({
        apiVersion: execCredentialVersion(env['KUBERNETES_EXEC_INFO']),
        kind: 'ExecCredential',
        status: { token: token.accessToken, expirationTimestamp: rfc3339(token.expiresAt) },
      });
  }
}
