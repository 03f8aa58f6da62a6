/**
 * A fair share of the event loop between connections. One read from a socket can hold a thousand requests
 * (a client that writes them all at once and never reads the answers); handled in one go, they hold the
 * event loop for every other app. Here each connection gets at most `perConnection` requests handled per
 * event-loop turn; the rest wait in that connection's backlog, whose socket stays paused until the backlog
 * is empty, and backlogs are worked off round-robin, `perTurn` requests per turn at most, with the loop
 * free to read other sockets in between. An app that sends a request now and then never waits behind
 * another connection's flood: its request is handled as soon as it is read.
 */
export interface FairShareOptions<Owner, Item> {
  /** Requests one connection may have handled in one turn before the rest wait. */
  readonly perConnection: number;
  /** Backlogged requests handled in one turn at most, over all connections. */
  readonly perTurn: number;
  /** Handles one request. */
  readonly run: (owner: Owner, item: Item) => void;
  /** False while an owner may not be served (e.g. its answers are not being read); its backlog waits. */
  readonly ready: (owner: Owner) => boolean;
  /** Called when an owner's backlog starts (pause its reading) and when it empties (resume). */
  readonly backlogChanged: (owner: Owner, backlogged: boolean) => void;
}

export class FairShare<Owner, Item> {
  /** Requests handled in the current turn, per connection; cleared at the end of each turn. */
  private readonly handled = new Map<Owner, number>();
  /** Connections with a backlog, in round-robin order (served ones move to the end). */
  private readonly backlogs = new Map<Owner, Item[]>();
  private turnScheduled = false;

  constructor(private readonly options: FairShareOptions<Owner, Item>) {}

  /** Handles `item` now, or queues it behind the owner's backlog or beyond its share of this turn. */
  submit(owner: Owner, item: Item): void {
    const backlog = this.backlogs.get(owner);
    if (backlog) {
      backlog.push(item);
      return;
    }
    const handled = this.handled.get(owner) ?? 0;
    this.scheduleTurn();
    if (handled < this.options.perConnection) {
      this.handled.set(owner, handled + 1);
      this.options.run(owner, item);
      return;
    }
    this.backlogs.set(owner, [item]);
    this.options.backlogChanged(owner, true);
  }

  /** The owner is gone: its backlog is dropped (nobody could read the answers). */
  forget(owner: Owner): void {
    this.handled.delete(owner);
    this.backlogs.delete(owner);
  }

  /** An owner that was not ready may be again: make sure a turn comes to serve its backlog. */
  wake(owner: Owner): void {
    if (this.backlogs.has(owner)) this.scheduleTurn();
  }

  backlogSize(owner: Owner): number {
    return this.backlogs.get(owner)?.length ?? 0;
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    // setImmediate runs after the poll phase, so sockets ready in the meantime are read first.
    setImmediate(this.endTurn);
  }

  private readonly endTurn = (): void => {
    this.turnScheduled = false;
    this.handled.clear();
    let budget = this.options.perTurn;
    const rounds = [...this.backlogs.keys()];
    for (const owner of rounds) {
      if (budget <= 0) break;
      const backlog = this.backlogs.get(owner);
      if (!backlog || !this.options.ready(owner)) continue;
      const take = Math.min(this.options.perConnection, budget, backlog.length);
      this.backlogs.delete(owner); // re-inserted at the end (round-robin) if anything remains
      const items = backlog.splice(0, take);
      budget -= take;
      if (backlog.length > 0) this.backlogs.set(owner, backlog);
      for (const item of items) {
        // A request may close its own connection (a framing error): stop serving a forgotten owner.
        this.options.run(owner, item);
      }
      if (backlog.length === 0 && !this.backlogs.has(owner)) this.options.backlogChanged(owner, false);
    }
    if (this.backlogs.size > 0 && [...this.backlogs.keys()].some((owner) => this.options.ready(owner))) this.scheduleTurn();
  };
}
