// Whether a gap in a node's batches (port-seq.ts) closes the users it owns here so that they
// resume cleanly (docs/CLUSTER.md, "A split-brain run", "The client's resume point").
//
// A gap from a node that was down in our view, or came back less than GAP_STEADY_MS ago, is left
// to the re-placement: its batches were lost because it was away, and its return moved its users
// and re-attached them (a second wave of closes on top of that lost messages in an early
// split-brain test). That excuse does not hold when we were cut off ourselves after it came back:
// then the batches were lost to our cut, after the re-placement, and a link of its owners whose
// deliveries were lost goes on; its next live delivery reaches the client above the lost seqs,
// whose rows (spilled to the store, acked "stored") the client's next ack deletes.

/** A node that came back must have been up in this shard's view this long before a gap from it is resynchronised. */
export const GAP_STEADY_MS = 10_000;

/**
 * Pure. `since`: when our view saw the publisher come back (-Infinity: up all along; Infinity or
 * undefined: down or unknown now). `cutAt`: the last time this shard saw itself cut off
 * (-Infinity: never).
 */
export function gapResyncs(since: number | undefined, now: number, cutAt: number): boolean {
  if (since === undefined || since === Infinity) return false;
  return now - since >= GAP_STEADY_MS || cutAt >= since;
}
