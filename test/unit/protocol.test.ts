import { describe, expect, it } from 'vitest';
import {
  BrokerError,
  FrameDecoder,
  FramingError,
  MAX_MESSAGE_BYTES,
  defaultSocketPath,
  encodeFrame,
  parseRequest,
  salvageRequestId,
} from '../../proto/index.js';

function badRequestField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    expect((error as BrokerError).code).toBe('BAD_REQUEST');
    return (error as BrokerError).field;
  }
  throw new Error('expected BAD_REQUEST');
}

describe('request validation', () => {
  it('accepts a well-formed request and fills absent params', () => {
    expect(parseRequest({ id: 1, method: 'status' })).toEqual({ id: 1, method: 'status', params: {} });
    expect(parseRequest({ id: 'a', method: 'hello', params: { protocolVersion: 1, client: 'x' } })).toEqual({
      id: 'a',
      method: 'hello',
      params: { protocolVersion: 1, client: 'x' },
    });
  });

  it('names the field that is wrong', () => {
    expect(badRequestField(() => parseRequest({ method: 'status' }))).toBe('id');
    expect(badRequestField(() => parseRequest({ id: -1, method: 'status' }))).toBe('id');
    expect(badRequestField(() => parseRequest({ id: 1.5, method: 'status' }))).toBe('id');
    expect(badRequestField(() => parseRequest({ id: 1, method: 'nope' }))).toBe('method');
    expect(badRequestField(() => parseRequest({ id: 1 }))).toBe('method');
    expect(badRequestField(() => parseRequest({ id: 1, method: 'hello', params: {} }))).toBe('params.protocolVersion');
    expect(badRequestField(() => parseRequest({ id: 1, method: 'hello', params: { protocolVersion: '1' } }))).toBe('params.protocolVersion');
    expect(badRequestField(() => parseRequest({ id: 1, method: 'subscribe', params: { events: ['nope'] } }))).toBe('params.events[0]');
    expect(badRequestField(() => parseRequest({ id: 1, method: 'status', params: [] }))).toBe('params');
    expect(badRequestField(() => parseRequest([]))).toBe('request');
  });

  it('does not let __proto__ or unknown keys through', () => {
    const request = parseRequest(JSON.parse('{"id":1,"method":"status","params":{"__proto__":{"polluted":true},"x":1}}'));
    expect(request.params).toEqual({});
    expect(Object.getPrototypeOf(request.params)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('salvages the id of an invalid request so the error can be correlated', () => {
    expect(salvageRequestId({ id: 7, method: 'nope' })).toBe(7);
    expect(salvageRequestId({ method: 'nope' })).toBeNull();
    expect(salvageRequestId('x')).toBeNull();
  });
});

describe('framing', () => {
  it('round-trips envelopes split across chunks', () => {
    const text = encodeFrame('request', { id: 1, method: 'status', params: {} }) + encodeFrame('event', { event: 'loggedOut', data: { profile: 'p' } });
    const decoder = new FrameDecoder();
    const out = [...decoder.push(text.slice(0, 7)), ...decoder.push(text.slice(7, 40)), ...decoder.push(text.slice(40))];
    expect(out.map((e) => e.type)).toEqual(['request', 'event']);
    expect(decoder.pending).toBe(false);
  });

  it('rejects invalid JSON, non-objects and oversized frames', () => {
    expect(() => new FrameDecoder().push('{nope\f')).toThrow(FramingError);
    expect(() => new FrameDecoder().push('[1]\f')).toThrow(FramingError);
    expect(() => new FrameDecoder().push('x'.repeat(MAX_MESSAGE_BYTES + 1))).toThrow(/exceeds/);
    expect(() => encodeFrame('request', 'é'.repeat(MAX_MESSAGE_BYTES / 2 + 1))).toThrow(/exceeds/);
  });
});

describe('default socket path', () => {
  const base = { uid: 1000, username: 'ada', tmpdir: '/tmp' };
  it('prefers $TOKENBROKER_SOCKET', () => {
    expect(defaultSocketPath({ ...base, platform: 'linux', env: { TOKENBROKER_SOCKET: '/x/y.sock', XDG_RUNTIME_DIR: '/run/user/1000' } })).toBe('/x/y.sock');
  });
  it('uses $XDG_RUNTIME_DIR on Linux, a per-uid /tmp dir without it', () => {
    expect(defaultSocketPath({ ...base, platform: 'linux', env: { XDG_RUNTIME_DIR: '/run/user/1000/' } })).toBe('/run/user/1000/tokenbroker/broker.sock');
    expect(defaultSocketPath({ ...base, platform: 'linux', env: {} })).toBe('/tmp/tokenbroker-1000/broker.sock');
  });
  it('uses the per-user $TMPDIR on macOS and a per-user pipe on Windows', () => {
    expect(defaultSocketPath({ ...base, platform: 'darwin', env: {}, tmpdir: '/var/folders/ab/T/' })).toBe('/var/folders/ab/T/tokenbroker/broker.sock');
    expect(defaultSocketPath({ ...base, platform: 'win32', env: {}, username: 'Ada Lovelace' })).toBe('\\\\.\\pipe\\tokenbroker-Ada_Lovelace');
  });
});
