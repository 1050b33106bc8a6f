// Sends to a node that came back, before its shard said it started (docs/CLUSTER.md, "A node that
// comes back"). Pure: the shard's cluster side feeds it view changes and start announcements.
//
// A node is up in our view as soon as one of its shards has stored a heartbeat. Its other shards
// may still be starting then: one not yet subscribed to its NATS subject loses what we post to it,
// and one subscribed but with no host yet dropped it too. So the sessions' re-post of unanswered
// sends to a user moved back there (Sessions.reattachMoved) could be lost, while a later send of
// the same sender, routed a moment later when that shard was up, was numbered first; the re-post
// that follows the shard's start announcement (Sessions.reattachOwnedBy) then came behind it
// (traced in the full-size node-sniper: `eos0-1911` at seq 12289, `eos0-1830` … `-1902` after it).
// Until the shard has announced its start, sends to the users it owns are refused in order
// (SERVER_BUSY, retried by the SDK's lanes), so nothing later can reach it ahead of that re-post.

import { SHARD_SPACE, splitShard } from "./address.ts";

/**
 * How long sends to a shard of a node that came back wait for its start announcement (core NATS,
 * at most once) before they go anyway. A shard that starts in time announces well within it (its
 * siblings start in parallel, a second apart at most under load).
 */
export const START_WAIT_MS = 3000;

/** Per node ordinal: when our view saw it come back (Infinity while it is down), and the shards heard since it left. */
interface NodeState {
  backAt: number;
  started: Set<number>;
}

export class PeerStarts {
  private readonly nodes = new Map<number, NodeState>();

  /** Nodes tracked (0: every send may go, nothing to look up). */
  get size(): number {
    return this.nodes.size;
  }

  /** Our view lost the node of ordinal `o` (dead, cut, or silent): its shards must announce again. */
  left(o: number): void {
    this.nodes.set(o, { backAt: Infinity, started: new Set() });
  }

  /** Our view has the node of ordinal `o` again (a node never seen leaving is not tracked). */
  back(o: number, now: number): void {
    const n = this.nodes.get(o);
    if (n && n.backAt === Infinity) n.backAt = now;
  }

  /** Shard `address` announced that it (re)started: its host takes messages. */
  started(address: number): void {
    this.nodes.get(splitShard(address).ordinal)?.started.add(address);
  }

  /** Whether sends may go to shard `address` now: its node never left, it announced, or START_WAIT_MS passed. */
  routable(address: number, now: number): boolean {
    const o = Math.floor(address / SHARD_SPACE);
    const n = this.nodes.get(o);
    if (!n || n.backAt === Infinity) return true; // down in our view: nothing routes there (ownerOf)
    if (now - n.backAt < START_WAIT_MS) return n.started.has(address);
    this.nodes.delete(o); // every shard's wait is over (an announcement lost, or a flap without a restart)
    return true;
  }

  /** Forgets nodes whose wait is over (housekeeping: the hot path then has nothing to look up). */
  sweep(now: number): void {
    for (const [o, n] of this.nodes) if (n.backAt !== Infinity && now - n.backAt >= START_WAIT_MS) this.nodes.delete(o);
  }
}
