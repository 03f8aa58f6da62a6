/**
 * A TCP port on 127.0.0.1 that refuses connections: bound by us, then closed. Safer than assuming a
 * well-known port (1, 9) is closed on the test machine; the kernel does not hand a just-freed
 * ephemeral port out again at once.
 */
import net from 'node:net';

export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
