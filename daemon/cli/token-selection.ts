/**
 * The options `tokenbroker token` and `tokenbroker exec` share to say which token they want: a narrower
 * one (`--scope`, repeatable: RFC 6749 §6), one for an API (`--resource`, repeatable: RFC 8707), or the
 * ID token (`--id-token`, token only). Checked here with the protocol's own checks, so a typo is a usage
 * error (exit 2) before the daemon is asked.
 */
import { BrokerError } from '../../proto/errors.js';
import { resourceIndicator, scopeToken } from '../../proto/validate.js';
import { UsageError } from './usage.js';

export interface TokenSelection {
  readonly scopes?: readonly string[];
  readonly resource?: readonly string[];
}

/** `--scope a --scope "b c"` → ["a", "b", "c"] (a value may hold several, space-separated, as OAuth writes them). */
export function tokenSelection(command: string, values: { readonly scope?: string[] | undefined; readonly resource?: string[] | undefined }): TokenSelection {
  const scopes = values.scope?.flatMap((value) => value.split(' ').filter((s) => s !== ''));
  const resource = values.resource;
  try {
    scopes?.forEach((scope) => scopeToken(scope, '--scope'));
    resource?.forEach((uri) => resourceIndicator(uri, '--resource'));
  } catch (error) {
    if (error instanceof BrokerError) throw new UsageError(`${command}: ${error.message}`);
    throw error;
  }
  if (scopes !== undefined && scopes.length === 0) throw new UsageError(`${command}: --scope needs a scope, e.g. --scope read:items`);
  return {
    ...(scopes === undefined ? {} : { scopes }),
    ...(resource === undefined ? {} : { resource }),
  };
}
