/**
 * A frame generator for hostile-client tests of the daemon's socket (test/hardening/fuzz.test.ts).
 *
 * It produces *connection scripts*: the bytes one connection sends, and what the daemon must do with
 * each frame according to the wire contract (proto/README.md, "Limits"):
 *
 * - `answer`: exactly one response with this id (`null` when the id cannot be read), optionally with a
 *   given error code and field;
 * - `close`: one error response with `id: null`, then the daemon closes the connection. A closing frame
 *   is always the last frame of its script that expects anything; frames written after it (`trailing`)
 *   must get no answer at all.
 *
 * Expectations come from two oracles: hand-written ones for the targeted categories (a wrong type in
 * one field ⇒ BAD_REQUEST naming that field), and a small model of the framing rules plus proto's own
 * `parseRequest` for randomly mutated frames. Everything is driven by a seeded PRNG, so a failure is
 * reproduced with the same `TOKENBROKER_FUZZ_SEED`.
 *
 * The generator never produces a *valid* `login` or `logout` for a profile that exists (`protectedProfiles`):
 * the fuzzed daemon must not open browsers or sign anybody out.
 */
import { EVENT_NAMES, MAX_MESSAGE_BYTES, parseRequest, salvageRequestId, type RequestId } from '../../proto/index.js';

// ---- a seeded PRNG (mulberry32) ------------------------------------------------------------------

export interface Rng {
  /** [0, 1) */
  readonly next: () => number;
  int(maxExclusive: number): number;
  range(min: number, maxInclusive: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (maxExclusive: number): number => Math.floor(next() * maxExclusive);
  return {
    next,
    int,
    range: (min, maxInclusive) => min + int(maxInclusive - min + 1),
    pick: (items) => items[int(items.length)]!,
    chance: (p) => next() < p,
  };
}

// ---- what the daemon must do -------------------------------------------------------------------

/** A response `code` or `"result"` for a successful answer. */
export type Outcome = string;

export type Expectation =
  | {
      readonly kind: 'answer';
      readonly id: RequestId | null;
      /** Acceptable outcomes; any answer when absent (but never INTERNAL). */
      readonly outcomes?: readonly Outcome[];
      /** The `field` the error must name (exact), or a prefix of it when it ends with "*". */
      readonly field?: string;
    }
  | { readonly kind: 'close' };

export const CATEGORIES = [
  'valid',
  'wrong-type',
  'unknown-method',
  'proto-keys',
  'semantic',
  'deep-json',
  'huge-json',
  'mutated',
  'random-bytes',
  'truncated',
  'oversized',
  'bad-envelope',
] as const;
export type Category = (typeof CATEGORIES)[number];

export interface Frame {
  readonly category: Category;
  /** The bytes of the frame, delimiter included (an oversized frame may have none). */
  readonly bytes: Buffer;
  readonly expect: Expectation;
}

export interface Script {
  /** Whether the script starts with a successful `hello` (counted as a `valid` frame). */
  readonly hello: boolean;
  readonly frames: readonly Frame[];
  /** Written after a closing frame; must not be answered. */
  readonly trailing: readonly Frame[];
  /** Write everything at once, or split at random byte offsets with pauses between the pieces. */
  readonly chunked: boolean;
}

export interface GeneratorOptions {
  /** Profiles that exist in the fuzzed daemon's config: no valid login/logout is ever sent for them. */
  readonly protectedProfiles: readonly string[];
  /** A profile with a session: `token.get` for it must succeed (or be refused for too many in flight). */
  readonly activeProfile?: string;
  /** Most frames per keep-open script. @default 60 */
  readonly maxFramesPerScript?: number;
  /** Share of scripts that end with a frame that closes the connection. @default 0.4 */
  readonly closingShare?: number;
}

const DELIMITER = '\f';
/** What a frame written after a closing frame must get: nothing (no outcome is acceptable). */
const NO_ANSWER: Expectation = { kind: 'answer', id: null, outcomes: [] };
const RESERVED_TYPES = ['start', 'connect', 'disconnect', 'destroy', 'close', 'socket.disconnected', 'error', 'data'];
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype);

