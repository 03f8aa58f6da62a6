import { connect, resolveSocketPath } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { ExecInfoError, TOKEN_FORMATS, execCredentialVersion, formatToken, isTokenFormat, type TokenFormat } from '../token-format.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker token [--profile NAME] [--format FORMAT] [--min-valid SECONDS] [--force-refresh]
                        [--scope SCOPE]… [--resource URI]… [--id-token] [--socket PATH]

Prints a valid access token for the profile on stdout, and nothing else, for scripts:

  tokenbroker token --format header | curl -H @- https://api.example.com/me

(curl reads the header from stdin, so the token never appears in a process's command line, where
other users could see it with ps.)

The daemon refreshes first when the token has less than --min-valid seconds left (honoured up to the
token's whole lifetime minus a few seconds; the printed expiry says what you got).

One sign-in, several APIs: --scope asks for a token with only some of the granted scopes, --resource
for a token for one API (RFC 8707; the provider puts it in the token's "aud"). Each combination is a
token of its own, cached and refreshed by the daemon:

  tokenbroker token --resource https://api.example.com --scope read:items

--id-token prints the OpenID Connect ID token of the sign-in instead (Kubernetes OIDC clusters want it).

Formats (--format):
  token            the access token alone (default)
  header           Authorization: Bearer <token>
  json             {profile, accessToken, tokenType, expiresAt, scopes} (expiresAt in epoch ms; plus
                   resource with --resource, kind "id" with --id-token)
  env              shell-quoted export lines: TOKENBROKER_ACCESS_TOKEN, TOKENBROKER_TOKEN_TYPE,
                   TOKENBROKER_EXPIRES_AT (RFC 3339, UTC), TOKENBROKER_PROFILE; use with eval "$(…)"
  exec-credential  a kubectl ExecCredential (client.authentication.k8s.io/v1 or v1beta1, the version
                   kubectl asks for in KUBERNETES_EXEC_INFO; v1 when it is absent), with
                   status.expirationTimestamp so kubectl caches the token until then.
                   kubectl runs the plugin again after an API server's 401: a second run
                   from the same kubectl process (KUBERNETES_EXEC_INFO set) reports the token
                   it got as rejected, so the daemon refreshes (only a SHA-256 is remembered)

Options:
  --profile NAME       the profile (default: the configured default profile)
  --format FORMAT      one of ${TOKEN_FORMATS.join(', ')} (default: token)
  --json               the same as --format json
  --min-valid SECONDS  refresh first when less is left (default: the profile's refresh.minValidSeconds, 30)
  --force-refresh      report the current token as rejected (as an API's 401 would) and print a new
                       one; callers reporting the same token cause one refresh between them
  --scope SCOPE        only this granted scope (repeatable, or several space-separated)
  --resource URI       a token for this API, an absolute URI (repeatable); sent as "resource", or as
                       the profile's "audienceParam" (e.g. "audience" for Auth0)
  --id-token           the ID token instead of an access token (not with --scope or --resource)
  --socket PATH        the daemon's socket
  -h, --help           this help

Errors go to stderr (kubectl and git show them). Exit codes: 0 ok, 1 error, 2 usage,
3 daemon not running, 5 login required (run "tokenbroker login"). A scope the sign-in was not
granted is SCOPE_NOT_GRANTED, an ID token that expired with no new one from the provider is
ID_TOKEN_EXPIRED (exit 1; sign in again with the scope, or for a new ID token).`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('token', argv, {
    profile: { type: 'string' },
    'min-valid': { type: 'string' },
    json: { type: 'boolean' },
    format: { type: 'string' },
    'force-refresh': { type: 'boolean' },
    scope: { type: 'string', multiple: true },
    resource: { type: 'string', multiple: true },
    'id-token': { type: 'boolean' },
  });
  const format = tokenFormat(values.format, values.json);
  let minValidSeconds: number | undefined;
  if (values['min-valid'] !== undefined) {
    minValidSeconds = Number(values['min-valid']);
    if (!Number.isInteger(minValidSeconds) || minValidSeconds < 0 || minValidSeconds > 3600) {
      throw new UsageError(`token: --min-valid must be a whole number of seconds from 0 to 3600, got ${JSON.stringify(values['min-valid'])}`);
    }
  }
  // Checked before connecting; the module loads only when asked (the plain path stays as lean as before).
  const selection = values.scope === undefined && values.resource === undefined ? {} : (await import('../token-selection.js')).tokenSelection('token', values);
  if (values['id-token'] && (values.scope !== undefined || values.resource !== undefined)) {
    throw new UsageError("token: --id-token hands out the sign-in's ID token; it takes no --scope or --resource");
  }
  if (format === 'exec-credential') {
    // Before asking the daemon: an apiVersion we cannot answer is a kubeconfig mistake.
    try {
      execCredentialVersion(process.env['KUBERNETES_EXEC_INFO']);
    } catch (error) {
      if (error instanceof ExecInfoError) throw new UsageError(`token: ${error.message}`);
      throw error;
    }
  }
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-cli', reconnect: false });
  try {
    const options = {
      ...(values.profile === undefined ? {} : { profile: values.profile }),
      ...(minValidSeconds === undefined ? {} : { minValidSeconds }),
      ...selection,
      ...(values['id-token'] ? { kind: 'id' as const } : {}),
    };
    let token = await client.getToken(options);
    // The 401 path (token.get `rejected`): the daemon refreshes once, however many callers report it.
    if (values['force-refresh']) token = await client.getToken({ ...options, rejected: token.accessToken });
    else if (format === 'exec-credential' && process.env['KUBERNETES_EXEC_INFO']) {
      // kubectl runs us again after a 401 (see exec-credential-memory.ts): report that token. Only when
      // client-go runs us (it always sets KUBERNETES_EXEC_INFO): a shell loop has one parent pid too.
      const memory = await import('../exec-credential-memory.js');
      const socketPath = context.connectOptions(values.socket).socketPath ?? resolveSocketPath();
      if (memory.handedBefore(socketPath, process.ppid, token)) token = await client.getToken({ ...options, rejected: token.accessToken });
      memory.rememberHandout(socketPath, process.ppid, token);
    }
    context.out(formatToken(token, format, process.env));
    return 0;
  } catch (error) {
    throw await (await import('../first-run.js')).explainNoProfiles(error, client);
  } finally {
    await client.close();
  }
}

function tokenFormat(format: string | undefined, json: boolean | undefined): TokenFormat {
  if (format === undefined) return json ? 'json' : 'token';
  if (!isTokenFormat(format)) throw new UsageError(`token: --format must be one of ${TOKEN_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  if (json && format !== 'json') throw new UsageError(`token: --json and --format ${format} contradict each other`);
  return format;
}
