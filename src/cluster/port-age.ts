// Stale batches on the cross-node port (pure). A node cut off from NATS keeps publishing until it
// notices (up to downAfter/2): those bytes sit in its kernel's send queue. When the client gives
// the connection up it closes the socket, but the kernel keeps retransmitting the orphaned queue,
// and the NATS server, which has not noticed the dead connection yet, takes it when the link
// heals: seconds later. Found in split-brain chaos: an attach from before the cut reached the
// owner 5 s late, after the user had logged in again on another node, and evicted that newer
// login ("replaced"): the client stopped for good.
//
// Every batch carries its publisher's wall clock (node clocks are expected to agree to well within
// downAfter/2, as NTP keeps them; a larger offset is learned, see below). A batch whose transit took longer than
// `maxAgeMs` is dropped, exactly as if NATS had lost it; the loss rules apply (port-seq.ts: the
// next batch shows a gap). The cluster uses the lease, downAfter/2: a node whose heartbeat was not
// stored for that long stops acting by itself, so nothing it said that long ago may be acted on
// either (and a user shed by a cut node logs in elsewhere only downAfter after the cut is seen). Clocks need not agree: the age is measured against the smallest transit
// seen from that publisher recently (its clock offset plus the fastest transit), so only clock
// rates matter, and a clock step is forgotten after two windows.

/** Length of one window of the per-publisher baseline (the smallest transit seen). */
export const AGE_WINDOW_MS = 30_000;
/** Publishers remembered per receiver; beyond this the oldest are forgotten. */
const MAX_SOURCES = 4096;

interface Baseline {
  /** Smallest (received - sent) in the current and the previous window. */
  cur: number;
  prev: number;
  windowStart: number;
}

export class PortAges {
  private readonly base = new Map<number, Baseline>();

  constructor(private readonly maxAgeMs: number) {}

  /** True when a batch from `src`, sent at `sentAt` (its clock), arrived at `now` (ours) too late. */
  stale(src: number, sentAt: number, now: number): boolean {
    if (src < 0 || !Number.isFinite(this.maxAgeMs) || !Number.isFinite(sentAt)) return false;
    const transit = now - sentAt;
    let b = this.base.get(src);
    if (!b) {
      if (this.base.size >= MAX_SOURCES) this.base.delete(this.base.keys().next().value!);
      // The first batch may itself be stale (a node that was cut before it sent anything): it
      // sets the baseline only if its clock runs ahead of ours; a clock behind ours by more
      // than maxAgeMs is learned after two windows (meanwhile its batches count as lost).
      const first = Math.min(transit, 0);
      this.base.set(src, b = { cur: first, prev: first, windowStart: now });
    }
    if (now - b.windowStart >= AGE_WINDOW_MS) {
      b.prev = now - b.windowStart >= 2 * AGE_WINDOW_MS ? transit : b.cur;
      b.cur = transit;
      b.windowStart = now;
    }
    const late = transit - Math.min(b.cur, b.prev) > this.maxAgeMs;
    if (!late) b.cur = Math.min(b.cur, transit); // a stale batch must not become the baseline
    return late;
  }
}
