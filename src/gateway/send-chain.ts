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
//   (unknown)        read from the socket                      open   (linked to the newest open send to its recipient)
//   open             refused with a retryable code             open   (its retry keeps its link)
//   open             acked, or refused for good                gone   (sends linked to it lose their link when resent)
//
// Pure and per connection: one Map from id to (recipient, predecessor), one from recipient to its
// newest id. Made on a connection's first send, dropped once nothing is open.

/** Most sends one connection keeps linked; past it the oldest is forgotten (a client this far
 * behind on its answers is broken or hostile; its later sends simply lose the link). */
export const CHAIN_MAX_OPEN = 20_000;

interface OpenSend {
  readonly to: string;
  /** Its predecessor when first read ("" none). */
  readonly prev: string;
}

export class SendChain {
  private readonly open = new Map<string, OpenSend>();
  private readonly newest = new Map<string, string>();

  /** Sends read and not answered for good. */
  get size(): number {
    return this.open.size;
  }

  /**
   * The predecessor to route send `id` to `to` with ("" none). A new id is linked to the newest
   * open send to `to`; a retry keeps its first link while that send is open, and goes unlinked
   * once it is answered (it was taken: nothing earlier is left to wait for).
   */
  link(to: string, id: string): string {
    if (this.open.has(id)) return this.prevOf(id);
    const last = this.newest.get(to);
    const prev = last !== undefined && this.open.has(last) ? last : "";
    if (this.open.size >= CHAIN_MAX_OPEN) this.open.delete(this.open.keys().next().value!);
    this.open.set(id, { to, prev });
    this.newest.set(to, id);
    return prev;
  }

  /** The predecessor an open send `id` waits for now ("" none, or `id` is not open). */
  prevOf(id: string): string {
    const prev = this.open.get(id)?.prev ?? "";
    return prev !== "" && this.open.has(prev) ? prev : "";
  }

  /** `id` was answered for good (acked, or refused with a final code). */
  settled(id: string): void {
    const s = this.open.get(id);
    if (!s) return;
    this.open.delete(id);
    if (this.newest.get(s.to) === id) this.newest.delete(s.to);
    if (this.open.size === 0) this.newest.clear();
  }
}
