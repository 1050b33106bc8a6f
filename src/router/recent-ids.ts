// A user box's memory of recent (sender, id) keys for dedupe (owner.ts): per key the seq it got
// and when. Issue 14: the shard heap was mostly this memory as one
// object, one Map entry and one id string per key (~100 bytes and two GC cells each, 512 keys
// per user), and marking it set the floor of the shard's GC pauses. Here a box holds a handful of
// typed arrays whatever its size: numbers in slots, the keys' characters in one arena, and an
// open-addressed index over the slots. No GC cell per key.
//
// Keys are compared exactly (every character of sender and id), never by hash alone: a hash
// collision cannot make a distinct message look like a duplicate.
//
// Slots form a ring in insertion order (the order a Map iterates). Past `limit + EVICT_BATCH` live
// keys the oldest are forgotten down to `limit` (one pass, not one per add), except keys the
// caller pins (add's `keepFrom`: seqs not durable yet, which no store lookup could find): the
// pass stops at the first of them, and the ring grows past the limit while they stay. A removed key leaves a
// dead slot that the ring skips; a full ring, a full arena or too many dead slots rebuild the lot
// (live keys copied in order), which is also how the memory grows: a box that heard few ids keeps
// small arrays.

/** Live keys past the limit are forgotten this many at a time (one pass, not one per add). */
export const RECENT_EVICT_BATCH = 64;
/** Slots of a new memory (grows by rebuilding, doubling, up to what the limit needs). */
const FIRST_SLOTS = 8;
/** A box under its limit grows its ring to this many times its live keys (issue 14: fewer rebuilds). */
const GROW_UNDER_LIMIT = 4;
/** Ring slots past the most live keys there can be: dead slots before a compaction. */
const SPARE_SLOTS = 32;
/** Characters of a new memory's key arena (ids and user names are short, mostly). */
const FIRST_CHARS = 128;
/** Numbers per slot in `nums`: seq, ts. */
const NUM = 2;
/** Numbers per slot in `keys`: hash, arena position, lengths (sender's << 16 | id's). */
const KEY = 3;
/** A sender's or id's most characters (frames.ts bounds both at 255 bytes). */
const MAX_PART = 0xffff;

function pow2AtLeast(n: number): number {
  let p = FIRST_SLOTS;
  while (p < n) p *= 2;
  return p;
}

/** Index entries for a ring of `slots`: a power of two, at most 2/3 full. */
function indexSize(slots: number): number {
  return pow2AtLeast(slots + (slots >> 1));
}

/**
 * Up to this many elements a ring is copied element by element: `set` of `subarray` views
 * allocates a view object per call, and a growing box copies only a few dozen numbers and
 * characters per array (issue 14: regrow was ~10% of the shard's samples in the offline flood,
 * most of it in `subarray`).
 */
const COPY_LOOP_MAX = 512;

/** Copies `count` elements of the ring `src` from index `from` (wrapping at its end) to `dst` at 0. */
function copyRun(
  dst: Float64Array | Int32Array | Uint8Array | Uint16Array,
  src: typeof dst,
  from: number,
  count: number,
) {
  if (count <= COPY_LOOP_MAX) {
    const len = src.length;
    for (let i = 0, q = from; i < count; i++) {
      dst[i] = src[q]!;
      if (++q === len) q = 0;
    }
    return;
  }
  const first = Math.min(count, src.length - from);
  dst.set(src.subarray(from, from + first), 0);
  if (first < count) dst.set(src.subarray(0, count - first), first);
}

/** Characters of a key from its packed lengths. */
function keyLength(lens: number): number {
  return (lens >>> 16) + (lens & 0xffff);
}

/** True if `str` has a character the one-byte arena cannot hold. */
function isWide(str: string): boolean {
  for (let i = 0; i < str.length; i++) if (str.charCodeAt(i) > 0xff) return true;
  return false;
}

export class RecentIds {
  private readonly maxSlots: number;
  private slots: number; // ring capacity
  private head = 0; // next slot to write (monotonic; the ring index is `% slots`)
  private tail = 0; // oldest slot still in the ring (live or dead)
  private liveCount = 0;
  private nums: Float64Array; // seq (0: dead slot), ts
  private keys: Int32Array; // hash, arena position, lengths
  private index: Int32Array; // open addressing: slot + 1, 0 empty
  // The keys' characters, sender then id, a ring in slot order: one byte each while every
  // character is below 256 (ASCII ids), two once one is not.
  private chars: Uint8Array | Uint16Array;
  private charHead = 0; // monotonic, like head
  private charTail = 0;

  constructor(private readonly limit: number) {
    this.maxSlots = limit + RECENT_EVICT_BATCH + SPARE_SLOTS;
    this.slots = Math.min(FIRST_SLOTS, this.maxSlots);
    this.nums = new Float64Array(this.slots * NUM);
    this.keys = new Int32Array(this.slots * KEY);
    this.index = new Int32Array(indexSize(this.slots));
    this.chars = new Uint8Array(FIRST_CHARS);
  }

  /** Live keys remembered. */
  get size(): number {
    return this.liveCount;
  }

