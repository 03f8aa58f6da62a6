/**
 * The pending-revocation entry: what a logout must still revoke at the provider (RFC 7009), written to
 * the keychain BEFORE the session's own entry is deleted and removed once the provider has answered.
 * A crash (kill -9, power loss) between the two steps of a logout therefore never leaves a live grant
 * behind without a record: the next daemon start finds the record and revokes.
 *
 * Keychain layout: service as the tokens, account `.tokenbroker-revoke` (a dot: never a profile name),
 * password = JSON `{ v: 1, pending: [{ id, profile, issuer, clientId, revocationEndpoint?, token,
 * tokenTypeHint, createdAt }] }`. Only what revocation needs: no access token beside a refresh token,
 * no ID token. The endpoint, issuer and client id are the ones the token was issued for, so a profile
 * edited to point elsewhere never receives it.
 */
import { BrokerError } from '../../proto/index.js';
import { Secret } from '../secret.js';

export const REVOCATION_ACCOUNT = '.tokenbroker-revoke';
export const REVOCATION_ENTRY_VERSION = 1;

export interface PendingRevocation {
  /** Random; identifies this record when it is removed. */
  readonly id: string;
  readonly profile: string;
  readonly issuer: string;
  readonly clientId: string;
  /** Absent when discovery failed at logout time: resolved from the profile later, if it still matches. */
  readonly revocationEndpoint?: string;
  readonly token: Secret;
  readonly tokenTypeHint: 'refresh_token' | 'access_token';
  /** Epoch ms. */
  readonly createdAt: number;
}

export function encodeRevocations(pending: readonly PendingRevocation[]): string {
  return JSON.stringify({
    v: REVOCATION_ENTRY_VERSION,
    pending: pending.map((p) => ({
      id: p.id,
      profile: p.profile,
      issuer: p.issuer,
      clientId: p.clientId,
      ...(p.revocationEndpoint === undefined ? {} : { revocationEndpoint: p.revocationEndpoint }),
      token: p.token.reveal(),
      tokenTypeHint: p.tokenTypeHint,
      createdAt: p.createdAt,
    })),
  });
}

/** Parses the entry; a record that is not valid is dropped (and named in `dropped`), never quoted. */
export function decodeRevocations(raw: string): { readonly pending: PendingRevocation[]; readonly dropped: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new BrokerError('INTERNAL', 'the pending-revocation entry is not JSON');
  }
  const entry = value as { v?: unknown; pending?: unknown } | null;
  if (typeof entry !== 'object' || entry === null || entry.v !== REVOCATION_ENTRY_VERSION || !Array.isArray(entry.pending)) {
    throw new BrokerError('INTERNAL', `the pending-revocation entry is not version ${REVOCATION_ENTRY_VERSION} with a "pending" array`, { field: 'pending' });
  }
  const pending: PendingRevocation[] = [];
  const dropped: string[] = [];
  const text = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  entry.pending.forEach((item: unknown, index) => {
    const r = item as Record<string, unknown> | null;
    const ok =
      typeof r === 'object' &&
      r !== null &&
      text(r['id']) &&
      text(r['profile']) &&
      text(r['issuer']) &&
      text(r['clientId']) &&
      (r['revocationEndpoint'] === undefined || text(r['revocationEndpoint'])) &&
      text(r['token']) &&
      (r['tokenTypeHint'] === 'refresh_token' || r['tokenTypeHint'] === 'access_token') &&
      typeof r['createdAt'] === 'number';
    if (!ok) {
      dropped.push(`pending[${index}]`);
      return;
    }
    pending.push({
      id: r['id'] as string,
      profile: r['profile'] as string,
      issuer: r['issuer'] as string,
      clientId: r['clientId'] as string,
      ...(r['revocationEndpoint'] === undefined ? {} : { revocationEndpoint: r['revocationEndpoint'] as string }),
      token: new Secret(r['token'] as string),
      tokenTypeHint: r['tokenTypeHint'] as 'refresh_token' | 'access_token',
      createdAt: r['createdAt'] as number,
    });
  });
  return { pending, dropped };
}
