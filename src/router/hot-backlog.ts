// A shard's recently stored rows, kept in memory as DELIVER frames so that a backlog stored while
// this process ran drains without the writer (issue 14). The common backlog is short-lived: a
// client loses its link for seconds or minutes and comes back. Its rows were committed by this
// owner moments ago, yet every page of its drain was read back from SQLite by the writer thread
// (on two cores, the writer's reads were most of a drain's server CPU) and crossed the port again.
//
// What a user's entry promises: every row of that user that the store holds with seq > `floor`
// is in the entry, in seq order, and nothing else is. It holds because
// - an entry starts once the user's box has sent `start` rows or bytes to the store (counted
//   until an ack deletes some), with floor at the highest seq the box sent to the store before,
//   and never below the box's first seq block: rows stored before (by this box, an earlier box,
//   an earlier process) have seqs at or below it, since blocks are reserved durably and above
//   every earlier one, and only this box stores the user's rows above it (single node: in a
//   cluster other owners write too, and there are no entries); an entry whose rows were all
//   acked goes, and starts again the same way (nothing above the floor is left in the store then);
// - a row enters only once its commit is confirmed, and while any of the user's rows is sent to
//   the store and not yet confirmed the entry answers nothing (the store may hold it already);
// - every way a row leaves the store reaches it: an ack's delete trims it; a refused row (inbox
//   full), an admin purge, eviction, memory pressure or a row out of seq order drop the whole
//   entry, and a dropped entry does not start again until the owner forgets the box;
// - a row past the inbox TTL may already be expired by the writer: a page that would hold one is
//   not answered here, so the writer decides.
// A page it cannot answer goes to the writer, as before (a drain's first page, below the floor of
// an entry that started late, is the writer's). An entry keeps its rows' frames back to back in
// chunks (a page is a copy of a stretch of each chunk it spans, no work per row), encoded once as
// the rows commit; acked chunks go whole. Memory is bounded per shard; past the budget the oldest
// entries go whole. Why entries start late: a backlog that fits a drain's first page is one read
// of the writer's either way, and encoding every stored row of thousands of offline inboxes (a
// flood into users who may come back much later, if at all) cost 10-20% of the server's CPU a
// stored row (docs/BENCHMARKS.md, session 33).

import { utf8Length } from "../protocol/bytes.ts";
import { DELIVER_FIXED_BYTES, putDeliver } from "../protocol/v1-bundle.ts";
import { ROW_OVERHEAD_BYTES } from "../limits.ts";
import type { FramePage } from "./frame-page.ts";
import type { StoredRow } from "./wire.ts";

/** Rows, and bytes as the writer weighs them (body + ROW_OVERHEAD_BYTES a row): a page's cut. */
export interface PageSize {
  rows: number;
  bytes: number;
}

/** Bytes a row's bookkeeping costs beside its frame: its index slot (seq, chunk, start, end, body start, page count, ts). */
const ROW_INDEX_BYTES = 8 + 4 + 4 + 4 + 4 + 8 + 8;
/** An entry's first index capacity in rows; it doubles as rows come. */
const INDEX_MIN_ROWS = 64;
/** An entry's first chunk; each next one is twice the last, up to CHUNK_MAX_BYTES (no copy as it grows). */
const CHUNK_MIN_BYTES = 4096;
const CHUNK_MAX_BYTES = 256 * 1024;

/**
 * Per row i < n of an entry, in typed arrays (a page is a few native copies and binary searches,
 * not JS work per row: a drain's pages run mostly before the JIT has warmed to them).
 */
