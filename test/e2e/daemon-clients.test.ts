import { afterEach, describe, expect, it } from 'vitest';
import { BrokerError, connect, type BrokerEvent } from '../../client/index.js';
import { startDaemon, waitFor, type DaemonProcess } from '../support/daemon.js';

let daemons: DaemonProcess[] = [];
afterEach(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
  daemons = [];
});

describe('many concurrent clients', () => {
  it('50 clients × 40 status calls each get correct, correlated answers', async () => {
    const daemon = await startDaemon({ logLevel: 'info' });
    daemons.push(daemon);
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => connect({ socketPath: daemon.socketPath, clientName: `app-${i}` })));
    const results = await Promise.all(
      clients.map(async (client) => {
        const answers = await Promise.all(Array.from({ length: 40 }, () => client.status()));
        return answers;
      }),
    );
    const all = results.flat();
    expect(all).toHaveLength(2000);
    for (const status of all) {
      expect(status.pid).toBe(daemon.child.pid);
      expect(status.socketPath).toBe(daemon.socketPath);
      expect(status.protocolVersion).toBe(1);
    }
    // Every client is counted while connected.
    expect(Math.max(...all.map((s) => s.connectedClients))).toBe(50);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('queues calls beyond the per-connection in-flight limit instead of failing them', async () => {
    const daemon = await startDaemon({ logLevel: 'info' });
    daemons.push(daemon);
    const client = await connect({ socketPath: daemon.socketPath });
    const answers = await Promise.all(Array.from({ length: 500 }, () => client.status()));
    expect(answers).toHaveLength(500);
    await client.close();
  });
});

describe('daemon restarts', () => {
  it('a client reconnects for its next call and its subscription comes back', async () => {
    const first = await startDaemon({ logLevel: 'info' });
    daemons.push(first);
    const client = await connect({ socketPath: first.socketPath });
    const events: BrokerEvent[] = [];
    await client.subscribe((event) => events.push(event));
    expect((await client.status()).pid).toBe(first.child.pid);

    await first.stop();
    await expect(client.status()).rejects.toMatchObject({ code: 'DAEMON_NOT_RUNNING' });

    const second = await startDaemon({ dir: first.dir, socketPath: first.socketPath, logLevel: 'debug' });
    daemons.push(second);
    // With a subscription, the client reconnects in the background and subscribes again, unasked.
    await waitFor(
      () => second.output().includes('"msg":"subscribed"'),
      10_000,
      () => second.output(),
    );
    expect((await client.status()).pid).toBe(second.child.pid);
    await client.close();
  });

  it('reports DAEMON_NOT_RUNNING with how to start it', async () => {
    const error = await connect({ socketPath: '/nonexistent/broker.sock' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerError);
    expect((error as BrokerError).code).toBe('DAEMON_NOT_RUNNING');
    expect((error as BrokerError).message).toMatch(/tokenbroker daemon/);
  });

  it('honours AbortSignal and per-call timeouts', async () => {
    const daemon = await startDaemon({ logLevel: 'info' });
    daemons.push(daemon);
    const client = await connect({ socketPath: daemon.socketPath });
    const controller = new AbortController();
    controller.abort();
    await expect(client.status({ signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    daemon.child.kill('SIGSTOP'); // a daemon that accepts nothing more
    try {
      await expect(client.status({ timeoutMs: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    } finally {
      daemon.child.kill('SIGCONT');
    }
    expect((await client.status()).pid).toBe(daemon.child.pid);
    await client.close();
  });
});
