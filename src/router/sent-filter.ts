// A shard's memory of which (recipient, sender, id) keys were accepted within the dedupe window:
// a Bloom filter in time generations. It answers "certainly new" (no store lookup needed, the
// hot path) or "maybe seen" (ask the store, whose dedupe log is the truth). It never forgets a
// key younger than the window: keys live in the generation of their timestamp, a generation spans
// half a window, and a generation is dropped only once all of it is older than the window.
// A generation's first filter is sized for the keys the one before it took, so a steady load
// keeps one filter per generation, not a chain of doubling ones.
// Its memory is bounded (maxBytes): a generation at its share stops growing and its last filter
// takes more keys than it was sized for, so it answers "maybe" more often (more store lookups),
// never "new" for a key it holds. Pure: time is passed in.

/**
 * Bits per key when a filter is full: about 0.05% false positives with 11 hashes. A generation
 * holds several filters and a key is checked against all of them, so their rates add up: at 10
 * bits (0.8% each) about 3% of all sends went to the store for a lookup and held their
 * recipient's later messages until the next commit (issue 14, measured in bench/shard-micro.ts).
 */
const BITS_PER_KEY = 16;
const HASHES = 11;
/**
 * Keys the first filter of a generation holds when no generation came before it (later ones are
 * sized from the last: firstCapacityFor); each further filter holds twice the last.
 */
const FIRST_CAPACITY = 16384;
/**
 * Generations alive at once: each spans half a window and goes once wholly older than the window,
 * so the current one and the two before it. Each may use this share of the filter's bytes.
 */
const GENERATIONS_ALIVE = 3;

/** Two independent 32-bit hashes of a key (FNV-1a with two offset bases). */
export function sentKeyHash(recipient: string, sender: string, id: string): [number, number] {
  sentKeyHashInto(recipient, sender, id);
  return [keyHash[0]!, keyHash[1]! | 0]; // h2 as before: a signed int32 (odd)
}

/** The hot path's result slot: sentKeyHashInto writes the two hashes here (no array per call). */
export const keyHash = new Uint32Array(2);

/** sentKeyHash into `keyHash`: the owner hashes every routed key, once. */
export function sentKeyHashInto(recipient: string, sender: string, id: string): void {
  ha = 0x811c9dc5;
  hb = 0x050c5d1f;
  mix(recipient);
  mix(sender);
  mix(id);
  keyHash[0] = ha >>> 0;
  keyHash[1] = (hb >>> 0) | 1;
}

/** The running state of the two hashes (module state, not a closure per call: the hot path). */
let ha = 0;
let hb = 0;
function mix(s: string): void {
  let a = ha;
  let b = hb;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  ha = Math.imul(a ^ 0xff, 0x01000193); // separator: ("ab","c") and ("a","bc") differ
  hb = Math.imul(b ^ 0xff, 0x01000193) ^ (b >>> 15);
}

/** Largest bit count indexed by a mask: bit positions are 32-bit sums, and `&` works on int32. */
const MASK_MAX_BITS = 2 ** 30;

/** One Bloom filter of an image: its size, the keys it took, and its bit words. */
export interface FilterImagePart {
  capacity: number;
  n: number;
  bits: Int32Array;
}
/**
 * A shard's whole filter as data, written at a clean shutdown and read at the next start (the
 * writer keeps it in the file: store/filter-images.ts) so that the start need not read the whole
 * window back from the store. The shape constants travel with it: a build that hashes otherwise
 * must not read another's bits.
 */
export interface FilterImage {
  bitsPerKey: number;
  hashes: number;
  windowMs: number;
  gens: { g: number; filters: FilterImagePart[] }[];
}

/** Why an image cannot be read into a filter of this build and window, or null when it can. */
export function filterImageProblem(image: FilterImage, windowMs: number): string | null {
  if (image.bitsPerKey !== BITS_PER_KEY || image.hashes !== HASHES) {
    return `made with ${image.bitsPerKey} bits and ${image.hashes} hashes a key, this build uses ${BITS_PER_KEY} and ${HASHES}`;
  }
  if (image.windowMs !== windowMs) {
    return `made for a dedupe window of ${image.windowMs} ms, this one is ${windowMs} ms`;
  }
  for (const { g, filters } of image.gens) {
    if (!Number.isSafeInteger(g) || filters.length === 0) return `generation ${g} is malformed`;
    for (const f of filters) {
      const sized = Number.isSafeInteger(f.capacity) && f.capacity >= FIRST_CAPACITY &&
        (f.capacity & (f.capacity - 1)) === 0 && f.capacity * BITS_PER_KEY <= MASK_MAX_BITS;
      if (!sized) return `a filter of generation ${g} has capacity ${f.capacity}`;
      if (!Number.isSafeInteger(f.n) || f.n < 0) return `a filter of generation ${g} counts ${f.n} keys`;
      if (f.bits.length !== (f.capacity * BITS_PER_KEY) / 32) {
        return `a filter of generation ${g} holds ${f.bits.length} words, its capacity needs ${
          (f.capacity * BITS_PER_KEY) / 32
        }`;
      }
    }
  }
  return null;
}