// ---- the framing model (node-ipc Assured + our tolerant wrapper) --------------------------------

/**
 * What the daemon does with one frame's text (without the delimiter), as the wire contract says:
 * `close` for anything that is not a JSON object envelope of type "request" within the size limit.
 */
export function classifyFrame(text: string): { readonly kind: 'close' } | { readonly kind: 'request'; readonly data: unknown } {
  if (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) return { kind: 'close' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'close' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'close' };
  const type = (value as { type?: unknown }).type;
  if (type !== 'request') return { kind: 'close' };
  return { kind: 'request', data: (value as { data?: unknown }).data };
}

/**
 * The expectation for a request envelope's `data` on a connection whose hello state is `helloDone`.
 * Returns the expectation and whether the request is a successful hello. `null` when the request must
 * not be sent (a valid login/logout of a protected profile).
 */
export function expectRequest(
  data: unknown,
  helloDone: boolean,
  options: GeneratorOptions,
): { readonly expect: Expectation; readonly helloOk: boolean } | null {
  let request;
  try {
    request = parseRequest(data);
  } catch (error) {
    const field = (error as { field?: string }).field;
    return { expect: { kind: 'answer', id: salvageRequestId(data), outcomes: ['BAD_REQUEST'], ...(field ? { field } : {}) }, helloOk: false };
  }
  const { id, method } = request;
  const params = request.params as Record<string, unknown>;
  if (method !== 'hello' && !helloDone) return { expect: { kind: 'answer', id, outcomes: ['BAD_REQUEST'], field: 'method' }, helloOk: false };
  const profile = params['profile'] as string | undefined;
  const known = profile !== undefined && options.protectedProfiles.includes(profile);
  // Past the hello check, any request may meet the in-flight limit (64 async requests of one chunk).
  const answer = (...outcomes: Outcome[]): Expectation => ({ kind: 'answer', id, outcomes: [...outcomes, 'TOO_MANY_REQUESTS'] });
  switch (method) {
    case 'hello': {
      const ok = params['protocolVersion'] === 1;
      return { expect: answer(ok ? 'result' : 'UNSUPPORTED_PROTOCOL'), helloOk: ok };
    }
    case 'status':
    case 'subscribe':
    case 'unsubscribe':
      return { expect: answer('result'), helloOk: false };
    case 'login':
    case 'logout':
      // Without a profile: none is the default in the fuzzed daemon (two profiles), so PROFILE_NOT_FOUND too.
      if (known || (profile === undefined && options.protectedProfiles.length < 2)) return null;
      return { expect: answer('PROFILE_NOT_FOUND'), helloOk: false };
    case 'login.cancel':
      return { expect: answer(known ? 'result' : 'PROFILE_NOT_FOUND'), helloOk: false };
    case 'token.get':
      return { expect: answer(!known ? 'PROFILE_NOT_FOUND' : profile === options.activeProfile ? 'result' : 'LOGIN_REQUIRED'), helloOk: false };
    case 'callback':
      return { expect: answer('BAD_REQUEST', 'LOGIN_FAILED'), helloOk: false };
    case 'reload':
      // The fuzzed daemon's config file does not change: a reload changes nothing and succeeds.
      return { expect: answer('result'), helloOk: false };
  }
}

// ---- building blocks -----------------------------------------------------------------------------

function frameOf(category: Category, text: string, expect: Expectation): Frame {
  return { category, bytes: Buffer.from(text + DELIMITER, 'utf8'), expect };
}

function envelope(data: unknown): string {
  return JSON.stringify({ type: 'request', data });
}

function randomString(rng: Rng, length: number, alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-'): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[rng.int(alphabet.length)];
  return out;
}

