/**
 * One connection's flood does not hold the daemon for everyone else: a connection that writes thousands of
 * requests at once gets a share of each event-loop turn (REQUESTS_PER_CONNECTION_PER_TURN), and a bystander's
 * request is answered after a few turns, not after the whole flood. Checked by order, not by time: how many
 * flood answers arrive before the bystander's. Without the share, the daemon works off every request of the
 * flood's first read (about a thousand) before it even reads the bystander's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonProcess } from '../support/daemon.js';
import { rawConnect, type RawClient } from '../support/raw-client.js';

const FLOOD = 3_000;

let daemon: DaemonProcess;

beforeAll(async () => {
  daemon = await startDaemon({ logLevel: 'info' });
});
afterAll(async () => {
  await daemon?.stop('SIGKILL');
});

/** Counts the answers a raw connection receives, without keeping them. */
function countAnswers(client: RawClient): { readonly count: number; firstAnswer: Promise<void> } {
  const state = { count: 0, firstAnswer: undefined as unknown as Promise<void> };
  let first: () => void;
  state.firstAnswer = new Promise<void>((resolve) => (first = resolve));
  client.socket.on('data', (chunk: string) => {
    for (let i = chunk.indexOf('\f'); i !== -1; i = chunk.indexOf('\f', i + 1)) state.count++;
    if (state.count > 0) first();
  });
  return state;
}

describe('fair share of the event loop', () => {
  it('a bystander is answered after a few flood answers, not after the flood’s whole read', async () => {
    const flood = await rawConnect(daemon.socketPath);
    const bystander = await rawConnect(daemon.socketPath);
    const answers = countAnswers(flood);
    let requests = '';
    for (let id = 1; id <= FLOOD; id++) requests += JSON.stringify({ type: 'request', data: { id, method: 'status', params: {} } }) + '\f';
    flood.write(requests);
    await answers.firstAnswer; // the daemon is working on the flood now

    bystander.request('b', 'status', {});
    const answer = await bystander.next(30_000);
    const floodAnswersBefore = answers.count;
    expect(answer.data).toMatchObject({ id: 'b', result: { pid: daemon.child.pid } });

    const deadline = Date.now() + 60_000;
    while (answers.count < FLOOD && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    console.log(`ipc-fair-share: ${floodAnswersBefore} of ${FLOOD} flood answers arrived before the bystander's`);
    expect(answers.count).toBe(FLOOD); // the flood itself is served in full, in its turns
    // With the share: ~32 per turn plus what was in flight on the wire. Without: ≥ ~1000 (one 64 KiB read).
    expect(floodAnswersBefore).toBeLessThan(500);
    flood.close();
    bystander.close();
  });
});
