/**
 * The keychain entry's format: the JSON of the stored tokens (`v: 1`), validated on the way in and out.
 * Reasons name the field and never quote a value; every token read back is wrapped in `Secret`.
 */
import { BrokerError, profileName } from '../../proto/index.js';
import { Secret } from '../secret.js';
import type { StoredTokens } from './types.js';

/** The entry layout this version writes and reads. */
export const ENTRY_VERSION = 1;
export type DecodeResult = { readonly ok: true; readonly tokens: StoredTokens } | { readonly ok: false; readonly reason: string; readonly field?: string };

export function encodeEntry(tokens: StoredTokens): string {
  const entry = {
    v: ENTRY_VERSION,
    accessToken: tokens.accessToken.reveal(),
    ...(tokens.refreshToken === undefined ? {} : { refreshToken: tokens.refreshToken.reveal() }),
    ...(tokens.idToken === undefined ? {} : { idToken: tokens.idToken.reveal() }),
    expiresAt: tokens.expiresAt,
    scopes: tokens.scopes,
    tokenType: tokens.tokenType,
    ...(tokens.subject === undefined ? {} : { subject: tokens.subject }),
    ...(tokens.email === undefined ? {} : { email: tokens.email }),
    ...(tokens.username === undefined ? {} : { username: tokens.username }),
    savedAt: tokens.savedAt,
    ...(tokens.issuer === undefined ? {} : { issuer: tokens.issuer }),
    ...(tokens.clientId === undefined ? {} : { clientId: tokens.clientId }),
  };
  const json = JSON.stringify(entry);
  // Never write what `load` would reject.
  const check = decodeEntry(json);
  if (!check.ok) {
    throw new BrokerError('INTERNAL', `Refusing to save tokens: ${check.reason}`, check.field === undefined ? {} : { field: check.field });
  }
  return json;
}

/** Parses and validates an entry. Reasons name the field and never quote a value. */
export function decodeEntry(raw: string): DecodeResult {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'the entry is not JSON (half-written, or written by another program)' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'the entry is not a JSON object' };
  }
  const entry = value as Record<string, unknown>;
  const bad = (field: string, expected: string): DecodeResult => ({ ok: false, field, reason: `field "${field}": expected ${expected}` });
  const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

  if (entry['v'] !== ENTRY_VERSION) {
    if (typeof entry['v'] === 'number' && entry['v'] > ENTRY_VERSION) {
      return { ok: false, field: 'v', reason: `entry version ${entry['v']} was written by a newer tokenbroker (this one reads ${ENTRY_VERSION})` };
    }
    return bad('v', `the entry version ${ENTRY_VERSION}`);
  }
  const { accessToken, refreshToken, idToken, expiresAt, scopes, tokenType, subject, email, username, savedAt, issuer, clientId } = entry;
  if (!isText(accessToken)) return bad('accessToken', 'a non-empty string');
  if (refreshToken !== undefined && !isText(refreshToken)) return bad('refreshToken', 'a non-empty string or nothing');
  if (idToken !== undefined && !isText(idToken)) return bad('idToken', 'a non-empty string or nothing');
  if (!isTime(expiresAt)) return bad('expiresAt', 'a time in epoch milliseconds');
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) return bad('scopes', 'an array of strings');
  if (!isText(tokenType)) return bad('tokenType', 'a non-empty string');
  if (subject !== undefined && typeof subject !== 'string') return bad('subject', 'a string or nothing');
  if (email !== undefined && typeof email !== 'string') return bad('email', 'a string or nothing');
  if (username !== undefined && typeof username !== 'string') return bad('username', 'a string or nothing');
  if (!isTime(savedAt)) return bad('savedAt', 'a time in epoch milliseconds');
  if (issuer !== undefined && !isText(issuer)) return bad('issuer', 'a non-empty string or nothing');
  if (clientId !== undefined && !isText(clientId)) return bad('clientId', 'a non-empty string or nothing');

  const tokens: StoredTokens = { accessToken: new Secret(accessToken), expiresAt, scopes: [...scopes], tokenType, savedAt };
  if (refreshToken !== undefined) tokens.refreshToken = new Secret(refreshToken);
  if (idToken !== undefined) tokens.idToken = new Secret(idToken);
  if (subject !== undefined) tokens.subject = subject;
  if (email !== undefined) tokens.email = email;
  if (username !== undefined) tokens.username = username;
  if (issuer !== undefined) tokens.issuer = issuer;
  if (clientId !== undefined) tokens.clientId = clientId;
  return { ok: true, tokens };
}

/** A profile name as an account name (throws BAD_REQUEST naming `profile`). */
export function checkProfile(profile: string): string {
  return profileName(profile, 'profile');
}
