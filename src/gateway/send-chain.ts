// Per-sender order as a checked link, not a timed fence (docs/PROTOCOL.md, "Order after a
// refusal"). Each send a connection routes names its predecessor: the newest earlier send of the
// same connection to the same recipient that is not answered for good yet ("" when there is
// none). The recipient's owner numbers a send only once it has taken that predecessor
// (router/owner.ts, prevTaken); otherwise it refuses it with SERVER_BUSY and the client's order
// lanes retry in order. The fences (refusal-fence.ts, cluster/route-order.ts) keep most
// overtakers off the wire, but they lapse after a time: under a starved reader, a send lost
// between nodes or an owner dropped at a NATS restart, a later send could still be numbered first.
// The link holds for as long as the predecessor is unanswered, whatever the timing.
//
//   state of a send  event                                    next
//   (unknown)        read from the socket                      open     (linked to the newest open send to its recipient)
//   open             refused for now, client sends ORDERED     open     (its retry keeps its link)
//   open             acked, refused for good (or for now       answered (sends linked to it lose their link when resent)
//                    without ORDERED)
//   answered         read again (the client had not seen the   answered (unlinked, and never the newest: it is
//                    answer yet when it resent it)                       answered "duplicate", it stands for nothing new)
//   answered         SETTLED_KEEP_MS later                     (unknown)
//
// Why answered sends are kept a while: a resend of one, taken as a new send, became the
// recipient's newest and linked the next send to itself. Being a duplicate, it counted as taken,
// and the next send passed a predecessor that was still refused (full-size nats-restart chaos:
// eos1-1381 numbered ahead of eos1-1363 and -1372, which the owner had just refused).
//
// Pure and per connection: one Map from id to its entry, one from recipient to its newest id.
// Made on a connection's first send, dropped once every entry has been swept.

/** Most sends one connection keeps; past it the oldest is forgotten (a client this far behind on
 * its answers is broken or hostile; its later sends simply lose the link). */
export const CHAIN_MAX = 20_000;

/** How long an answered send is remembered: longer than a client's resend written before it read the answer takes to be read. */
export const SETTLED_KEEP_MS = 10_000;

interface Entry {
  readonly to: string;
  /** Its predecessor when first read ("" none). */
  readonly prev: string;
  /** When it was answered for good (0: open). */
  settledAt: number;
}

export class SendChain {
  private readonly entries = new Map<string, Entry>();
  private readonly newest = new Map<string, string>();
  private openCount = 0;

  /** Sends read and not answered for good. */
  get open(): number {
    return this.openCount;
  }

  /** Sends remembered, open or answered (0: the chain can be dropped). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The predecessor to route send `id` to `to` with ("" none). A new id is linked to the newest
   * open send to `to`; a retry keeps its first link while that send is open, and goes unlinked
   * once it is answered (it was taken: nothing earlier is left to wait for).
   */
  link(to: string, id: string): string {
    const known = this.entries.get(id);
    if (known) return known.settledAt === 0 ? this.prevOf(id) : "";
    const last = this.newest.get(to);
    const prev = last !== undefined && this.isOpen(last) ? last : "";
    if (this.entries.size >= CHAIN_MAX) this.forget(this.entries.keys().next().value!);
    this.entries.set(id, { to, prev, settledAt: 0 });
    this.openCount++;
    this.newest.set(to, id);
    return prev;
  }

  /** The predecessor an open send `id` waits for now ("" none, or `id` is not open). */
  prevOf(id: string): string {
    const e = this.entries.get(id);
    if (!e || e.settledAt !== 0 || e.prev === "") return "";
    return this.isOpen(e.prev) ? e.prev : "";
  }

  /** `id` was answered for good (acked, or refused with a final code) at `now` (ms). */
  settled(id: string, now: number): void {
    const e = this.entries.get(id);
    if (!e || e.settledAt !== 0) return;
    e.settledAt = now || 1;
    this.openCount--;
    if (this.newest.get(e.to) === id) this.newest.delete(e.to);
  }

  /** Forgets sends answered before `now - SETTLED_KEEP_MS` (housekeeping, once a second). */
  sweep(now: number): void {
    const cutoff = now - SETTLED_KEEP_MS;
    for (const [id, e] of this.entries) if (e.settledAt !== 0 && e.settledAt < cutoff) this.entries.delete(id);
  }

  private isOpen(id: string): boolean {
    const e = this.entries.get(id);
    return e !== undefined && e.settledAt === 0;
  }

  private forget(id: string): void {
    const e = this.entries.get(id)!;
    this.entries.delete(id);
    if (e.settledAt === 0) this.openCount--;
    if (this.newest.get(e.to) === id) this.newest.delete(e.to);
  }
}