/** Any Unicode text without the frame delimiter (lone surrogates included: they become U+FFFD on the wire). */
function randomUnicode(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    const roll = rng.next();
    let code: number;
    if (roll < 0.6) code = rng.range(0x20, 0x7e);
    else if (roll < 0.7) code = rng.range(0, 0x1f);
    else if (roll < 0.9) code = rng.range(0x80, 0xffff);
    else code = rng.range(0xd800, 0xdfff);
    if (code === 0x0c) code = 0x20;
    out += String.fromCharCode(code);
  }
  return out;
}

/** A profile name that matches the protocol's pattern and is not configured. */
function unknownProfile(rng: Rng, options: GeneratorOptions): string {
  for (;;) {
    const name = rng.pick(['zz', 'work', 'p', 'Main', 'main2', 'default', 'x.y_z-1']) + (rng.chance(0.5) ? randomString(rng, rng.range(1, 8)) : '');
    if (!options.protectedProfiles.includes(name) && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) return name;
  }
}

// Wrong values per kind of field. Each is invalid for every check of that kind.
const WRONG_INT = [null, true, false, '1', '', -1, 1.5, [], {}, [1], { n: 1 }, 2 ** 53, -0.5, 1e308];
const WRONG_BOOL = [null, 'true', 'false', 1, 0, [], {}, 'yes', [true]];
const WRONG_STRING = [null, 5, 0, true, [], {}, ['a'], { s: 'a' }];
const WRONG_PROFILE = [...WRONG_STRING, '', '../etc', '-x', '.hidden', ' main', 'main\n', '__proto__', 'a b', 'é', 'a'.repeat(65), 'con/../x'];
const WRONG_EVENTS = ['all', 5, {}, null, true, ['nope'], [1], [null], ['__proto__'], Array(EVENT_NAMES.length + 1).fill('loggedIn'), [['loggedIn']]];
const WRONG_IDS_JSON = ['null', '-1', '1.5', '""', JSON.stringify('x'.repeat(65)), '[]', '{}', 'true', String(2 ** 53), '1e999', '-0.0001', '[1]', '{"id":1}'];
const WRONG_METHODS = [
  5,
  null,
  [],
  {},
  '',
  'nope',
  'token.steal',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'STATUS',
  'status ',
  'token.get\u0000',
  'hello\n',
  'login.cancel.',
  'Token.Get',
];
const WRONG_PARAMS = [5, 'x', [], true, null, [{}], 0];
const WRONG_DATA_JSON = ['5', '"x"', '[]', 'null', 'true', '[{"id":1,"method":"status"}]'];

interface FieldSpec {
  readonly method: string;
  readonly field: string;
  readonly wrong: readonly unknown[];
  /** The error names `params.<field>` exactly, or starts with it (array items). */
  readonly prefix?: boolean;
}

/** Every field of every method, with values its check must refuse. */
export const FIELD_SPECS: readonly FieldSpec[] = [
  { method: 'hello', field: 'protocolVersion', wrong: [...WRONG_INT, 1_000_001, undefined] },
  { method: 'hello', field: 'client', wrong: [...WRONG_STRING, 'c'.repeat(129)] },
  { method: 'subscribe', field: 'events', wrong: WRONG_EVENTS, prefix: true },
  { method: 'token.get', field: 'profile', wrong: WRONG_PROFILE },
  { method: 'token.get', field: 'minValidSeconds', wrong: [...WRONG_INT, 3601] },
  { method: 'token.get', field: 'waitMs', wrong: [...WRONG_INT, 120_001] },
  { method: 'token.get', field: 'rejected', wrong: [...WRONG_STRING, '', 'r'.repeat(16_385)] },
  { method: 'login', field: 'profile', wrong: WRONG_PROFILE },
  { method: 'login', field: 'wait', wrong: WRONG_BOOL },
  { method: 'login', field: 'openBrowser', wrong: WRONG_BOOL },
  { method: 'login.cancel', field: 'profile', wrong: WRONG_PROFILE },
  { method: 'logout', field: 'profile', wrong: WRONG_PROFILE },
  { method: 'logout', field: 'openBrowser', wrong: WRONG_BOOL },
  { method: 'callback', field: 'url', wrong: [...WRONG_STRING, '', 'u'.repeat(16_385), undefined] },
];

