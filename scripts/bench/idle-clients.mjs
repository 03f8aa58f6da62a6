#!/usr/bin/env node
/**
 * Holds N idle client connections to the daemon (client library, hello done, nothing asked), printing
 * "ready <n>" once all are connected, until SIGTERM. For the scale benchmark.
 *
 *   node idle-clients.mjs <distClientUrl> <socketPath> <n>
 */
const [distClient, socketPath, countText] = process.argv.slice(2);
const { connect } = await import(distClient);
const count = Number(countText);
const clients = [];
// In batches, so the daemon's accept queue is not flooded all at once.
for (let i = 0; i < count; i += 50) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(50, count - i) }, () => connect({ socketPath, reconnect: false, clientName: 'idle', connectTimeoutMs: 20_000 })),
  );
  clients.push(...batch);
}
process.stdout.write(`ready ${clients.length}\n`);
const stop = async () => {
  await Promise.all(clients.map((c) => c.close()));
  process.exit(0);
};
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30); // stay alive
