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
