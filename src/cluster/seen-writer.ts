// Last-seen times of a cluster writer (presence only, never answered), written outside its ordered
// reply chain: a put retried while the iris_seen KV stream has no leader must not hold back the
// shard's replies (R3, one NATS server killed: over 10 s). Per user only the newest time is
// written, and at most SEEN_IN_FLIGHT puts run at once.

/**
 * Most last-seen puts in flight per writer. A mass logout (a load balancer or a load generator
 * dropping all 20,000 sockets of a node) started one KV put per user at once on the shard's NATS
 * connection; the node's own heartbeat put, on the same connection, then waited behind all of
 * them (nats-server handles one connection's publishes in order), and 8 of 10 nodes of the scale
 * run fenced themselves for about 1 s right then.
 */
export const SEEN_IN_FLIGHT = 32;

export interface SeenStore {
  set(user: string, ts: number): Promise<void>;
}

export class SeenWriter {
  /** Newest time not yet stored, per user (being written, or waiting for a slot). */
  private readonly pending = new Map<string, number>();
  /** Users waiting for a slot, oldest first. */
  private readonly queue = new Set<string>();
  private readonly writing = new Set<string>();
  private idle: (() => void)[] = [];

  constructor(
    private readonly store: SeenStore,
    /** Runs a write until it succeeds; rejects only once the writer is stopped. */
    private readonly retry: (write: () => Promise<void>) => Promise<void>,
    private readonly inFlight = SEEN_IN_FLIGHT,
  ) {}

  /** Times not stored yet (written or waiting). */
  get size(): number {
    return this.pending.size;
  }

  put(user: string, ts: number): void {
    this.pending.set(user, Math.max(ts, this.pending.get(user) ?? 0));
    if (!this.writing.has(user)) this.queue.add(user);
    this.pump();
  }

  /** Resolves once every time given so far is stored (or dropped on stop), or after `ms`. */
  settle(ms: number): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return Promise.race([new Promise<void>((r) => this.idle.push(r)), Bun.sleep(ms)]);
  }

  private pump(): void {
    for (const user of this.queue) {
      if (this.writing.size >= this.inFlight) return;
      this.queue.delete(user);
      this.writing.add(user);
      void this.retry(() => this.write(user))
        .catch(() => void this.pending.delete(user)) // stopped: nothing more is written
        .finally(() => this.done(user));
    }
  }

  /** Writes the user's newest time until no newer one came in meanwhile. */
  private async write(user: string): Promise<void> {
    for (;;) {
      const t = this.pending.get(user)!;
      await this.store.set(user, t);
      if (this.pending.get(user) !== t) continue;
      this.pending.delete(user);
      return;
    }
  }

  private done(user: string): void {
    this.writing.delete(user);
    // A time that came after the write's last check (it found the user being written) waits here.
    if (this.pending.has(user)) this.queue.add(user);
    this.pump();
    if (this.pending.size > 0) return;
    for (const r of this.idle.splice(0)) r();
  }
}