/** Bytes of a filter sized for `capacity` keys. */
const filterBytes = (capacity: number): number => (capacity * BITS_PER_KEY) / 8;

/**
 * A generation's first filter for `want` keys within `shareBytes`: the least power of two at or
 * above `want` (at least FIRST_CAPACITY). When the share cannot hold that, whichever holds more
 * keys before it overfills: one filter as large as fits, or the doubling chain from FIRST_CAPACITY.
 */
export function firstCapacityFor(want: number, shareBytes: number): number {
  let single = FIRST_CAPACITY;
  const fits = (c: number) => c * BITS_PER_KEY <= MASK_MAX_BITS && filterBytes(c) <= shareBytes;
  while (single < want && fits(2 * single)) single *= 2;
  // Reached `want`, or stopped by the mask's bound rather than the share (later filters double on).
  if (single >= want || filterBytes(2 * single) <= shareBytes) return single;
  let chain = 0;
  for (let c = FIRST_CAPACITY; fits(c) && filterBytes(chain + c) <= shareBytes; c *= 2) chain += c;
  return chain > single ? FIRST_CAPACITY : single;
}

class Bloom {
  /**
   * Int32Array, not Uint32Array: a word with its top bit set read from a Uint32Array is above
   * int32 range, and the JIT's int32 speculation on the load failed each time (~700 OSR exits in a
   * 25 s throughput run, session 34). The bits are the same either way.
   */
  readonly bits: Int32Array;
  private readonly m: number;
  /**
   * m - 1 when m is a power of two (every filter: FIRST_CAPACITY and BITS_PER_KEY are, and each
   * filter doubles the last), else -1. `(x & mask)` is then exactly `(x >>> 0) % m` (the low bits
   * of x mod 2^32) without an integer division per probe: 11 probes per add, ~2 per miss (issue 14).
   */
  private readonly mask: number;
  n = 0;
  /** `bits`: an image's words (checked by filterImageProblem), else a new, empty filter. */
  constructor(readonly capacity: number, bits?: Int32Array) {
    this.m = capacity * BITS_PER_KEY;
    this.mask = this.m <= MASK_MAX_BITS && (this.m & (this.m - 1)) === 0 ? this.m - 1 : -1;
    this.bits = bits ?? new Int32Array(Math.ceil(this.m / 32));
  }
  private bit(h1: number, h2: number, i: number): number {
    // Taken mod 2^32 as an int32 (the low bits are all either use reads): a sum past int32 range
    // made the JIT's int32 speculation fail on every other key (~1,500 OSR exits in 20 s, session 33).
    const x = (h1 + Math.imul(i, h2)) | 0;
    return this.mask >= 0 ? x & this.mask : (x >>> 0) % this.m;
  }
  add(h1: number, h2: number): void {
    for (let i = 0; i < HASHES; i++) {
      const bit = this.bit(h1, h2, i);
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.n++;
  }
  has(h1: number, h2: number): boolean {
    for (let i = 0; i < HASHES; i++) {
      const bit = this.bit(h1, h2, i);
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
  get bytes(): number {
    return this.bits.byteLength;
  }
}

/**
 * Filters that grow: a new, twice as large one starts when the last is full, while the
 * generation's bytes stay within `maxBytes`; past that the last one takes every further key.
 */
class Generation {
  readonly filters: Bloom[];
  bytes: number;
  /** `firstCapacity`: keys its first filter holds (see SentFilter.firstCapacity). */
  constructor(private readonly maxBytes: number, firstCapacity = FIRST_CAPACITY) {
    this.filters = [new Bloom(firstCapacity)];
    this.bytes = this.filters[0]!.bytes;
  }
  /** Keys it took. */
  get keys(): number {
    let n = 0;
    for (const f of this.filters) n += f.n;
    return n;
  }
  /**
   * Takes an image's filters. Still empty, it becomes them (the image's last filter goes on
   * taking keys where it stopped at shutdown); else they go ahead of its own, and keys added
   * since the start stay in its last one.
   */
  adopt(parts: FilterImagePart[]): void {
    const taken = parts.map((p) => {
      const f = new Bloom(p.capacity, p.bits);
      f.n = p.n;
      return f;
    });
    if (this.filters.length === 1 && this.filters[0]!.n === 0) {
      this.bytes -= this.filters[0]!.bytes;
      this.filters.length = 0;
    }
    this.filters.unshift(...taken);
    for (const f of taken) this.bytes += f.bytes;
  }
  add(h1: number, h2: number): void {
    let last = this.filters[this.filters.length - 1]!;
    if (last.n >= last.capacity && this.bytes + 2 * last.bytes <= this.maxBytes) {
      this.filters.push(last = new Bloom(last.capacity * 2));
      this.bytes += last.bytes;
    }
    last.add(h1, h2);
  }
  has(h1: number, h2: number): boolean {
    const fs = this.filters;
    for (let i = 0; i < fs.length; i++) if (fs[i]!.has(h1, h2)) return true;
    return false;
  }
  /** Keys held past what its filters were sized for (0 while under its share of the bytes). */
  get overfilled(): number {
    const last = this.filters[this.filters.length - 1]!;
    return Math.max(0, last.n - last.capacity);
  }
}

export class SentFilter {
  private readonly gens = new Map<number, Generation>();
  /**
   * The same generations as an array, rebuilt when one starts or goes (twice a window): every send
   * checks them, and a Map's entry iterator cost about a quarter of a check (issue 14).
   */
  private list: { g: number; gen: Generation }[] = [];
  private readonly period: number;
  private readonly generationBytes: number;

  /** `maxBytes`: what all generations together may hold (at least one first filter each). */
  constructor(readonly windowMs: number, maxBytes = Infinity) {
    this.period = Math.max(1, Math.ceil(windowMs / 2));
    this.generationBytes = maxBytes / GENERATIONS_ALIVE;
  }

  /** Records a key accepted at `ts`; keys already older than the window are not worth keeping. */
  add(h1: number, h2: number, ts: number, now: number): void {
    if (ts < now - this.windowMs) return;
    const g = Math.floor(ts / this.period);
    let gen = this.gens.get(g);
    if (!gen) {
      this.gens.set(g, gen = new Generation(this.generationBytes, this.firstCapacity(g)));
      this.relist();
    }
    gen.add(h1, h2);
  }

  /**
   * The first filter of a new generation `g`, sized for the keys the newest generation before it
   * took (firstCapacityFor). Every check of a new key reads every filter of every live generation,
   * and each filter adds its own false "maybe"s (store lookups): grown by doubling from
   * FIRST_CAPACITY, a generation of a busy window holds ~log2(keys / 16,384) filters; sized from
   * the last one, one while the traffic holds.
   */
  private firstCapacity(g: number): number {
    let before: Generation | undefined;
    let at = -Infinity;
    for (const [k, gen] of this.gens) {
      if (k < g && k > at) {
        at = k;
        before = gen;
      }
    }
    return firstCapacityFor(before?.keys ?? 0, this.generationBytes);
  }

  /** False: certainly not accepted within the window. True: maybe (ask the store). */
  mightHave(h1: number, h2: number, now: number): boolean {
    const oldest = Math.floor((now - this.windowMs) / this.period);
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.g >= oldest && e.gen.has(h1, h2)) return true;
    }
    return false;
  }

  /** Drops generations wholly older than the window (bounded work: a few per window). */
  expire(now: number): number {
    const oldest = Math.floor((now - this.windowMs) / this.period);
    let dropped = 0;
    for (const g of [...this.gens.keys()]) {
      if (g < oldest) {
        this.gens.delete(g);
        dropped++;
      }
    }
    if (dropped > 0) this.relist();
    return dropped;
  }

  /**
   * The whole filter as an image (its words shared, not copied: the caller hands it over at
   * shutdown, after which this filter is not asked again). Generations already out of the window
   * are left out.
   */
  image(now: number): FilterImage {
    this.expire(now);
    const gens = this.list.map(({ g, gen }) => ({
      g,
      filters: gen.filters.map((f) => ({ capacity: f.capacity, n: f.n, bits: f.bits })),
    }));
    return { bitsPerKey: BITS_PER_KEY, hashes: HASHES, windowMs: this.windowMs, gens };
  }

  /**
   * Adds an image's keys (checked first: filterImageProblem) to what this filter holds; its
   * generations already out of the window are skipped. Returns the bytes taken in.
   */
  adopt(image: FilterImage, now: number): number {
    const oldest = Math.floor((now - this.windowMs) / this.period);
    let bytes = 0;
    for (const { g, filters } of image.gens) {
      if (g < oldest) continue;
      let gen = this.gens.get(g);
      const before = gen?.bytes ?? 0;
      if (!gen) this.gens.set(g, gen = new Generation(this.generationBytes));
      gen.adopt(filters);
      bytes += gen.bytes - before;
    }
    this.relist();
    return bytes;
  }

  private relist(): void {
    this.list = [...this.gens].map(([g, gen]) => ({ g, gen }));
  }

  get bytes(): number {
    let n = 0;
    for (const gen of this.gens.values()) n += gen.bytes;
    return n;
  }

  /** Keys held past the filters' sizes because of the byte bound (their false positives rise). */
  get overfilled(): number {
    let n = 0;
    for (const gen of this.gens.values()) n += gen.overfilled;
    return n;
  }
}