  /** Bytes of its arrays (what dropping it gives back). */
  get bytes(): number {
    return this.nums.byteLength + this.keys.byteLength + this.index.byteLength + this.chars.byteLength;
  }

  /** The slot of (from, id) with key hash `h`, or -1. Valid until the next add or remove. */
  find(h: number, from: string, id: string): number {
    const mask = this.index.length - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const v = this.index[i]!;
      if (v === 0) return -1;
      const s = v - 1;
      if (this.keys[s * KEY] === (h | 0) && this.keyIs(s, from, id)) return s;
    }
  }

  seqAt(slot: number): number {
    return this.nums[slot * NUM]!;
  }

  tsAt(slot: number): number {
    return this.nums[slot * NUM + 1]!;
  }

  /**
   * Remembers (from, id) → seq at `ts`. A key already held is overwritten where it
   * stands (as Map.set keeps its place); the oldest are forgotten past the limit, up to the first
   * whose seq is `keepFrom` or more (pinned: not durable anywhere else yet).
   */
  add(h: number, from: string, id: string, seq: number, ts: number, keepFrom = Infinity): void {
    const held = this.find(h, from, id);
    if (held >= 0) return this.put(held, seq, ts);
    if (from.length > MAX_PART || id.length > MAX_PART) throw new RangeError("recent-ids: key part too long");
    const len = from.length + id.length;
    const wide = this.chars instanceof Uint8Array && (isWide(from) || isWide(id));
    if (wide || this.head - this.tail >= this.slots || this.charHead - this.charTail + len > this.chars.length) {
      this.rebuild(this.liveCount + 1, len, wide);
    }
    const s = this.head++ % this.slots;
    const k = s * KEY;
    this.keys[k] = h | 0;
    this.keys[k + 1] = this.charHead;
    this.keys[k + 2] = (from.length << 16) | id.length;
    this.charHead = this.copyIn(from, this.charHead);
    this.charHead = this.copyIn(id, this.charHead);
    this.put(s, seq, ts);
    this.link(h, s);
    this.liveCount++;
    if (this.liveCount > this.limit + RECENT_EVICT_BATCH) this.evictTo(this.limit, keepFrom);
  }

  /** Forgets the key in `slot` (its slot stays dead in the ring until the ring passes it). */
  remove(slot: number): void {
    this.unlink(slot);
    this.nums[slot * NUM] = 0;
    this.liveCount--;
    if (slot === this.tail % this.slots) this.dropDeadTail(); // the oldest went: free its room now
  }

  /** Forgets every key whose seq is in `seqs` (the store refused those messages). */
  removeSeqs(seqs: ReadonlySet<number>): void {
    for (let p = this.tail; p < this.head; p++) {
      const s = p % this.slots;
      const seq = this.nums[s * NUM]!;
      if (seq !== 0 && seqs.has(seq)) this.remove(s);
    }
  }

  private put(s: number, seq: number, ts: number): void {
    this.nums[s * NUM] = seq;
    this.nums[s * NUM + 1] = ts;
  }

  /**
   * Drops the oldest live keys (and every dead slot before them) until `keep` are left, or until
   * the oldest is pinned (seq `keepFrom` or more).
   */
  private evictTo(keep: number, keepFrom: number): void {
    while (this.liveCount > keep && this.tail < this.head) {
      const s = this.tail % this.slots;
      const seq = this.nums[s * NUM]!;
      if (seq >= keepFrom) break; // a dead slot (0) is never pinned
      this.tail++;
      if (seq !== 0) this.remove(s);
    }
    this.dropDeadTail();
    // Grown past the limit while keys were pinned, and now back under it: back to the limit's size.
    if (this.slots > this.maxSlots && this.liveCount + SPARE_SLOTS <= this.maxSlots) {
      this.rebuild(this.liveCount, 0, false);
    }
  }

  /** Moves the tail past dead slots, and the arena's tail to the oldest slot's key. */
  private dropDeadTail(): void {
    while (this.tail < this.head && this.nums[(this.tail % this.slots) * NUM] === 0) this.tail++;
    this.charTail = this.tail < this.head ? this.keys[(this.tail % this.slots) * KEY + 1]! : this.charHead;
  }

  private keyIs(s: number, from: string, id: string): boolean {
    const k = s * KEY;
    if (this.keys[k + 2] !== ((from.length << 16) | id.length)) return false;
    const at = this.keys[k + 1]!;
    return this.charsAre(from, at) && this.charsAre(id, at + from.length);
  }

  /** Whether the arena holds `str` from position `at` (monotonic; wraps at its end). */
  private charsAre(str: string, at: number): boolean {
    const c = this.chars;
    let q = at % c.length;
    for (let i = 0; i < str.length; i++) {
      if (c[q] !== str.charCodeAt(i)) return false;
      if (++q === c.length) q = 0;
    }
    return true;
  }

  private copyIn(str: string, at: number): number {
    const c = this.chars;
    let q = at % c.length;
    for (let i = 0; i < str.length; i++) {
      c[q] = str.charCodeAt(i);
      if (++q === c.length) q = 0;
    }
    return at + str.length;
  }

  private link(h: number, s: number): void {
    const mask = this.index.length - 1;
    let i = h & mask;
    while (this.index[i] !== 0) i = (i + 1) & mask;
    this.index[i] = s + 1;
  }

  /** Takes slot `s` out of the index, shifting later entries of its probe run back (no tombstones). */
  private unlink(s: number): void {
    const mask = this.index.length - 1;
    let i = this.keys[s * KEY]! & mask;
    while (this.index[i] !== s + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const v = this.index[j]!;
      if (v === 0) break;
      const home = this.keys[(v - 1) * KEY]! & mask;
      // v may move to the hole at i unless its home lies cyclically in (i, j].
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        this.index[i] = v;
        i = j;
      }
    }
    this.index[i] = 0;
  }

  /**
   * Copies the live keys, in order, into arrays sized for `live` keys and `moreChars` more
   * characters (with room to spare), and rebuilds the index.
   */
  private rebuild(live: number, moreChars: number, wide: boolean): void {
    if (this.head - this.tail === this.liveCount) return this.regrow(live, moreChars, wide);
    const old = {
      slots: this.slots,
      nums: this.nums,
      keys: this.keys,
      chars: this.chars,
      tail: this.tail,
      head: this.head,
    };
    const slots = this.slotsFor(live);
    let need = moreChars;
    for (let p = old.tail; p < old.head; p++) {
      const s = p % old.slots;
      if (old.nums[s * NUM] !== 0) need += keyLength(old.keys[s * KEY + 2]!);
    }
    this.slots = slots;
    this.nums = new Float64Array(slots * NUM);
    this.keys = new Int32Array(slots * KEY);
    this.index = new Int32Array(indexSize(slots));
    this.chars = this.arenaFor(need, wide || old.chars instanceof Uint16Array);
    this.head =
      this.tail =
      this.charHead =
      this.charTail =
        0;
    for (let p = old.tail; p < old.head; p++) {
      const s = p % old.slots;
      if (old.nums[s * NUM] === 0) continue;
      const t = this.head++;
      this.nums[t * NUM] = old.nums[s * NUM]!;
      this.nums[t * NUM + 1] = old.nums[s * NUM + 1]!;
      const len = keyLength(old.keys[s * KEY + 2]!);
      this.keys[t * KEY] = old.keys[s * KEY]!;
      this.keys[t * KEY + 1] = this.charHead;
      this.keys[t * KEY + 2] = old.keys[s * KEY + 2]!;
      const from = old.keys[s * KEY + 1]!;
      for (let i = 0; i < len; i++) this.chars[this.charHead++] = old.chars[(from + i) % old.chars.length]!;
      this.link(this.keys[t * KEY]!, t);
    }
  }

  /**
   * Rebuild without dead slots (a box growing, or its arena full): the ring's slots and the
   * arena's characters are each one or two runs, copied whole; only positions and the index are
   * redone per key.
   */
  private regrow(live: number, moreChars: number, wide: boolean): void {
    const n = this.liveCount;
    const used = this.charHead - this.charTail;
    const base = this.charTail;
    const from = this.tail % this.slots;
    const nums = new Float64Array(this.slotsFor(live) * NUM);
    const keys = new Int32Array((nums.length / NUM) * KEY);
    copyRun(nums, this.nums, from * NUM, n * NUM);
    copyRun(keys, this.keys, from * KEY, n * KEY);
    const slots = nums.length / NUM;
    // Under the limit, room for as many keys as the slots at the average key length so far, so
    // the arena does not fill (and rebuild) before the ring does.
    const fit = n > 0 && slots <= this.maxSlots ? Math.ceil((used / n) * slots) : 0;
    const chars = this.arenaFor(used + moreChars, wide || this.chars instanceof Uint16Array, fit);
    copyRun(chars, this.chars, base % this.chars.length, used);
    this.slots = slots;
    this.nums = nums;
    this.keys = keys;
    this.chars = chars;
    this.index = new Int32Array(indexSize(this.slots));
    for (let t = 0; t < n; t++) {
      keys[t * KEY + 1] = keys[t * KEY + 1]! - base;
      this.link(keys[t * KEY]!, t);
    }
    this.tail = this.charTail = 0;
    this.head = n;
    this.charHead = used;
  }

  /**
   * Ring slots for `live` keys: four times as many up to what the limit needs (a growing box
   * copies each key about 1.3 times in all, and allocates its arrays 4 times on the way to 512
   * keys instead of 7); past the limit, only while pinned keys hold the memory over it, twice as
   * many.
   */
  private slotsFor(live: number): number {
    if (live + SPARE_SLOTS > this.maxSlots) return 2 * live;
    return Math.min(this.maxSlots, Math.max(FIRST_SLOTS, GROW_UNDER_LIMIT * live));
  }

  /** A new arena for `need` characters, with room to spare, and at least `fit`. */
  private arenaFor(need: number, wide: boolean, fit = 0): Uint8Array | Uint16Array {
    const n = Math.max(need + (need >> 1) + 64, fit, FIRST_CHARS);
    return wide ? new Uint16Array(n) : new Uint8Array(n);
  }
}
