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
//   (unknown)        read from the socket                      in flight  (linked to the newest open send to its recipient)
//   in flight        refused for now, client sends ORDERED     held       (open; its retry keeps its link)
//   in flight/held   acked, refused for good (or for now       answered   (sends linked to it lose their link when resent)
//                    without ORDERED)
//   answered         read again (the client had not seen the   answered   (unlinked, and never the newest: it is answered
//                    answer yet when it resent it)                         "duplicate", it stands for nothing new)
//   answered         SETTLED_KEEP_MS later                     (unknown)
//
// "Open" is in flight or held. The sends in flight are the session's own map of unanswered routes
// (Session.unsettled, each route carrying its link as `p`), passed in: the chain adds no entry per
// send on the hot path, only its recipient's newest id.
//
// Why answered sends are kept a while: a resend of one, taken as a new send, became the
// recipient's newest and linked the next send to itself. Being a duplicate, it counted as taken,
// and the next send passed a predecessor that was still refused (full-size nats-restart chaos:
// eos1-1381 numbered ahead of eos1-1363 and -1372, which the owner had just refused). Only a send
// the client may still resend is kept: one refused before, or one answered SLOW_ANSWER_MS or more
// after it was read (the client resends after a refusal, or after silence). Keeping every answered
// send for seconds cost a fifth more server CPU per message at saturation.

/** How long an answered send is remembered: longer than a client's resend written before it read the answer takes to be read. */
export const SETTLED_KEEP_MS = 10_000;

/** An answer this long after a send was read may cross a resend the client wrote meanwhile (silence). */
export const SLOW_ANSWER_MS = 500;

/** A send in flight as the session keeps it (a RouteMsg). */
export interface InFlight {
  readonly to: string;
  /** Its link ("" or absent: none). */
  readonly p?: string;
}

type Flying = ReadonlyMap<string, InFlight> | null;

interface Held {
  readonly to: string;
  readonly prev: string;
}

export class SendChain {
  /** Per recipient, the id of the newest send read to it (maybe answered since: checked on use). */
  private readonly newest = new Map<string, string>();
  /** Refused for now under ORDERED: open until answered for good. */
  private readonly held = new Map<string, Held>();
  /** Answered sends the client may still resend, with when (ms). */
  private readonly answered = new Map<string, number>();

  /** Entries of any kind (0: the chain can be dropped). */
  get size(): number {
    return this.newest.size + this.held.size + this.answered.size;
  }

  /**
   * The predecessor to route send `id` to `to` with ("" none). A new id is linked to the newest
   * open send to `to`; a retry keeps its first link while that send is open, and goes unlinked
   * once it is answered (it was taken: nothing earlier is left to wait for).
   */
  link(to: string, id: string, flying: Flying): string {
    let prev: string;
    const f = flying?.get(id);
    // held and answered are empty unless sends were refused or answered slowly: skip their lookups.
    const h = f || this.held.size === 0 ? undefined : this.held.get(id);
    if (f) prev = this.openOr(f.p ?? "", flying);
    else if (h) prev = this.openOr(h.prev, flying);
    else if (this.answered.size > 0 && this.answered.has(id)) prev = "";
    else {
      const last = this.newest.get(to);
      prev = last !== undefined ? this.openOr(last, flying) : "";
      this.newest.set(to, id);
    }
    return prev;
  }

  /** The predecessor an open send `id` waits for now ("" none, or `id` is not open). */
  prevOf(id: string, flying: Flying): string {
    const h = this.held.get(id);
    if (h) return this.openOr(h.prev, flying);
    const f = flying?.get(id);
    return f ? this.openOr(f.p ?? "", flying) : "";
  }

  /** `id` was refused for now and the client retries it (ORDERED): it stays open, with `link` (its recipient and link). */
  refusedForNow(id: string, link: InFlight): void {
    if (!this.held.has(id)) this.held.set(id, { to: link.to, prev: link.p ?? "" });
  }

  /**
   * `id` was answered for good at `now` (ms). `resendable`: the client may still resend it (it
   * was refused, or answered slowly): remembered for SETTLED_KEEP_MS.
   */
  settled(id: string, resendable: boolean, now: number): void {
    if (!(this.held.size > 0 && this.held.delete(id)) && !resendable) return;
    this.answered.delete(id); // re-inserted at the end: the map stays in answer-time order
    this.answered.set(id, now);
  }

  /**
   * Forgets sends answered before `now - SETTLED_KEEP_MS`, and newest ids no longer open
   * (housekeeping). `answered` is in answer-time order, so the walk stops at the first one kept:
   * under load a connection holds thousands of slow answers, and walking them all every second
   * was a stall of its own.
   */
  sweep(now: number, flying: Flying): void {
    const cutoff = now - SETTLED_KEEP_MS;
    for (const [id, at] of this.answered) {
      if (at >= cutoff) break;
      this.answered.delete(id);
    }
    for (const [to, id] of this.newest) if (this.openOr(id, flying) === "") this.newest.delete(to);
  }

  /** `id` if it is open (in flight or held), else "". */
  private openOr(id: string, flying: Flying): string {
    return id !== "" && (flying?.has(id) || (this.held.size > 0 && this.held.has(id))) ? id : "";
  }
}