const METHODS = ['hello', 'status', 'subscribe', 'unsubscribe', 'token.get', 'login', 'login.cancel', 'logout', 'callback'];

/** Nested arrays/objects, `depth` levels, as JSON text. */
function deepJson(rng: Rng, depth: number): string {
  const kind = rng.pick(['array', 'object', 'mixed']);
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const useObject = kind === 'object' || (kind === 'mixed' && rng.chance(0.5));
    if (useObject) {
      open += '{"a":';
      close = '}' + close;
    } else {
      open += '[';
      close = ']' + close;
    }
  }
  return open + (rng.chance(0.5) ? '1' : '"x"') + close;
}

// ---- the generator -------------------------------------------------------------------------------

export class FrameGenerator {
  private nextId = 1;

  constructor(
    private readonly rng: Rng,
    private readonly options: GeneratorOptions,
  ) {}

  private id(): number {
    return this.nextId++;
  }

  /** One connection's script. */
  script(): Script {
    const { rng } = this;
    const hello = rng.chance(0.9);
    let helloDone = hello;
    const frames: Frame[] = [];
    const used = new Set<RequestId>([0]); // 0: the runner's hello
    const max = this.options.maxFramesPerScript ?? 60;
    const count = rng.chance(0.3) ? rng.range(1, 5) : rng.range(1, max);
    while (frames.length < count) {
      const frame = this.answerFrame(helloDone);
      const { expect } = frame.frame;
      // A mutation can turn an id into one used before: ids stay unique within a script.
      if (expect.kind === 'answer' && expect.id !== null) {
        if (used.has(expect.id)) continue;
        used.add(expect.id);
      }
      frames.push(frame.frame);
      helloDone ||= frame.helloOk;
    }
    let trailing: Frame[] = [];
    if (rng.chance(this.options.closingShare ?? 0.4)) {
      if (rng.chance(0.5)) frames.length = Math.min(frames.length, rng.range(0, 3)); // often closes early
      const closer = this.closingFrame();
      frames.push(closer);
      // After a frame without a delimiter, anything more would only extend that frame.
      const terminated = closer.bytes[closer.bytes.length - 1] === 0x0c;
      trailing = terminated ? Array.from({ length: rng.range(0, 3) }, () => frameOf('valid', envelope({ id: this.id(), method: 'status' }), NO_ANSWER)) : [];
    }
    return { hello, frames, trailing, chunked: rng.chance(0.35) };
  }

  /** A frame the daemon answers and after which the connection stays open. */
  private answerFrame(helloDone: boolean): { frame: Frame; helloOk: boolean } {
    const roll = this.rng.next();
    if (roll < 0.12) return this.valid(helloDone);
    if (roll < 0.4) return { frame: this.wrongType(helloDone), helloOk: false };
    if (roll < 0.47) return { frame: this.unknownMethod(helloDone), helloOk: false };
    if (roll < 0.57) return this.protoKeys(helloDone);
    if (roll < 0.7) return this.semantic(helloDone);
    if (roll < 0.74) return this.deepRequest(helloDone);
    if (roll < 0.78) return this.modelled('huge-json', this.hugeRequest(), helloDone);
    return this.mutated(helloDone);
  }

  /** A frame that must be answered with id null and then close the connection. */
  closingFrame(): Frame {
    const { rng } = this;
    const roll = rng.next();
    if (roll < 0.25) return this.randomBytes();
    if (roll < 0.45) return this.truncated();
    if (roll < 0.65) return this.oversized();
    if (roll < 0.8) return this.mutatedCloser();
    return this.badEnvelope();
  }

