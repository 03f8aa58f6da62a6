// A hostile local client, run as a child process: `connections` connections each send `hello`, then a
// `status` request padded to `frameBytes`: all but its last `dripBytes` in one write, the rest one byte per
// write, a write per connection per event-loop turn (so the daemon holds a partial frame near the cap and
// gets it a byte at a time: the worst case for a parser that re-scans the partial frame on every chunk). A
// frame the daemon answers (or a connection it closes) starts over; it prints one JSON line per second:
// {"bytes":…,"frames":…,"closed":…} (`bytes`: dripped bytes only).
//
// Usage: node hostile-drip.mjs <socketPath> connections=N frameBytes=N dripBytes=N
import net from 'node:net';

const [socketPath, ...settings] = process.argv.slice(2);
const options = { connections: 20, frameBytes: 60_000, dripBytes: 4096 };
for (const setting of settings) {
  const [key, value] = setting.split('=');
  if (!(key in options) || !Number.isFinite(Number(value))) throw new Error(`unknown setting ${setting}`);
  options[key] = Number(value);
}
const hello = JSON.stringify({ type: 'request', data: { id: 0, method: 'hello', params: { protocolVersion: 1, client: 'drip' } } }) + '\f';
const head = '{"type":"request","data":{"id":1,"method":"status","params":{"pad":"';
const tail = '"}}}\f';
const frame = head + 'x'.repeat(options.frameBytes - head.length - tail.length + 1) + tail;
const counters = { bytes: 0, frames: 0, closed: 0 };

function dripper() {
  const socket = net.createConnection({ path: socketPath });
  let offset = 0;
  let open = false;
  socket.on('error', () => {});
  socket.on('data', () => {}); // answers are read and dropped
  const start = () => {
    offset = frame.length - options.dripBytes;
    socket.write(frame.slice(0, offset));
  };
  socket.once('connect', () => {
    open = true;
    socket.write(hello);
    start();
  });
  socket.once('close', () => {
    open = false;
    counters.closed++;
    setTimeout(dripper, 100);
  });
  const step = () => {
    if (!open) {
      if (!socket.destroyed) setImmediate(step);
      return;
    }
    socket.write(frame[offset]);
    counters.bytes++;
    offset++;
    if (offset === frame.length) {
      counters.frames++;
      start();
    }
    setImmediate(step);
  };
  setImmediate(step);
}

for (let i = 0; i < options.connections; i++) dripper();
setInterval(() => process.stdout.write(JSON.stringify(counters) + '\n'), 1000);
