/**
 * A client that ends frames with a newline (JSON lines) instead of \f gets a BAD_REQUEST naming the framing
 * as soon as a whole JSON envelope has arrived, instead of silence until the incomplete-frame timeout. JSON
 * that legitimately contains newlines (pretty-printed) and ends with \f is not affected.
 */
import { describe, expect, it } from 'vitest';
import { BrokerParser, REJECTED_FRAME, isRejectedFrame } from '../../daemon/ipc/ipc-parser.js';
import { ENVELOPE_EVENT, ENVELOPE_REQUEST, ENVELOPE_RESPONSE, FRAME_DELIMITER, MAX_MESSAGE_BYTES } from '../../proto/index.js';

function feed(chunks: string[]): Array<{ type: string; data: unknown }> {
  const parser = new BrokerParser({
    delimiter: FRAME_DELIMITER,
    maxMessageSize: MAX_MESSAGE_BYTES,
    maxPendingBytes: 4 * 1024 * 1024,
    maxEventNameLength: 128,
    messageTimeout: 5_000,
    allowReservedEvents: false,
    allowedEvents: [ENVELOPE_REQUEST, ENVELOPE_RESPONSE, ENVELOPE_EVENT],
  });
  const received: Array<{ type: string; data: unknown }> = [];
  let buffer = '';
  for (const chunk of chunks) buffer = parser.read(buffer, chunk, (message) => received.push(message as { type: string; data: unknown }));
  return received;
}

const hello = JSON.stringify({ type: 'request', data: { id: 1, method: 'hello', params: { protocolVersion: 1 } } });

function reason(message: { data: unknown } | undefined): string {
  expect(message && isRejectedFrame(message.data)).toBe(true);
  return (message!.data as { [REJECTED_FRAME]: string })[REJECTED_FRAME];
}

describe('frames ended with a newline', () => {
  it.each([
    ['\\n', '\n'],
    ['\\r\\n', '\r\n'],
  ])('a JSON envelope ended with %s is rejected, naming the delimiter', (_name, ending) => {
    const received = feed([hello + ending]);
    expect(received).toHaveLength(1);
    expect(reason(received[0])).toMatch(/end with \\f .*not with a newline/);
  });

  it('also when the newline arrives in a chunk of its own, or after earlier lines', () => {
    expect(reason(feed([hello, '\n'])[0])).toMatch(/newline/);
    expect(reason(feed(['{"type":"request","data":{}}\n' + hello + '\n'])[0])).toMatch(/newline/);
  });

  it('pretty-printed JSON ended with \\f is a normal frame', () => {
    const pretty = JSON.stringify(JSON.parse(hello), null, 2);
    const cut = pretty.indexOf('\n', 20) + 1; // chunks that end in newlines, as a line-buffered writer sends them
    const received = feed([pretty.slice(0, cut), pretty.slice(cut) + '\n', FRAME_DELIMITER]);
    expect(received).toHaveLength(1);
    expect(isRejectedFrame(received[0]!.data)).toBe(false);
    expect(received[0]!.type).toBe(ENVELOPE_REQUEST);
  });

  it('a line inside a frame that is JSON but no envelope does not end the frame', () => {
    const frame = '{"type":"request","data":{"id":1,"method":"status","params":{"list":[\n{"kind":"a"}\n]}}}';
    const received = feed([frame.slice(0, frame.indexOf('}') + 2), frame.slice(frame.indexOf('}') + 2) + FRAME_DELIMITER]);
    expect(received).toHaveLength(1);
    expect(isRejectedFrame(received[0]!.data)).toBe(false);
  });
});