  /** Runs a request envelope through the model, keeping only those it may send. */
  private modelled(category: Category, data: unknown, helloDone: boolean, text = envelope(data)): { frame: Frame; helloOk: boolean } {
    if (classifyFrame(text).kind !== 'request') throw new Error(`fuzz: a ${category} frame would close the connection: ${text.slice(0, 80)}`);
    const verdict = expectRequest(data, helloDone, this.options);
    if (verdict === null) return this.valid(helloDone);
    return { frame: frameOf(category, text, verdict.expect), helloOk: verdict.helloOk };
  }

  private valid(helloDone: boolean): { frame: Frame; helloOk: boolean } {
    const { rng, options } = this;
    const id = rng.chance(0.2) ? `s-${this.id()}` : this.id();
    const choices: Array<[string, Record<string, unknown>]> = [
      ['status', {}],
      ['hello', { protocolVersion: 1, client: randomUnicode(rng, rng.range(0, 40)) }],
      ['subscribe', rng.chance(0.5) ? {} : { events: EVENT_NAMES.filter(() => rng.chance(0.5)) }],
      ['unsubscribe', {}],
    ];
    if (options.activeProfile) choices.push(['token.get', { profile: options.activeProfile }]);
    const [method, params] = rng.pick(choices);
    return this.modelled('valid', { id, method, params }, helloDone);
  }

  private wrongType(helloDone: boolean): Frame {
    const { rng } = this;
    const roll = rng.next();
    const id = this.id();
    if (roll < 0.1) {
      const text = `{"type":"request","data":{"id":${rng.pick(WRONG_IDS_JSON)},"method":"status","params":{}}}`;
      return frameOf('wrong-type', text, { kind: 'answer', id: null, outcomes: ['BAD_REQUEST'], field: 'id' });
    }
    if (roll < 0.18) {
      return frameOf('wrong-type', envelope({ id, method: rng.pick(WRONG_METHODS) }), { kind: 'answer', id, outcomes: ['BAD_REQUEST'], field: 'method' });
    }
    if (roll < 0.26) {
      const method = rng.pick(METHODS);
      return frameOf('wrong-type', envelope({ id, method, params: rng.pick(WRONG_PARAMS) }), {
        kind: 'answer',
        id,
        outcomes: ['BAD_REQUEST'],
        field: 'params',
      });
    }
    if (roll < 0.32) {
      const data = rng.pick(WRONG_DATA_JSON);
      return frameOf('wrong-type', `{"type":"request","data":${data}}`, { kind: 'answer', id: null, outcomes: ['BAD_REQUEST'], field: 'request' });
    }
    if (roll < 0.34) return frameOf('wrong-type', '{"type":"request"}', { kind: 'answer', id: null, outcomes: ['BAD_REQUEST'], field: 'request' });
    const spec = rng.pick(FIELD_SPECS);
    const value = rng.pick(spec.wrong);
    const params: Record<string, unknown> = spec.method === 'hello' ? { protocolVersion: 1 } : {};
    if (value === undefined) delete params[spec.field];
    else params[spec.field] = value;
    const field = `params.${spec.field}${spec.prefix ? '*' : ''}`;
    void helloDone; // parsing comes before the hello check: the field is named either way
    return frameOf('wrong-type', envelope({ id, method: spec.method, params }), { kind: 'answer', id, outcomes: ['BAD_REQUEST'], field });
  }

  private unknownMethod(helloDone: boolean): Frame {
    const { rng } = this;
    const id = this.id();
    const method = rng.chance(0.5) ? rng.pick(WRONG_METHODS.filter((m) => typeof m === 'string')) : randomUnicode(rng, rng.range(0, 30));
    if (METHODS.includes(method)) return this.unknownMethod(helloDone);
    return frameOf('unknown-method', envelope({ id, method, params: {} }), { kind: 'answer', id, outcomes: ['BAD_REQUEST'], field: 'method' });
  }

