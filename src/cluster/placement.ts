// Which node and shard own (sequence) a user, over the live nodes: weighted rendezvous hashing.
// Every node computes the same answer from the same member list, with no coordination; when a
// node joins or leaves, only the users whose highest score moves to/from that node change owner
// (about 1/N of them), and a node's weight is its shard count so work follows capacity.
// Inside the chosen node the single-node rule picks the shard, so nothing changes there.

import { fnv1a, ownerOf } from "../router/hash.ts";

export interface Member {
  id: string;
  shards: number;
}

export interface Owner {
  node: string;
  shard: number;
}

/** A 32-bit finaliser (murmur3 fmix32): turns two combined FNV hashes into well-spread bits. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weighted rendezvous score of (user, node): weight / -ln(u), u uniform in (0, 1). */
export function score(userHash: number, nodeHash: number, weight: number): number {
  const u = (mix(userHash ^ Math.imul(nodeHash, 0x9e3779b1)) + 0.5) / 4294967296;
  return weight / -Math.log(u);
}

/** Precomputed node hashes: placement runs on every cross-node send, the member list rarely changes. */
export class Placement {
  private readonly members: { id: string; hash: number; shards: number }[];

  constructor(members: readonly Member[]) {
    // Sorted so that ties (practically impossible) break the same way on every node.
    this.members = [...members]
      .filter((m) => m.shards > 0)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => ({ id: m.id, hash: mix(fnv1a(m.id)), shards: m.shards }));
  }

  get size(): number {
    return this.members.length;
  }

  /** Null when no node is live: the caller must refuse (not-ready), never guess. */
  ownerOf(user: string): Owner | null {
    const uh = fnv1a(user);
    let best: { id: string; shards: number } | null = null;
    let bestScore = -1;
    for (const m of this.members) {
      const s = score(uh, m.hash, m.shards);
      if (s > bestScore) {
        bestScore = s;
        best = m;
      }
    }
    return best ? { node: best.id, shard: ownerOf(user, best.shards) } : null;
  }
}
