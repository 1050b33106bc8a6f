// Loss detection on the cross-node port (pure). Core NATS is at-most-once: a batch in flight on a
// NATS server that dies, or published while the receiver's subscription is not yet back on the
// new server, is gone without a trace. Worker ports never lose a message, and the owner protocol
// relies on that: a lost delivery followed by a delivered later seq gets acked cumulatively, so the
// lost one is settled as delivered (found: one message lost per NATS server kill, now and then).
// Every batch therefore carries its publisher's epoch (random per port) and a count per
// destination; a receiver that sees a count jump knows that batches from that source were lost
// and the two shards resynchronise (the host closes or re-attaches what that source served).

/** What a batch says about its publisher. `src` is the publisher's global shard address. */
export interface Stamp {
  src: number;
  epoch: number;
  n: number;
}

/** Epochs remembered per receiver; beyond this the oldest are forgotten (restarted publishers). */
const MAX_EPOCHS = 4096;

export type SeqVerdict = "ok" | "gap";

/** Receiver side: the last count seen per publisher epoch. */
export class PortSeqs {
  private readonly last = new Map<number, number>();

  /**
   * A data batch must be the next count; a sync (no items, sent every second) repeats the last
   * one, so that a lost last batch is noticed even when nothing follows it. An epoch seen for the
   * first time must start at its first batch (data 1, or a sync of 0): the publisher's earlier
   * batches to us may have been lost. Before, a new epoch started wherever it was first seen, and
   * the split-brain loss came through that: a node cut off just after its recipient attached to an
   * owner on another node, which had never sent it a batch, lost every delivery of the cut; the
   * first batch after the heal was its first from that owner, so no gap, and the next delivery's
   * cumulative ack deleted the lost rows (docs/CLUSTER.md, branch cl-ops). A receiver that
   * restarted resynchronises too (its sessions are new; a reconnect, not a loss).
   */
  check(s: Stamp, sync: boolean): SeqVerdict {
    const prev = this.last.get(s.epoch);
    if (prev === undefined) {
      if (this.last.size >= MAX_EPOCHS) this.last.delete(this.last.keys().next().value!);
      this.last.set(s.epoch, s.n);
      return s.n > (sync ? 0 : 1) ? "gap" : "ok";
    }
    const expected = sync ? prev : prev + 1;
    if (s.n > prev) this.last.set(s.epoch, s.n);
    return s.n > expected ? "gap" : "ok";
  }
}

/** Publisher side: a random epoch and the count of batches sent per destination subject. */
export class PortCounts {
  readonly epoch = (Math.random() * 0x1_0000_0000) >>> 0;
  private readonly n = new Map<string, number>();

  /** The stamp of the next data batch to `subject` (call only when it is really published). */
  next(src: number, subject: string): Stamp {
    const n = (this.n.get(subject) ?? 0) + 1;
    this.n.set(subject, n);
    return { src, epoch: this.epoch, n };
  }

  /** Stamps of a sync for every destination used so far (the last count, repeated). */
  syncs(src: number): [subject: string, stamp: Stamp][] {
    return [...this.n].map(([subject, n]) => [subject, { src, epoch: this.epoch, n }]);
  }
}