  /** `__proto__`, `constructor` and `prototype` keys at every level, aimed at the daemon's own state. */
  private protoKeys(helloDone: boolean): { frame: Frame; helloOk: boolean } {
    const { rng, options } = this;
    const id = this.id();
    const key = rng.pick(['__proto__', 'constructor', 'prototype']);
    const payload = rng.pick([
      '{"helloDone":true,"closing":true,"inFlight":-1000}',
      `{"profile":${JSON.stringify(options.protectedProfiles[0] ?? 'main')},"method":"status","polluted":"yes"}`,
      '{"prototype":{"polluted":"yes","isAdmin":true}}',
      '{"__proto__":{"__proto__":{"polluted":"yes"}}}',
      '[1,2,3]',
      'null',
    ]);
    const method = rng.pick(['status', 'token.get', 'subscribe', 'hello', 'login.cancel']);
    const params = method === 'hello' ? '"protocolVersion":1' : '';
    const at = rng.int(4);
    // JSON text, because JSON.stringify would drop a __proto__ key set through an object literal.
    const data =
      at === 0
        ? `{"${key}":${payload},"id":${id},"method":"${method}","params":{${params}}}`
        : at === 1
          ? `{"id":${id},"method":"${method}","params":{${params}${params ? ',' : ''}"${key}":${payload}}}`
          : `{"id":${id},"method":"${method}","params":{${params}${params ? ',' : ''}"nested":{"${key}":${payload}}}}`;
    const text = at === 2 ? `{"type":"request","${key}":${payload},"data":${data}}` : `{"type":"request","data":${data}}`;
    const parsed = classifyFrame(text);
    if (parsed.kind !== 'request') throw new Error(`fuzz: proto-keys frame does not parse: ${text}`);
    return this.modelled('proto-keys', parsed.data, helloDone, text);
  }

  /** Well-typed requests with values that name nothing: unknown profiles, random callback URLs, other versions. */
  private semantic(helloDone: boolean): { frame: Frame; helloOk: boolean } {
    const { rng, options } = this;
    const id = this.id();
    const roll = rng.next();
    let data: Record<string, unknown>;
    if (roll < 0.35)
      data = {
        id,
        method: rng.pick(['token.get', 'login', 'logout', 'login.cancel']),
        params: { profile: unknownProfile(rng, options), ...(rng.chance(0.3) ? { openBrowser: false } : {}) },
      };
    else if (roll < 0.45)
      data = { id, method: 'token.get', params: { profile: rng.pick(options.protectedProfiles), minValidSeconds: rng.range(0, 30), waitMs: rng.range(0, 50) } };
    else if (roll < 0.55)
      data = { id, method: 'token.get', params: { profile: rng.pick(options.protectedProfiles), rejected: randomString(rng, rng.range(1, 64)), waitMs: 0 } };
    else if (roll < 0.85) {
      const url = rng.pick([
        () => `com.example.broker:/callback?code=${randomString(rng, 20)}&state=${randomString(rng, 43)}`,
        () => `http://127.0.0.1:${rng.range(1, 65535)}/callback?state=${randomString(rng, 30)}&iss=https://evil.example`,
        () => `com.example.broker:/logged-out?state=${randomString(rng, 43)}`,
        () => `com.example.broker:/callback?state=a&state=b&code=c`,
        () => `javascript:alert(1)//?state=${randomString(rng, 43)}`,
        () => randomUnicode(rng, rng.range(1, 200)),
        () => `https://evil.example/?redirect_uri=${encodeURIComponent('https://evil.example')}&state=${randomString(rng, 43)}`,
      ])();
      data = { id, method: 'callback', params: { url } };
    } else data = { id, method: 'hello', params: { protocolVersion: rng.pick([0, 2, 3, 999_999]) } };
    return this.modelled('semantic', data, helloDone);
  }

