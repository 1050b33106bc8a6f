// Which shard owns (sequences) a user: FNV-1a over the UTF-16 code units, mod shard count.
// Stable across restarts and processes, cheap, and spreads short ids well.

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function ownerOf(user: string, shards: number): number {
  return shards === 1 ? 0 : fnv1a(user) % shards;
}
