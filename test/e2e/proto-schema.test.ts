/**
 * proto/schema.json, the machine-readable protocol: checked against proto/ (the same methods, events,
 * states and error codes) and, as a conformance run, against the real daemon's answers and events.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../proto/errors.js';
import { EVENT_NAMES, PROFILE_STATES } from '../../proto/messages.js';
import { METHOD_NAMES } from '../../proto/validate.js';
import { ROOT } from '../support/daemon.js';
import { validate } from '../support/json-schema.js';
import { rawConnect, type RawClient } from '../support/raw-client.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'proto/schema.json'), 'utf8')) as Record<string, unknown> & {
  $defs: Record<string, Record<string, unknown>>;
};
const def = (name: string) => ({ $ref: `#/$defs/${name}` });
const check = (name: string, value: unknown) => validate(schema, def(name), value);

describe('proto/schema.json against proto/', () => {
  it('names the same methods, events, profile states and error codes', () => {
    const methods = (schema.$defs['MethodName']!['enum'] as string[]).slice().sort();
    expect(methods).toEqual([...METHOD_NAMES].sort());
    expect(
      Object.keys(schema.$defs)
        .filter((k) => k.startsWith('params.'))
        .map((k) => k.slice(7))
        .sort(),
    ).toEqual(methods);
    expect(
      Object.keys(schema.$defs)
        .filter((k) => k.startsWith('result.'))
        .map((k) => k.slice(7))
        .sort(),
    ).toEqual(methods);
    expect(schema.$defs['EventName']!['enum']).toEqual([...EVENT_NAMES]);
    expect(
      Object.keys(schema.$defs)
        .filter((k) => k.startsWith('event.'))
        .map((k) => k.slice(6)),
    ).toEqual([...EVENT_NAMES]);
    expect(schema.$defs['ProfileState']!['enum']).toEqual([...PROFILE_STATES]);
    expect(schema.$defs['ErrorCode']!['enum']).toEqual([...ERROR_CODES]);
  });

  it('is checked for real: wrong shapes are refused', () => {
    expect(check('params.token.get', { minValidSeconds: 99999 })).not.toEqual([]);
    expect(check('result.token.get', { profile: 'main', accessToken: '', tokenType: 'Bearer', expiresAt: 1, scopes: [] })).not.toEqual([]);
    expect(check('Envelope', { type: 'request', data: { id: -1, method: 'status' } })).not.toEqual([]);
    expect(check('WireError', { code: 'NOPE', message: 'x' })).not.toEqual([]);
    expect(check('Envelope', { type: 'request', data: { id: 1, method: 'status', params: {} } })).toEqual([]);
  });
});

describe('conformance: the real daemon’s answers match the schema', () => {
  let s: SignedIn;
  let raw: RawClient;
  beforeAll(async () => {
    // The reload case below asks for each reload itself: the daemon's own watch of the file stays off.
    process.env['TOKENBROKER_CONFIG_WATCH'] = '0';
    s = await startSignedIn();
    delete process.env['TOKENBROKER_CONFIG_WATCH'];
    raw = await rawConnect(s.harness.daemon.socketPath, { hello: false });
  }, 90_000);
  afterAll(async () => {
    raw?.close();
    await s?.close();
  });

  async function call(id: number, method: string, params: Record<string, unknown>) {
    const request = { type: 'request', data: { id, method, params } };
    expect(check('Envelope', request), `request ${method}`).toEqual([]);
    raw.request(id, method, params);
    for (;;) {
      const frame = await raw.next(15_000);
      expect(check('Envelope', frame), `${method}: ${JSON.stringify(frame).slice(0, 200)}`).toEqual([]);
      if (frame.type === 'event') {
        const event = frame.data as { event: string; data: unknown };
        expect(check(`event.${event.event}`, event.data), event.event).toEqual([]);
        seenEvents.push(event.event);
        continue;
      }
      expect(frame.data['id']).toBe(id);
      return frame.data as { result?: unknown; error?: { code: string; field?: string } };
    }
  }
  const seenEvents: string[] = [];

  it('hello, status, subscribe, token.get, the 401 path with its event, unsubscribe, login.cancel', async () => {
    const answers: Array<[string, Record<string, unknown>]> = [
      ['hello', { protocolVersion: 1, client: 'schema-test' }],
      ['status', {}],
      ['subscribe', {}],
      ['token.get', {}],
      ['token.get', { kind: 'id' }],
      ['token.get', { scopes: ['openid'] }],
    ];
    let id = 1;
    for (const [method, params] of answers) {
      const response = await call(id++, method, params);
      expect(response.error, method).toBeUndefined();
      expect(check(`params.${method}`, params)).toEqual([]);
      expect(check(`result.${method}`, response.result), method).toEqual([]);
    }
    const token = (await s.app.getToken()).accessToken;
    const refreshed = await call(id++, 'token.get', { rejected: token });
    expect(check('result.token.get', refreshed.result)).toEqual([]);
    for (const [method, params] of [
      ['unsubscribe', {}],
      ['login.cancel', { profile: 'main' }],
    ] as const) {
      const response = await call(id++, method, params);
      expect(check(`result.${method}`, response.result), method).toEqual([]);
    }
    // The refresh was announced (tokenRefreshed, stateChanged) and each event's data matched its schema.
    expect(seenEvents).toContain('tokenRefreshed');
  });

  it('reload: its result, the profile events, a broken file (CONFIG_INVALID) and status with configError', async () => {
    const file = s.harness.daemon.configPath!;
    const good = fs.readFileSync(file, 'utf8');
    const config = JSON.parse(good) as { profiles: Record<string, Record<string, unknown>> };
    let id = 200;
    expect((await call(id++, 'subscribe', {})).error).toBeUndefined();
    const unchanged = await call(id++, 'reload', {});
    expect(check('params.reload', {})).toEqual([]);
    expect(check('result.reload', unchanged.result), JSON.stringify(unchanged.result)).toEqual([]);

    const main = config.profiles['main']!;
    fs.writeFileSync(file, JSON.stringify({ profiles: { main: { ...main, loginTimeoutSeconds: 61 }, extra: main } }));
    const changed = await call(id++, 'reload', {});
    expect(changed.result).toMatchObject({ added: ['extra'], changed: ['main'] });
    expect(check('result.reload', changed.result)).toEqual([]);
    fs.writeFileSync(file, JSON.stringify({ profiles: { main: { ...main, issuer: 'http://example.com' } } }));
    const broken = await call(id++, 'reload', {});
    expect(broken.error).toMatchObject({ code: 'CONFIG_INVALID', field: 'profiles.main.issuer' });
    expect(check('WireError', broken.error)).toEqual([]);
    const status = await call(id++, 'status', {});
    expect(status.result).toMatchObject({ configError: { field: 'profiles.main.issuer' } });
    expect(check('result.status', status.result)).toEqual([]);

    fs.writeFileSync(file, good);
    const back = await call(id++, 'reload', {});
    expect(back.result).toMatchObject({ removed: ['extra'], changed: ['main'] });
    await call(id, 'unsubscribe', {});
    // Each event's data was checked against its schema as it arrived (see call()).
    expect(seenEvents).toEqual(expect.arrayContaining(['profileAdded', 'profileChanged', 'profileRemoved']));
  });

  it('error responses: each matches WireError, and the schema refuses what the daemon refused', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['token.get', { profile: 'nope' }, 'PROFILE_NOT_FOUND'],
      ['token.get', { minValidSeconds: 99999 }, 'BAD_REQUEST'],
      ['token.get', { waitMs: -1 }, 'BAD_REQUEST'],
      ['token.get', { scopes: ['never-granted'] }, 'SCOPE_NOT_GRANTED'],
      ['token.get', { scopes: ['two scopes'] }, 'BAD_REQUEST'],
      ['token.get', { resource: ['not-a-uri'] }, 'BAD_REQUEST'],
      ['token.get', { resource: ['https://api.example.test/#fragment'] }, 'BAD_REQUEST'],
      ['token.get', { kind: 'refresh' }, 'BAD_REQUEST'],
      ['callback', {}, 'BAD_REQUEST'],
      ['hello', { protocolVersion: 2 }, 'UNSUPPORTED_PROTOCOL'],
    ];
    let id = 100;
    for (const [method, params, code] of cases) {
      const response = await call(id++, method, params);
      expect(response.error?.code, `${method} ${JSON.stringify(params)}`).toBe(code);
      expect(check('WireError', response.error)).toEqual([]);
      if (code === 'BAD_REQUEST') expect(check(`params.${method}`, params), JSON.stringify(params)).not.toEqual([]);
    }
  });
});
