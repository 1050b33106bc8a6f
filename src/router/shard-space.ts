// Global shard addresses, the arithmetic alone (pure, no NATS: the router uses it, cluster/address.ts
// re-exports it): node ordinal * SHARD_SPACE + shard (address.ts: how a node gets its ordinal).

/** Shards per node in the address space (the config allows at most 256). */
export const SHARD_SPACE = 1024;

export interface ShardAddress {
  ordinal: number;
  shard: number;
}

export function globalShard(ordinal: number, shard: number): number {
  return ordinal * SHARD_SPACE + shard;
}

export function splitShard(global: number): ShardAddress {
  return { ordinal: Math.floor(global / SHARD_SPACE), shard: global % SHARD_SPACE };
}

/** True when two shard addresses are shards of one node (one process). */
export function sameNode(a: number, b: number): boolean {
  return Math.floor(a / SHARD_SPACE) === Math.floor(b / SHARD_SPACE);
}
