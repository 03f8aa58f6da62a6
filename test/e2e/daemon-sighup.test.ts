/**
 * SIGHUP (`kill -HUP` meant as "reload", or a closed terminal) must not end the daemon: its default action
 * would kill it with exit 129 and leave the socket behind. The daemon reloads its config (see
 * config-reload.test.ts) and keeps serving, on the same socket, in the same process.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../client/index.js';
import { startDaemon, waitFor, type DaemonProcess } from '../support/daemon.js';

let daemon: DaemonProcess | undefined;
afterEach(async () => {
  await daemon?.stop('SIGKILL');
  daemon = undefined;
});

describe('SIGHUP', () => {
  it('reloads the config: the same daemon still answers on the same socket; SIGTERM still stops it cleanly', async () => {
    daemon = await startDaemon({ config: { profiles: {} } });
    const client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const before = await client.status();

    // One at a time: signals sent back to back may merge into one.
    for (let i = 1; i <= 3; i++) {
      daemon.child.kill('SIGHUP');
      await waitFor(
        () => daemon!.logs().filter((l) => l['signal'] === 'SIGHUP').length === i,
        10_000,
        () => `no SIGHUP log line:\n${daemon!.output()}`,
      );
    }

    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.child.signalCode).toBeNull();
    expect(fs.statSync(daemon.socketPath).isSocket()).toBe(true);
    const after = await client.status();
    expect(after.pid).toBe(before.pid);
    expect(after.pid).toBe(daemon.child.pid);
    const line = daemon.logs().find((l) => l['signal'] === 'SIGHUP')!;
    expect(String(line['msg'])).toMatch(/reloading the config/);
    expect(daemon.logs().filter((l) => l['trigger'] === 'SIGHUP' && l['msg'] === 'config reloaded')).toHaveLength(3);
    await client.close();

    // A new connection works too, and the usual shutdown still removes the socket.
    const again = await connect({ socketPath: daemon.socketPath, reconnect: false });
    expect((await again.status()).pid).toBe(before.pid);
    await again.close();
    expect(await daemon.stop('SIGTERM')).toBe(0);
    expect(fs.existsSync(daemon.socketPath)).toBe(false);
  });
});
