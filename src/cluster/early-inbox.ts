// Messages that reach a starting shard before its host exists. The shard's NATS port listens
// while its cluster side is still joining (ShardCluster.start), and other nodes route to it as soon
// as one shard of its node has stored a heartbeat. What arrived in between was dropped unanswered
// (the shard worker had no host yet); among it the sessions' re-post of unanswered sends to users
// moved back there, which a later send of the same sender then overtook (docs/CLUSTER.md, "A node
// that comes back"). Kept in arrival order instead, they run once the host is wired, before
// anything received later.

import type { PortMsg } from "../router/wire.ts";

/** Most messages kept before the host exists (a start that stalls must not grow without bound); beyond, dropped as before. */
export const EARLY_MAX = 100_000;

export class EarlyInbox {
  private q: PortMsg[] = [];
  dropped = 0;

  push(msgs: readonly PortMsg[]): void {
    const room = Math.max(0, EARLY_MAX - this.q.length);
    for (let i = 0; i < msgs.length && i < room; i++) this.q.push(msgs[i]!);
    this.dropped += Math.max(0, msgs.length - room);
  }

  /** Everything kept, in arrival order; the inbox is empty after. */
  take(): PortMsg[] {
    const out = this.q;
    this.q = [];
    return out;
  }
}
