// A Bloom filter per dedupe run (sent-runs.ts), kept in memory and stored with the run: a lookup
// probes only the runs whose filter may hold the key, so its cost stays about one B-tree probe
// however many runs the window holds (without it: one probe per run, ~2.3 µs each). ~1% false
// positives at 10 bits per key (1.25 bytes; the shards' filters use the same). Pure.

const BITS_PER_KEY = 10;
const HASHES = 7;
const MIN_BITS = 64;

/** An empty filter sized for `keys` keys. */
export function newRunFilter(keys: number): Uint8Array {
  return new Uint8Array(Math.ceil(Math.max(MIN_BITS, keys * BITS_PER_KEY) / 8));
}

/** Adds a key by its two 32-bit hashes (sentKeyHash). */
export function filterAdd(bits: Uint8Array, h1: number, h2: number): void {
  const m = bits.length * 8;
  for (let i = 0; i < HASHES; i++) {
    const b = ((h1 + Math.imul(i, h2)) >>> 0) % m;
    bits[b >>> 3]! |= 1 << (b & 7);
  }
}

/** False: the key is certainly not in the run. True: maybe (probe it). */
export function filterHas(bits: Uint8Array, h1: number, h2: number): boolean {
  const m = bits.length * 8;
  if (m === 0) return true; // its filter was let go (sent-runs.ts, the memory bound): always probe
  for (let i = 0; i < HASHES; i++) {
    const b = ((h1 + Math.imul(i, h2)) >>> 0) % m;
    if ((bits[b >>> 3]! & (1 << (b & 7))) === 0) return false;
  }
  return true;
}

/**
 * An open group's filter: 2^24 bits (2 MiB), 8 bits a key for a full group of 64 runs of 32,768
 * keys (~2-3% false "maybe"s, each costing only its runs' own filter checks). Blocked: a key's
 * bits all lie in one 512-bit block (a cache line), so adding one costs one cache miss, not seven
 * (the writer adds every logged key: seven misses a key measured +0.1-0.5 µs). A power of two of
 * blocks, so a sealed group that holds fewer keys folds in halves (foldGroupFilter).
 */
const GROUP_FILTER_BITS = 2 ** 24;
const BLOCK_BITS = 512;
const BLOCK_BYTES = BLOCK_BITS / 8;

export function newGroupFilter(): Uint8Array {
  return new Uint8Array(GROUP_FILTER_BITS / 8);
}

/**
 * The filter folded in halves while half of it still has BITS_PER_KEY bits for each of `keys`
 * (one block at least): block j of the half is blocks j and j + half OR'd, and a key's block is
 * its hash mod the block count, a power of two, so (x mod 2B) mod B = x mod B finds it there.
 */
export function foldGroupFilter(bits: Uint8Array, keys: number): Uint8Array {
  let f = bits;
  while (f.length > BLOCK_BYTES && (f.length / 2) * 8 >= Math.max(BLOCK_BITS, keys * BITS_PER_KEY)) {
    const half = f.length / 2;
    const next = f.slice(0, half);
    for (let i = 0; i < half; i++) next[i]! |= f[half + i]!;
    f = next;
  }
  return f;
}

/** Low bits of a key's 53-bit hash (key-columns.ts foldHash): the rest is its first 32-bit hash. */
const HASH_LOW = 2 ** 21;

/**
 * A group filter is keyed by the 53-bit hash alone (the slices keep it, not the two 32-bit
 * hashes), so the open group's filter can be rebuilt from its runs' slices: the first hash picks
 * the block, the low 21 bits of the second the HASHES bits in it (double hashing mod 512).
 * Returns the block's first byte; the bits' offsets go to groupOffsets.
 */
const groupOffsets = new Int32Array(HASHES);
function groupBlock(bits: Uint8Array, h: number): number {
  const a = Math.floor(h / HASH_LOW);
  const b = h - a * HASH_LOW;
  const u = b & (BLOCK_BITS - 1);
  const v = (b >>> 9) | 1;
  for (let i = 0; i < HASHES; i++) groupOffsets[i] = (u + i * v) & (BLOCK_BITS - 1);
  return (a & (bits.length / BLOCK_BYTES - 1)) * BLOCK_BYTES;
}

export function groupFilterAdd(bits: Uint8Array, h: number): void {
  if (bits.length === 0) return;
  const at = groupBlock(bits, h);
  for (let i = 0; i < HASHES; i++) {
    const p = groupOffsets[i]!;
    bits[at + (p >>> 3)]! |= 1 << (p & 7);
  }
}

/** False: no run of the group holds the key. True: maybe (check its runs). */
export function groupFilterHas(bits: Uint8Array, h: number): boolean {
  if (bits.length === 0) return true; // its filter was let go (sent-runs.ts, the memory bound)
  const at = groupBlock(bits, h);
  for (let i = 0; i < HASHES; i++) {
    const p = groupOffsets[i]!;
    if ((bits[at + (p >>> 3)]! & (1 << (p & 7))) === 0) return false;
  }
  return true;
}
