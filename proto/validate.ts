/**
 * Runtime validation of everything that arrives on the socket. Each check names the field it rejects
 * (`params.minValidSeconds`), so a developer in any language can see what to fix.
 */
import { BrokerError } from './errors.js';
import { EVENT_NAMES, TOKEN_KINDS, type MethodName, type ParamsOf, type Request, type RequestId } from './messages.js';
import { MAX_STATUS_PAGE_PROFILES } from './version.js';

/** A check returns the validated value or throws BAD_REQUEST naming `path`. */
export type Check<T> = (value: unknown, path: string) => T;

export function badRequest(path: string, expected: string, value?: unknown): BrokerError {
  const got = value === undefined ? 'nothing' : describe(value);
  return new BrokerError('BAD_REQUEST', `${path}: expected ${expected}, got ${got}`, { field: path });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a long string' : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const string =
  (options: { readonly min?: number; readonly max?: number; readonly pattern?: RegExp; readonly what?: string } = {}): Check<string> =>
  (value, path) => {
    const { min = 0, max = 4096, pattern, what } = options;
    const expected = what ?? `a string of ${min}–${max} characters`;
    if (typeof value !== 'string' || value.length < min || value.length > max) throw badRequest(path, expected, value);
    if (pattern !== undefined && !pattern.test(value)) throw badRequest(path, expected, value);
    return value;
  };

export const integer =
  (options: { readonly min?: number; readonly max?: number } = {}): Check<number> =>
  (value, path) => {
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw badRequest(path, `an integer from ${min} to ${max}`, value);
    }
    return value;
  };

export const boolean: Check<boolean> = (value, path) => {
  if (typeof value !== 'boolean') throw badRequest(path, 'true or false', value);
  return value;
};

export const oneOf =
  <T extends string>(choices: readonly T[]): Check<T> =>
  (value, path) => {
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
      throw badRequest(path, `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`, value);
    }
    return value as T;
  };

/** A string-to-string map, e.g. extra authorization parameters. */
export const record =
  <T>(item: Check<T>, options: { readonly max?: number; readonly key?: Check<string> } = {}): Check<Record<string, T>> =>
  (value, path) => {
    const max = options.max ?? 64;
    if (!isPlainObject(value) || Object.keys(value).length > max) throw badRequest(path, `an object of at most ${max} entries`, value);
    const out: Record<string, T> = Object.create(null) as Record<string, T>;
    for (const [key, entry] of Object.entries(value)) {
      options.key?.(key, `${path}.${key}`);
      out[key] = item(entry, `${path}.${key}`);
    }
    return out;
  };

export const arrayOf =
  <T>(item: Check<T>, options: { readonly max?: number } = {}): Check<T[]> =>
  (value, path) => {
    const max = options.max ?? 256;
    if (!Array.isArray(value) || value.length > max) throw badRequest(path, `an array of at most ${max} items`, value);
    return value.map((entry, index) => item(entry, `${path}[${index}]`));
  };

type Shape = Record<string, Check<unknown>>;
type Optional<T> = Check<T | undefined> & { readonly optional: true };
type OutputOf<S extends Shape> = {
  [K in keyof S as S[K] extends { optional: true } ? never : K]: S[K] extends Check<infer T> ? T : never;
} & {
  [K in keyof S as S[K] extends { optional: true } ? K : never]?: S[K] extends Check<infer T> ? Exclude<T, undefined> : never;
};

export function optional<T>(check: Check<T>): Optional<T> {
  const wrapped = ((value: unknown, path: string) => (value === undefined ? undefined : check(value, path))) as Optional<T>;
  Object.defineProperty(wrapped, 'optional', { value: true });
  return wrapped;
}

/**
 * An object with known fields. Unknown fields are ignored (a newer client may send more) unless
 * `strict` (config files, where an unknown key is a typo). Only known fields are copied, so keys such
 * as `__proto__` never reach the daemon's objects.
 */
