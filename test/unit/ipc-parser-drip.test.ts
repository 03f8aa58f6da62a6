/**
 * The parser's work for a frame dripped one byte per chunk must grow linearly with the frame, not
 * quadratically (node-ipc's own read re-scans and re-measures the whole partial frame on every chunk).
 * Measured on the parser itself, so the figure does not depend on how the kernel coalesces writes.
 * End-to-end figures: test/hardening/drip.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { BrokerParser, isRejectedFrame } from '../../daemon/ipc/ipc-parser.js';
import { ENVELOPE_REQUEST, ENVELOPE_RESPONSE, ENVELOPE_EVENT, FRAME_DELIMITER, MAX_MESSAGE_BYTES } from '../../proto/index.js';

function parser() {
  return new BrokerParser({
    delimiter: FRAME_DELIMITER,
    maxMessageSize: MAX_MESSAGE_BYTES,
    maxPendingBytes: 4 * 1024 * 1024,
    maxEventNameLength: 128,
    messageTimeout: 5_000,
    allowReservedEvents: false,
    allowedEvents: [ENVELOPE_REQUEST, ENVELOPE_RESPONSE, ENVELOPE_EVENT],
  });
}

/** A status request padded to `bytes` (delimiter included). */
function frameOf(bytes: number): string {
  const head = '{"type":"request","data":{"id":1,"method":"status","params":{"pad":"';
  const tail = '"}}}' + FRAME_DELIMITER;
  return head + 'x'.repeat(bytes - head.length - tail.length) + tail;
}

/** Feeds `frame` in chunks of `chunk` characters to one connection; returns the ms taken and what was received. */
function feed(frame: string, chunk: number): { ms: number; received: unknown[] } {
  const p = parser();
  const received: unknown[] = [];
  const receive = (message: unknown) => received.push(message);
  let buffer = '';
  const started = performance.now();
  for (let i = 0; i < frame.length; i += chunk) buffer = p.read(buffer, frame.slice(i, i + chunk), receive);
  return { ms: performance.now() - started, received };
}

describe('a frame dripped byte by byte', () => {
  it('costs about what the same frame costs in 1 KiB chunks (linear), and still decodes', () => {
    const frame = frameOf(MAX_MESSAGE_BYTES);
    feed(frame, 1); // warm-up
    const dripped = feed(frame, 1);
    const chunked = feed(frame, 1024);
    console.log(`ipc-parser-drip: ${frame.length} bytes one per chunk ${dripped.ms.toFixed(1)} ms; in 1 KiB chunks ${chunked.ms.toFixed(2)} ms`);
    expect(dripped.received).toHaveLength(1);
    expect(isRejectedFrame((dripped.received[0] as { data: unknown }).data)).toBe(false);
    // 65 536 chunks: linear work is a few µs each; re-scanning the partial frame made it ~2 GB of scanning.
    expect(dripped.ms).toBeLessThan(400);
  });

  it('an oversized frame dripped byte by byte is still rejected at the cap', () => {
    const { received } = feed(frameOf(MAX_MESSAGE_BYTES + 100), 1);
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(isRejectedFrame((received[0] as { data: unknown }).data)).toBe(true);
  });
});