interface UserFrames {
  /** Every stored row of the user with seq > floor is here. */
  readonly floor: number;
  /** Frames back to back in chunks; chunk k is chunks[k - chunkBase] (chunks before it are gone). */
  chunks: Uint8Array[];
  chunkBase: number;
  /** Bytes of `chunks`, kept as they come and go (the budget reads it on every commit). */
  chunkBytes: number;
  /** Rows held; the arrays below have room for more (capacity = seqs.length). */
  n: number;
  seqs: Float64Array;
  /** Row i: its chunk, its frame's start and end and its body's start in that chunk. */
  chunk: Uint32Array;
  starts: Uint32Array;
  ends: Uint32Array;
  bodies: Uint32Array;
  /** Row i's receive time. */
  tss: Float64Array;
  /**
   * counted[i]: what rows before i weigh on a page as the writer counts them (body +
   * ROW_OVERHEAD_BYTES each), from the entry's start; n + 1 entries (capacity + 1).
   */
  counted: Float64Array;
  /** No row held has a receive time below this (a bound: trims do not raise it). */
  oldestTs: number;
  /** Rows [0, head) are trimmed (acked); they are cut off in one move once they are half. */
  head: number;
  /** The highest seq an ack deleted: a row at or below it committed later is live in the store again. */
  trimmedTo: number;
  /** Rows above the floor sent to the store and not yet confirmed committed. */
  inFlight: number;
}

/** What an entry holds in memory, as the budget counts it. */
function cost(e: UserFrames): number {
  return ROW_INDEX_BYTES * e.seqs.length + e.chunkBytes;
}

/** Row arrays with room for `rows`, holding the first `keep` rows of `e` from row `from`. */
function resize(e: UserFrames, rows: number, from: number, keep: number): void {
  const grow = <A extends Float64Array | Uint32Array>(a: A, make: (n: number) => A, extra = 0): A => {
    const b = make(rows + extra);
    b.set(a.subarray(from, from + keep + extra));
    return b;
  };
  e.seqs = grow(e.seqs, (k) => new Float64Array(k));
  e.chunk = grow(e.chunk, (k) => new Uint32Array(k));
  e.starts = grow(e.starts, (k) => new Uint32Array(k));
  e.ends = grow(e.ends, (k) => new Uint32Array(k));
  e.bodies = grow(e.bodies, (k) => new Uint32Array(k));
  e.tss = grow(e.tss, (k) => new Float64Array(k));
  e.counted = grow(e.counted, (k) => new Float64Array(k), 1);
  e.n = keep;
}

/**
 * The buffer an owner's pages from memory are built in, kept from page to page. A fresh buffer per
 * page cost the shard a kernel page fault per 4 KiB written (on this VM most of a 200k drain's shard
 * CPU: 13k faults against 2.4k with the buffer kept). It is lent to one page at a time: a page for
 * a session of the same shard reaches it through the shard's trampoline, after whatever the owner
 * does in the same turn (another user's page too), and the session gives it back once the page is
 * written (its transports copy whatever they keep: Bun's WebSocket send, TcpTransport) or dropped
 * (FramePage.release). Meanwhile pages get buffers of their own. One spare byte before every page
 * built here is the bundle tag's room (FramePage.tagRoom).
 */