export const object =
  <S extends Shape>(shape: S, options: { readonly strict?: boolean } = {}): Check<OutputOf<S>> =>
  (value, path) => {
    if (!isPlainObject(value)) throw badRequest(path, 'an object', value);
    if (options.strict) {
      const unknown = Object.keys(value).find((key) => !Object.hasOwn(shape, key));
      if (unknown !== undefined) {
        const where = path === '' ? unknown : `${path}.${unknown}`;
        const known = Object.keys(shape).join(', ');
        throw new BrokerError('BAD_REQUEST', `${where}: unknown field (known fields: ${known})`, { field: where });
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(shape)) {
      const field = Object.hasOwn(value, key) ? value[key] : undefined;
      const checked = check(field, path === '' ? key : `${path}.${key}`);
      if (checked !== undefined) out[key] = checked;
    }
    return out as OutputOf<S>;
  };

// ---- the protocol's own checks -----------------------------------------------------------------

export const PROFILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const profileName = string({ min: 1, max: 64, pattern: PROFILE_NAME_PATTERN, what: 'a profile name (letters, digits, ".", "_", "-"; at most 64)' });

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
export const SCOPE_TOKEN_PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
export const scopeToken = string({
  min: 1,
  max: 256,
  pattern: SCOPE_TOKEN_PATTERN,
  what: 'a scope token (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)',
});

/** RFC 8707 §2: an absolute URI (a scheme, then no whitespace) without a fragment. */
export const resourceIndicator = string({
  min: 1,
  max: 2048,
  pattern: /^[A-Za-z][A-Za-z0-9+.-]*:[^\s#]+$/,
  what: 'an absolute URI without a fragment (RFC 8707 §2), e.g. "https://api.example.com"',
});

/** One check per method, typed by it: a check whose output is not that method's params does not compile. */
type ParamChecks = { readonly [M in MethodName]: Check<ParamsOf<M>> };

const paramChecks: ParamChecks = {
  hello: object({
    protocolVersion: integer({ min: 0, max: 1_000_000 }),
    client: optional(string({ max: 128 })),
  }),
  status: object({
    profile: optional(profileName),
    offset: optional(integer({ min: 0, max: 1_000_000 })),
    limit: optional(integer({ min: 1, max: MAX_STATUS_PAGE_PROFILES })),
  }),
  subscribe: object({ events: optional(arrayOf(oneOf(EVENT_NAMES), { max: EVENT_NAMES.length })) }),
  unsubscribe: object({}),
  'token.get': object({
    profile: optional(profileName),
    minValidSeconds: optional(integer({ min: 0, max: 3600 })),
    waitMs: optional(integer({ min: 0, max: 120_000 })),
    rejected: optional(string({ min: 1, max: 16_384, what: 'the access token the API rejected' })),
    scopes: optional(arrayOf(scopeToken, { max: 64 })),
    resource: optional(arrayOf(resourceIndicator, { max: 8 })),
    kind: optional(oneOf(TOKEN_KINDS)),
  }),
  login: object({ profile: optional(profileName), wait: optional(boolean), openBrowser: optional(boolean), device: optional(boolean) }),
  'login.cancel': object({ profile: optional(profileName) }),
  logout: object({ profile: optional(profileName), openBrowser: optional(boolean) }),
  callback: object({ url: string({ min: 1, max: 16_384, what: 'the redirect URL (at most 16384 characters)' }) }),
  reload: object({}),
};

export const METHOD_NAMES = Object.keys(paramChecks) as MethodName[];

const requestId: Check<RequestId> = (value, path) => {
  if (typeof value === 'string' && value.length > 0 && value.length <= 64) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw badRequest(path, 'a request id (a string of 1–64 characters or a non-negative integer)', value);
};

/**
 * Best-effort id of a payload that failed validation, so the error can still be correlated.
 * Returns null when there is no usable id.
 */
export function salvageRequestId(data: unknown): RequestId | null {
  if (!isPlainObject(data)) return null;
  try {
    return requestId(data['id'], 'id');
  } catch {
    return null;
  }
}

/** Validates the `data` of a `request` envelope. Throws BAD_REQUEST naming the field. */
export function parseRequest(data: unknown): Request {
  if (!isPlainObject(data)) throw badRequest('request', 'an object with id, method and params', data);
  const id = requestId(data['id'], 'id');
  const method = data['method'];
  if (typeof method !== 'string' || !isMethodName(method)) {
    throw badRequest('method', `one of ${METHOD_NAMES.join(', ')}`, method);
  }
  const rawParams = Object.hasOwn(data, 'params') ? data['params'] : {};
  return requestOf(id, method, rawParams);
}

function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(paramChecks, name);
}

function requestOf<M extends MethodName>(id: RequestId, method: M, rawParams: unknown): Request {
  const params: ParamsOf<M> = paramChecks[method](rawParams, 'params');
  // `params` is M's by the table's type; TypeScript cannot pick the member of the union `Request` for a generic M.
  return { id, method, params } as Request;
}
