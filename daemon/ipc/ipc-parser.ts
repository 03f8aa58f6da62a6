/**
 * node-ipc's Assured parser (frame size cap, incomplete-frame timeout, envelope checks, event allow-list)
 * with one change: a frame it rejects becomes a marked message instead of an immediate disconnect, so the
 * server can answer with an error before it closes that connection.
 */
import { AssuredParser, GuardedParser, IPCProtocolError } from 'node-ipc';
import { ENVELOPE_REQUEST, FRAME_DELIMITER } from '../../proto/index.js';

/** Set on the `data` of a synthetic message standing for a rejected frame; JSON cannot produce it. */
export const REJECTED_FRAME = Symbol('rejectedFrame');

export interface RejectedFrame {
  readonly [REJECTED_FRAME]: string;
}

export function isRejectedFrame(data: unknown): data is RejectedFrame {
  return typeof data === 'object' && data !== null && REJECTED_FRAME in data;
}

const NOT_ALLOWED = new IPCProtocolError('ERR_IPC_EVENT_NOT_ALLOWED', 'inbound event type is not "request"');

function rejected(reason: string) {
  return { type: ENVELOPE_REQUEST, data: { [REJECTED_FRAME]: reason } };
}

type Receive = (message: unknown) => void;

function explain(error: unknown): string {
  if (error instanceof IPCProtocolError) {
    switch ((error as { code?: string }).code) {
      case 'ERR_IPC_INVALID_JSON':
        return 'the frame is not valid JSON';
      case 'ERR_IPC_FRAME_TOO_LARGE':
        return 'the frame exceeds the maximum message size';
      case 'ERR_IPC_EVENT_NOT_ALLOWED':
        return 'unknown envelope type (clients send "request")';
      default:
        return `the frame is not a valid envelope (${error.message})`;
    }
  }
  throw error;
}

/**
 * UTF-8 size of each connection's partial frame, keyed by the connection's dispatch function (node-ipc passes
 * each socket's own `ipcDispatch` as `receive`); trusted only while that connection's buffer is non-empty.
 */
const partialBytes = new WeakMap<Receive, number>();

/**
 * A client that ends its frames with a newline (JSON lines) instead of \f would otherwise get no answer
 * until the incomplete-frame timeout. When a chunk ends the partial frame with a newline, the last line is
 * parsed as JSON: a whole envelope (`type` and `data`) there means the wrong delimiter. Only the last line is parsed, and only
 * when it ends in `}`, so the work stays linear in the bytes received (each expensive parse needs a new line).
 */
function endsAsJsonLine(partial: string): boolean {
  const end = partial.endsWith('}\r\n') ? partial.length - 2 : partial.endsWith('}\n') ? partial.length - 1 : -1;
  if (end === -1) return false;
  const body = partial.slice(0, end);
  try {
    const parsed: unknown = JSON.parse(body.slice(body.lastIndexOf('\n') + 1));
    return typeof parsed === 'object' && parsed !== null && typeof (parsed as { type?: unknown }).type === 'string' && 'data' in parsed;
  } catch {
    return false;
  }
}

/** Wraps a node-ipc parser class so that rejected frames reach the server as marked messages. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function tolerant<T extends new (...args: any[]) => GuardedParser>(Base: T) {
  return class extends Base {
    override decodeMessage(frame: string): unknown {
      let message: unknown;
      try {
        message = super.decodeMessage(frame);
      } catch (error) {
        return rejected(explain(error));
      }
      // The allow-list also covers what the daemon sends; inbound, only requests are accepted.
      if ((message as { type: string }).type !== ENVELOPE_REQUEST) return rejected(explain(NOT_ALLOWED));
      return message;
    }

    /**
     * node-ipc's read scans and measures the whole buffered partial frame again for every chunk: a frame
     * dripped a byte at a time cost work quadratic in its size. `buffer` is what the previous read left,
     * which holds no delimiter (a single character), so a chunk without one only extends the partial frame:
     * it is appended, and its size is counted from the new bytes alone. Only a chunk that completes a frame
     * goes through node-ipc's read, which then scans that frame once.
     */
    override read(buffer: string, data: string, receive: Receive): string {
      try {
        if (data.indexOf(FRAME_DELIMITER) === -1) {
          const previous = buffer === '' ? 0 : (partialBytes.get(receive) ?? Buffer.byteLength(buffer));
          const bytes = previous + Buffer.byteLength(data);
          if (bytes > this.maxMessageSize) throw new IPCProtocolError('ERR_IPC_FRAME_TOO_LARGE', 'message exceeds maxMessageSize');
          partialBytes.set(receive, bytes);
          const partial = buffer + data;
          if (data.endsWith('\n') && endsAsJsonLine(partial)) {
            partialBytes.delete(receive);
            receive(rejected('frames end with \\f (U+000C, form feed), not with a newline: see "Framing" in proto/README.md'));
            return '';
          }
          return partial;
        }
        partialBytes.delete(receive);
        return super.read(buffer, data, receive);
      } catch (error) {
        // Oversized: drop what is buffered; the server answers and closes the connection.
        partialBytes.delete(receive);
        receive(rejected(explain(error)));
        return '';
      }
    }
  };
}

/** Unix: Assured (allow-list + socket-root checks). Windows: Guarded (node-ipc cannot prove a pipe ACL). */
export const BrokerParser = process.platform === 'win32' ? tolerant(GuardedParser) : tolerant(AssuredParser);