export class PageBuffer {
  #buf = new Uint8Array(0);
  #lent = false;
  readonly #release = (): void => {
    this.#lent = false;
  };

  /** A buffer over `maxBytes` (a page of huge rows) is used once, not kept. */
  constructor(readonly maxBytes: number) {}

  /**
   * `bytes` bytes with the byte before them free (contents undefined), and the function that gives
   * them back if they are the kept buffer's (null: a buffer of their own, nothing to give back).
   */
  lend(bytes: number): { bytes: Uint8Array; release: (() => void) | null } {
    if (this.#lent || bytes + 1 > this.maxBytes) return { bytes: new Uint8Array(bytes + 1).subarray(1), release: null };
    if (this.#buf.byteLength < bytes + 1) this.#buf = new Uint8Array(bytes + 1);
    this.#lent = true;
    return { bytes: this.#buf.subarray(1, bytes + 1), release: this.#release };
  }

  /** Bytes held, and whether a page holds them now. */
  get heldBytes(): number {
    return this.#buf.byteLength;
  }
  get lent(): boolean {
    return this.#lent;
  }
}

/** A page's own buffer (it crosses a port: no room before it, FramePage.tagRoom). */
function freshBuffer(bytes: number): Uint8Array {
  return new Uint8Array(bytes);
}

/** A page being built: rows [from, to) of an entry, their seqs filled in, where its bytes go. */
interface PageSpan {
  e: UserFrames;
  from: number;
  to: number;
  seqs: Float64Array;
  ends: Uint32Array;
  lend: (bytes: number) => Uint8Array;
}

/** Bytes of the frames of rows [from, to). */
function frameBytes(e: UserFrames, from: number, to: number): number {
  let size = 0;
  for (let i = from; i < to; i++) size += e.ends[i]! - e.starts[i]!;
  return size;
}

/**
 * Copies the frames of rows [from, to) into `out` back to back, one copy per chunk they span, and
 * sets `ends` to where each ends there; returns the bytes written.
 */
function copyFrames(e: UserFrames, from: number, to: number, out: Uint8Array, ends: Uint32Array): number {
  let at = 0;
  let i = from;
  while (i < to) {
    // A run of rows in one chunk: their frames are back to back there.
    const k = e.chunk[i]!;
    const first = e.starts[i]!;
    const shift = at - first;
    let j = i;
    while (j < to && e.chunk[j] === k) {
      ends[j - from] = e.ends[j]! + shift;
      j++;
    }
    const end = e.ends[j - 1]!;
    out.set(e.chunks[k - e.chunkBase]!.subarray(first, end), at);
    at += end - first;
    i = j;
  }
  return at;
}

/** The rows as a page of DELIVER frames. */
function framesOf({ e, from, to, seqs, ends, lend }: PageSpan): FramePage {
  const frames = lend(frameBytes(e, from, to));
  copyFrames(e, from, to, frames, ends);
  return { seqs, frames, ends };
}

/**
 * The rows as a v0 link's page: the bodies alone, back to back. The frames are copied whole and
 * each body then moved left over the heads before it (a native move per row, no view made per row).
 */
function bodiesOf({ e, from, to, seqs, ends, lend }: PageSpan): FramePage {
  const out = lend(frameBytes(e, from, to));
  copyFrames(e, from, to, out, ends);
  let at = 0;
  for (let i = from; i < to; i++) {
    const end = ends[i - from]!;
    const len = e.ends[i]! - e.bodies[i]!;
    out.copyWithin(at, end - len, end);
    at += len;
    ends[i - from] = at;
  }
  return { seqs, frames: out.subarray(0, at), ends, bodies: true };
}

function newEntry(floor: number): UserFrames {
  const e: UserFrames = {
    floor,
    chunks: [],
    chunkBase: 0,
    chunkBytes: 0,
    n: 0,
    seqs: new Float64Array(0),
    chunk: new Uint32Array(0),
    starts: new Uint32Array(0),
    ends: new Uint32Array(0),
    bodies: new Uint32Array(0),
    tss: new Float64Array(0),
    counted: new Float64Array(1),
    oldestTs: Number.POSITIVE_INFINITY,
    head: 0,
    trimmedTo: 0,
    inFlight: 0,
  };
  resize(e, INDEX_MIN_ROWS, 0, 0);
  return e;
}

/** Index of the first i in [from, to) with a[i] > x, else `to` (a ascending). */
function firstAbove(a: Float64Array, from: number, to: number, x: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class HotBacklog {
  /** Insertion order is age: the oldest entries are evicted first. */
  readonly #users = new Map<string, UserFrames>();
  /** Users whose entry was dropped: none starts again until their box goes (forget). */
  readonly #off = new Set<string>();
  /** What users with no entry yet sent to the store, while under `start` (bounded by the owner's boxes: forget). */
  readonly #counted = new Map<string, PageSize>();
  #bytes = 0;

  /**
   * `budgetBytes` 0 keeps nothing. `ttlMs` 0: rows never expire. `start`: the rows or bytes (as
   * the writer weighs a page) a user's box sends to the store before an entry starts; null: at once.
   */
  constructor(readonly budgetBytes: number, readonly ttlMs: number, readonly start: PageSize | null = null) {}

  /** Bytes held, as the budget counts them. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Users with an entry. */
  get users(): number {
    return this.#users.size;
  }

  /**
   * Rows of `user` sent to the store by its box, whose first seq block starts at `firstSeq` and
   * which sent no row above `storedBefore` to the store before these: the entry starts if there is
   * none (and none was dropped) and the user's count reached `start`; until they are confirmed, it
   * answers nothing.
   */
  storing(user: string, firstSeq: number, storedBefore: number, rows: readonly StoredRow[]): void {
    let e = this.#users.get(user);
    if (e === undefined) {
      if (this.budgetBytes <= 0 || this.#off.has(user) || firstSeq < 1) return;
      if (this.start !== null) {
        let c = this.#counted.get(user);
        if (c === undefined) this.#counted.set(user, c = { rows: 0, bytes: 0 });
        c.rows += rows.length;
        for (const r of rows) c.bytes += r.body.byteLength + ROW_OVERHEAD_BYTES;
        if (c.rows < this.start.rows && c.bytes < this.start.bytes) return; // still one first page
        this.#counted.delete(user);
      }
      this.#users.set(user, e = newEntry(Math.max(firstSeq - 1, storedBefore)));
      this.#bytes += cost(e);
    }
    for (const r of rows) if (r.seq > e.floor) e.inFlight++;
  }

  /** One append's rows (one user's) are committed: they enter the entry as frames. */
  committed(rows: readonly StoredRow[]): void {
    if (rows.length === 0) return;
    const user = rows[0]!.recipient;
    const e = this.#users.get(user);
    if (!e) return;
    const before = cost(e);
    for (const r of rows) {
      if (r.seq <= e.floor) continue;
      e.inFlight--;
      const n = e.n;
      const last = n > e.head ? e.seqs[n - 1]! : Math.max(e.floor, e.trimmedTo);
      if (r.seq === last && n > e.head) continue; // the same row again (a replay after a writer restart)
      // Below the last row (live deliveries spilled after later rows) or below an ack's delete
      // (the store makes such a row live again): not mirrored here, the entry goes.
      if (r.seq <= last) {
        this.#bytes += cost(e) - before;
        return this.drop(user);
      }
      this.#append(e, r);
    }
    this.#bytes += cost(e) - before;
    if (this.#bytes > this.budgetBytes) this.#evict();
  }

  /** The store deleted `user`'s rows with seq <= upTo (an ack): they leave the entry. */
  deleted(user: string, upTo: number): void {
    const e = this.#users.get(user);
    if (!e) return void this.#counted.delete(user); // draining from the store: counted afresh
    if (upTo > e.trimmedTo) e.trimmedTo = upTo;
    e.head = firstAbove(e.seqs, e.head, e.n, upTo);
    const before = cost(e);
    if (e.head === e.n && e.inFlight === 0) {
      // Everything delivered and acked, nothing coming: the entry goes (a drained backlog keeps no
      // memory). Nothing above its floor is left in the store, so it may start again as it did.
      this.#bytes -= before;
      this.#users.delete(user);
      return;
    }
    if (e.head === e.n) {
      e.chunkBase += e.chunks.length;
      e.chunks = [];
      e.chunkBytes = 0;
      resize(e, INDEX_MIN_ROWS, 0, 0);
      e.counted[0] = 0;
      e.oldestTs = Number.POSITIVE_INFINITY;
      e.head = 0;
    } else {
      while (e.chunkBase < e.chunk[e.head]!) e.chunkBytes -= e.chunks.shift()!.byteLength, e.chunkBase++; // wholly acked
      if (e.head > INDEX_MIN_ROWS && e.head * 2 > e.n) this.#cut(e);
    }
    this.#bytes += cost(e) - before;
  }

  /** `user`'s entry goes and does not start again until forget() (refused rows, eviction). */
  drop(user: string): void {
    this.#counted.delete(user);
    const e = this.#users.get(user);
    if (!e) return;
    this.#bytes -= cost(e);
    this.#users.delete(user);
    this.#off.add(user);
  }

  /** `user`'s box is gone: so is anything kept of it; a new box starts afresh. */
  forget(user: string): void {
    this.#counted.delete(user);
    const e = this.#users.get(user);
    if (e) this.#bytes -= cost(e);
    this.#users.delete(user);
    this.#off.delete(user);
  }

  /** Every entry goes, as drop() (memory pressure, shutdown). */
  clear(): void {
    for (const user of this.#users.keys()) this.#off.add(user);
    this.#users.clear();
    this.#counted.clear();
    this.#bytes = 0;
  }

  /**
   * The page of `user`'s rows after `after` (at most `limit` rows; cut before `maxBytes`, counting
   * body + ROW_OVERHEAD_BYTES per row as the writer does, one row at least) with `more` when rows
   * remain: DELIVER frames, or for a v0 link (`bodies`) the bodies alone, built in `buffer` if given
   * (then valid until its next page), else in a buffer of their own. null when memory cannot
   * answer for the store: no entry, rows in flight, a cursor below the floor, a row that may have
   * expired.
   */
  page(
    user: string,
    after: number,
    limit: number,
    maxBytes: number,
    now: number,
    bodies: boolean,
    buffer?: PageBuffer,
  ): { page: FramePage; more: boolean } | null {
    const e = this.#users.get(user);
    if (!e || e.inFlight > 0 || after < e.floor) return null;
    const from = firstAbove(e.seqs, e.head, e.n, after);
    // At most `limit` rows, cut before `maxBytes` as counted, one row at least.
    const most = Math.min(e.n, from + limit);
    let to = firstAbove(e.counted, from + 1, most + 1, e.counted[from]! + maxBytes) - 1;
    if (to <= from) to = Math.min(from + 1, most);
    if (this.ttlMs > 0 && e.oldestTs < now - this.ttlMs) {
      const expiredBefore = now - this.ttlMs;
      for (let i = from; i < to; i++) if (e.tss[i]! < expiredBefore) return null;
    }
    const n = to - from;
    const seqs = e.seqs.slice(from, to);
    const ends = new Uint32Array(n);
    const more = to < e.n;
    const build = bodies ? bodiesOf : framesOf;
    if (buffer === undefined) return { page: build({ e, from, to, seqs, ends, lend: freshBuffer }), more };
    let release: (() => void) | null = null;
    const lend = (bytes: number) => {
      const lent = buffer.lend(bytes);
      release = lent.release;
      return lent.bytes;
    };
    const page = build({ e, from, to, seqs, ends, lend });
    if (!bodies) page.tagRoom = true;
    if (release !== null) page.release = release;
    return { page, more };
  }

  /** Encodes the row's frame at the end of the entry's last chunk (a new chunk if it does not fit). */
  #append(e: UserFrames, r: StoredRow): void {
    const fl = utf8Length(r.sender);
    const il = utf8Length(r.msgId);
    const size = DELIVER_FIXED_BYTES + fl + il + r.body.byteLength;
    let last = e.chunks[e.chunks.length - 1];
    // The last chunk always holds the last row (chunks are made for a row, and only chunks before
    // the first live row are cut off), so that row's end is where the chunk's free bytes start.
    let at = last === undefined ? 0 : e.ends[e.n - 1]!;
    if (last === undefined || at + size > last.byteLength) {
      const grown = last === undefined ? CHUNK_MIN_BYTES : Math.min(CHUNK_MAX_BYTES, last.byteLength * 2);
      e.chunks.push(last = new Uint8Array(Math.max(grown, size)));
      e.chunkBytes += last.byteLength;
      at = 0;
    }
    const end = putDeliver(last, at, r.seq, r.ts, r.sender, fl, r.msgId, il, r.body);
    const i = e.n;
    if (i === e.seqs.length) resize(e, 2 * i, 0, i);
    e.seqs[i] = r.seq;
    e.chunk[i] = e.chunkBase + e.chunks.length - 1;
    e.starts[i] = end - size;
    e.ends[i] = end;
    e.bodies[i] = end - r.body.byteLength;
    e.tss[i] = r.ts;
    e.counted[i + 1] = e.counted[i]! + r.body.byteLength + ROW_OVERHEAD_BYTES;
    if (r.ts < e.oldestTs) e.oldestTs = r.ts;
    e.n = i + 1;
  }

  /** Cuts the trimmed rows off the front of the entry's arrays. */
  #cut(e: UserFrames): void {
    const live = e.n - e.head;
    resize(e, Math.max(INDEX_MIN_ROWS, 2 * live), e.head, live);
    e.head = 0;
  }

  /** Drops the oldest entries until the rows fit the budget. */
  #evict(): void {
    for (const user of this.#users.keys()) {
      if (this.#bytes <= this.budgetBytes) return;
      this.drop(user);
    }
  }
}