  /** Deeply nested JSON (built as text: JSON.stringify itself overflows the stack at these depths). */
  private deepRequest(helloDone: boolean): { frame: Frame; helloOk: boolean } {
    const { rng } = this;
    const arraysOnly = rng.chance(0.5);
    const max = arraysOnly ? 30_000 : 9_000;
    const depth = rng.chance(0.7) ? rng.range(100, 2_000) : rng.range(2_000, max);
    const deep = arraysOnly ? '['.repeat(depth) + '1' + ']'.repeat(depth) : deepJson(rng, depth);
    const id = this.id();
    const data = rng.pick([
      () => `{"id":${id},"method":"status","params":{"deep":${deep}}}`,
      () => `{"id":${id},"method":"status","params":{},"deep":${deep}}`,
      () => `{"id":${id},"method":"subscribe","params":{"events":${deep}}}`,
      () => `{"id":${id},"method":"token.get","params":{"profile":${deep}}}`,
      () => `{"id":${deep},"method":"status"}`,
      () => deep,
    ])();
    const text = `{"type":"request","data":${data}}`;
    const parsed = classifyFrame(text);
    if (parsed.kind !== 'request') throw new Error('fuzz: a deep-json frame does not parse');
    return this.modelled('deep-json', parsed.data, helloDone, text);
  }

  private hugeRequest(): unknown {
    const { rng } = this;
    const id = this.id();
    return rng.pick([
      () => ({ id, method: 'status', params: Object.fromEntries(Array.from({ length: rng.range(500, 3_000) }, (_, i) => [`k${i}`, i])) }),
      () => ({ id, method: 'status', params: { big: 'x'.repeat(rng.range(10_000, 60_000)) } }),
      () => ({ id, method: 'subscribe', params: { events: Array.from({ length: rng.range(EVENT_NAMES.length + 1, 5_000) }, () => 'loggedIn') } }),
      () => ({ id, method: 'token.get', params: { profile: unknownProfile(rng, this.options), rejected: 'r'.repeat(rng.range(1, 16_384)), waitMs: 0 } }),
      () => ({ id, method: 'callback', params: { url: `com.example.broker:/callback?state=${'s'.repeat(rng.range(100, 16_000))}` } }),
      () => ({ id, method: 'status', params: { u: '\u20ac'.repeat(rng.range(1_000, 21_000)) } }),
      () => ({ id, method: 'hello', params: { protocolVersion: 1, client: 'c'.repeat(128) } }),
    ])();
  }

  /** A well-formed request with random damage that still parses: the model decides what the daemon must do. */
  private mutated(helloDone: boolean): { frame: Frame; helloOk: boolean } {
    for (;;) {
      const text = this.damage(this.valid(true).frame.bytes.toString('utf8').slice(0, -1));
      const verdict = classifyFrame(text);
      if (verdict.kind === 'close') continue; // keep-open frames only here; closers end a script
      return this.modelled('mutated', verdict.data, helloDone, text);
    }
  }

  /** 1–4 random edits; returns the text as the daemon will see it (a lone surrogate becomes U+FFFD on the wire). */
  private damage(base: string): string {
    const { rng } = this;
    let text = base;
    const edits = rng.range(1, 4);
    for (let i = 0; i < edits; i++) {
      const at = rng.int(text.length + 1);
      const op = rng.int(5);
      if (op === 0) text = text.slice(0, at) + randomUnicode(rng, rng.range(1, 4)) + text.slice(at);
      else if (op === 1) text = text.slice(0, at) + text.slice(at + rng.range(1, 6));
      else if (op === 2) text = text.slice(0, at) + rng.pick(['{', '}', '[', ']', '"', ',', ':', '\\', '0', 'null', '"__proto__":', 'e9']) + text.slice(at);
      else if (op === 3) text = text.slice(0, at) + text.slice(rng.int(text.length));
      else text = text.replace(/"(id|method|params|type|data)"/, () => `"${rng.pick(['id', 'method', 'params', 'type', 'data', '__proto__', 'ID'])}"`);
    }
    return Buffer.from(text.replace(/\f/g, ' '), 'utf8').toString('utf8');
  }

  /** Random damage that breaks the frame itself (JSON or envelope). */
  private mutatedCloser(): Frame {
    for (;;) {
      const text = this.damage(this.valid(true).frame.bytes.toString('utf8').slice(0, -1));
      if (classifyFrame(text).kind === 'close') return frameOf('mutated', text, { kind: 'close' });
    }
  }

