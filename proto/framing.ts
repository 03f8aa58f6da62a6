/**
 * The framing node-ipc's event parser uses: each frame is `JSON.stringify({ type, data })` followed by
 * a form feed (`\f`). JSON escapes control characters inside strings, so `\f` never occurs within a frame.
 */
import { FRAME_DELIMITER, MAX_MESSAGE_BYTES } from './version.js';

export interface Envelope {
  readonly type: string;
  readonly data: unknown;
}

export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/** True when `text` takes more than `maxBytes` bytes as UTF-8. */
function exceeds(text: string, maxBytes: number): boolean {
  // A UTF-16 code unit is 1 to 3 UTF-8 bytes: most frames are decided without counting.
  if (text.length * 3 <= maxBytes) return false;
  if (text.length > maxBytes) return true;
  return utf8Length(text) > maxBytes;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4; // a surrogate pair is one 4-byte code point
      i++;
    } else bytes += 3;
  }
  return bytes;
}

export function encodeFrame(type: string, data: unknown, maxBytes = MAX_MESSAGE_BYTES): string {
  const json = JSON.stringify({ type, data });
  if (exceeds(json, maxBytes)) throw new FramingError(`frame of type ${type} exceeds ${maxBytes} bytes`);
  return json + FRAME_DELIMITER;
}

/** Splits a stream of text chunks into envelopes. Throws FramingError on an oversized or invalid frame. */
export class FrameDecoder {
  private buffer = '';

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  /** True while part of a frame is buffered. */
  get pending(): boolean {
    return this.buffer.length > 0;
  }

  push(chunk: string): Envelope[] {
    const text = this.buffer === '' ? chunk : this.buffer + chunk;
    const out: Envelope[] = [];
    let start = 0;
    let end = text.indexOf(FRAME_DELIMITER);
    while (end !== -1) {
      out.push(this.decode(text.slice(start, end)));
      start = end + FRAME_DELIMITER.length;
      end = text.indexOf(FRAME_DELIMITER, start);
    }
    this.buffer = start === 0 ? text : text.slice(start);
    if (exceeds(this.buffer, this.maxBytes)) throw new FramingError(`frame exceeds ${this.maxBytes} bytes`);
    return out;
  }

  private decode(frame: string): Envelope {
    if (exceeds(frame, this.maxBytes)) throw new FramingError(`frame exceeds ${this.maxBytes} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(frame);
    } catch {
      throw new FramingError('frame is not valid JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new FramingError('frame is not a JSON object');
    }
    const { type, data } = value as { type?: unknown; data?: unknown };
    if (typeof type !== 'string' || type === '') throw new FramingError('frame has no type');
    return { type, data };
  }
}
