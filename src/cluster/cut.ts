// What a node does while it is cut off from the cluster (NATS link down, or its own heartbeat not
// stored recently). It cannot store anything durably and may no longer own its users, so:
//   - sends are refused with SERVER_BUSY at once (the SDK keeps them and retries; nothing is acked
//     that the node cannot keep);
//   - once the cut has lasted as long as the others wait before calling a node down, its users are
//     being re-placed elsewhere: every connection is closed with a reconnect-advised code, and the
//     SDK fails over to another URL (admission refuses new connections here until the link heals).

import type { Readiness } from "./readiness.ts";

/** Pure: why sends must be refused now, or null. Draining is not a cut (it still serves). */
export function cutReason(r: Readiness): string | null {
  if (r.ready || r.reason === "draining") return null;
  return `node cut off from the cluster (${r.reason}); retry later`;
}

/** Tracks how long the current cut has lasted (one per shard, ticked by housekeeping). */
export class CutWatch {
  private since: number | null = null;

  constructor(private readonly shedAfterMs: number) {}

  /** True while the cut has lasted `shedAfterMs` or more: close the clients so they fail over. */
  tick(cut: boolean, now: number): boolean {
    if (!cut) {
      this.since = null;
      return false;
    }
    this.since ??= now;
    return now - this.since >= this.shedAfterMs;
  }
}