  private randomBytes(): Frame {
    const { rng } = this;
    const length = rng.range(0, 2_000);
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++) {
      let byte = rng.int(256);
      if (byte === 0x0c) byte = 0x0d;
      bytes[i] = byte;
    }
    if (length > 0 && bytes[0] === 0x7b) bytes[0] = 0x7c; // never starts an object: cannot be a valid envelope
    const text = bytes.toString('utf8');
    if (classifyFrame(text).kind !== 'close') return this.randomBytes();
    return { category: 'random-bytes', bytes: Buffer.concat([bytes, Buffer.from(DELIMITER)]), expect: { kind: 'close' } };
  }

  private truncated(): Frame {
    const text = this.valid(true).frame.bytes.toString('utf8').slice(0, -1);
    const cut = text.slice(0, this.rng.int(text.length));
    return frameOf('truncated', cut, { kind: 'close' });
  }

  private oversized(): Frame {
    const { rng } = this;
    const id = this.id();
    const over = MAX_MESSAGE_BYTES + rng.range(1, 4_096);
    const roll = rng.int(4);
    if (roll === 0) {
      const pad = 'x'.repeat(over);
      return frameOf('oversized', envelope({ id, method: 'status', params: { pad } }), { kind: 'close' });
    }
    if (roll === 1) {
      // Fewer characters than the limit, more bytes: the cap counts UTF-8 bytes.
      const chars = Math.ceil((MAX_MESSAGE_BYTES + 3) / 3);
      return frameOf('oversized', envelope({ id, method: 'status', params: { pad: '\u20ac'.repeat(chars) } }), { kind: 'close' });
    }
    if (roll === 2) {
      // No delimiter at all: the buffered remainder itself exceeds the cap.
      return {
        category: 'oversized',
        bytes: Buffer.from(`{"type":"request","data":{"id":${id},"pad":"${'y'.repeat(over)}`, 'utf8'),
        expect: { kind: 'close' },
      };
    }
    return frameOf('oversized', `[${'1,'.repeat(Math.ceil(over / 2))}1]`, { kind: 'close' });
  }

  private badEnvelope(): Frame {
    const { rng } = this;
    const id = this.id();
    const data = JSON.stringify({ id, method: 'status' });
    const type = rng.pick<unknown>([
      'response',
      'event',
      'Request',
      'request ',
      '',
      'whatever',
      't'.repeat(300),
      5,
      null,
      true,
      [],
      { type: 'request' },
      ...RESERVED_TYPES,
      ...PROTOTYPE_NAMES,
    ]);
    const text = rng.pick([
      () => JSON.stringify({ type, data: JSON.parse(data) as unknown }),
      () => `{"data":${data}}`,
      () => `${rng.pick(['5', '"request"', 'null', 'true', '[]', `[{"type":"request","data":${data}}]`, '""'])}`,
      () => `{"type":"request","data":${data},"type":"response"}`,
    ])();
    if (classifyFrame(text).kind !== 'close') throw new Error(`fuzz: bad envelope would be accepted: ${text.slice(0, 80)}`);
    return frameOf('bad-envelope', text, { kind: 'close' });
  }
}

/** The hello every script starts with (unless it tests the pre-hello rule). */
export function helloFrame(id: RequestId): Frame {
  return frameOf('valid', envelope({ id, method: 'hello', params: { protocolVersion: 1, client: 'fuzz' } }), { kind: 'answer', id, outcomes: ['result'] });
}

/** Splits `bytes` at `pieces - 1` random offsets. */
export function splitRandomly(rng: Rng, bytes: Buffer, pieces: number): Buffer[] {
  const cuts = new Set<number>();
  for (let i = 1; i < pieces; i++) cuts.add(1 + rng.int(Math.max(1, bytes.length - 1)));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of sorted) {
    out.push(bytes.subarray(start, cut));
    start = cut;
  }
  out.push(bytes.subarray(start));
  return out.filter((piece) => piece.length > 0);
}
