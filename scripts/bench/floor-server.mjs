#!/usr/bin/env node
/**
 * The floor: the least a Node server can do to answer a token request over a Unix socket. node:net, the
 * same framing as tokenbroker (`JSON + "\f"`), JSON.parse of each request and JSON.stringify of an answer
 * with the same payload the daemon sends (passed in $FLOOR_RESULT). No validation, no security checks.
 *
 *   node floor-server.mjs <socketPath>     (prints "listening" when ready; SIGTERM stops it)
 */
import fs from 'node:fs';
import net from 'node:net';

const socketPath = process.argv[2];
const result = JSON.parse(process.env.FLOOR_RESULT ?? '{"accessToken":"x"}');
fs.rmSync(socketPath, { force: true });
const server = net.createServer((socket) => {
  socket.setEncoding('utf8');
  socket.setNoDelay(true);
  let buffer = '';
  socket.on('data', (chunk) => {
    buffer += chunk;
    let start = 0;
    let end;
    while ((end = buffer.indexOf('\f', start)) !== -1) {
      const request = JSON.parse(buffer.slice(start, end));
      start = end + 1;
      socket.write(JSON.stringify({ type: 'response', data: { id: request.data.id, result } }) + '\f');
    }
    buffer = buffer.slice(start);
  });
  socket.on('error', () => {});
});
server.listen(socketPath, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
