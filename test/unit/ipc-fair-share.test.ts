/**
 * FairShare: one connection's flood of requests is handled a share per event-loop turn, round-robin with the
 * other backlogs, and never ahead of a connection that sends a single request.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FairShare } from '../../daemon/ipc/fair-share.js';

function world(perConnection = 4, perTurn = 6) {
  const ran: string[] = [];
  const notReady = new Set<string>();
  const backlogged: Array<[string, boolean]> = [];
  const fair = new FairShare<string, string>({
    perConnection,
    perTurn,
    run: (owner, item) => ran.push(`${owner}:${item}`),
    ready: (owner) => !notReady.has(owner),
    backlogChanged: (owner, on) => backlogged.push([owner, on]),
  });
  return { fair, ran, notReady, backlogged };
}

describe('FairShare', () => {
  it('a flood runs its share now and the rest in later turns, in order, while another connection is served at once', async () => {
    const { fair, ran, backlogged } = world(4, 6);
    for (let i = 0; i < 20; i++) fair.submit('flood', String(i));
    fair.submit('app', 'token.get');
    expect(ran).toEqual(['flood:0', 'flood:1', 'flood:2', 'flood:3', 'app:token.get']);
    expect(backlogged).toEqual([['flood', true]]);
    expect(fair.backlogSize('flood')).toBe(16);

    await nextTurn(); // one turn: at most perConnection of the backlog
    expect(ran.slice(5)).toEqual(['flood:4', 'flood:5', 'flood:6', 'flood:7']);
    fair.submit('app', 'again'); // between turns an app is still served at once
    expect(ran.at(-1)).toBe('app:again');

    for (let i = 0; i < 10 && fair.backlogSize('flood') > 0; i++) await nextTurn();
    expect(ran.filter((entry) => entry.startsWith('flood:'))).toEqual(Array.from({ length: 20 }, (_, i) => `flood:${i}`));
    expect(backlogged).toEqual([
      ['flood', true],
      ['flood', false],
    ]);
  });

  it('backlogs are served round-robin within the per-turn budget', async () => {
    const { fair, ran } = world(2, 3);
    for (const owner of ['a', 'b', 'c']) for (let i = 0; i < 5; i++) fair.submit(owner, String(i));
    ran.length = 0;
    await nextTurn();
    // Budget 3 in turn one: a takes 2, b takes 1; the next turn starts with c (a and b moved to the end).
    expect(ran).toEqual(['a:2', 'a:3', 'b:2']);
    ran.length = 0;
    await nextTurn();
    expect(ran).toEqual(['c:2', 'c:3', 'a:4']);
  });

  it('a connection that is not ready (its answers unread) keeps its backlog until woken', async () => {
    const { fair, ran, notReady } = world(1, 10);
    fair.submit('slow', '0');
    fair.submit('slow', '1');
    notReady.add('slow');
    await nextTurn();
    await nextTurn();
    expect(ran).toEqual(['slow:0']);
    notReady.delete('slow');
    fair.wake('slow');
    await nextTurn();
    expect(ran).toEqual(['slow:0', 'slow:1']);
  });

  it('a forgotten connection’s backlog is dropped', async () => {
    const { fair, ran } = world(1, 10);
    fair.submit('gone', '0');
    fair.submit('gone', '1');
    fair.forget('gone');
    await nextTurn();
    expect(ran).toEqual(['gone:0']);
    expect(fair.backlogSize('gone')).toBe(0);
  });
});
