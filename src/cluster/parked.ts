// Routes that reached a shard which does not own their recipient under its current view. Views of
// the member list differ between nodes for up to a heartbeat (each notices a silent node on its
// own clock), so a sender's node may already route to the new owner while that owner still sees
// the old placement. Dropping such a route (the SDK resends it a second later) let a later message
// of the same sender, routed after the views agreed, overtake it. Parked instead, it runs as soon
// as this shard's view makes it the owner, before anything routed after the change.

import type { RouteMsg } from "../router/wire.ts";

/** How long a parked route waits for this shard's view to catch up (then its sender hears SERVER_BUSY). */
export const PARK_MS = 3000;
/** Most routes parked per shard: beyond, new ones are refused at once (SERVER_BUSY, retried by their SDKs). */
export const PARK_MAX = 10_000;

export class ParkedRoutes {
  private q: { m: RouteMsg; at: number }[] = [];
  dropped = 0;

  /**
   * `refuse` answers a route that is given up (expired or over the cap): a silent drop left a
   * sender without an SDK (or one that does not resend) with a send never answered at all.
   */
  constructor(private readonly refuse: (m: RouteMsg) => void = () => {}) {}

  get size(): number {
    return this.q.length;
  }

  add(m: RouteMsg, now: number): void {
    if (this.q.length >= PARK_MAX) return void (this.dropped++, this.refuse(m));
    this.q.push({ m, at: now });
  }

  /** The parked routes whose recipient is `owned` now, in arrival order; the rest stay parked. */
  take(owned: (user: string) => boolean, now: number): RouteMsg[] {
    this.expire(now);
    const out: RouteMsg[] = [];
    const keep: { m: RouteMsg; at: number }[] = [];
    for (const e of this.q) owned(e.m.to) ? out.push(e.m) : keep.push(e);
    this.q = keep;
    return out;
  }

  /** Drops routes parked longer than PARK_MS (arrival order: the oldest are first). */
  expire(now: number): void {
    let i = 0;
    while (i < this.q.length && now - this.q[i]!.at > PARK_MS) i++;
    if (i === 0) return;
    this.dropped += i;
    for (const e of this.q.splice(0, i)) this.refuse(e.m);
  }
}
