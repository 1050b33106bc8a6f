// A backlog page as pre-encoded v1 DELIVER frames (issue 14). The writer encodes each stored row
// once, as the exact bytes a plain v1 client receives, into one buffer: the page then crosses the
// port as three typed arrays (a clone is a memcpy; the columns' string arrays cost ~0.9 µs per row
// to clone), and the session writes it as byte copies: a v1 page is a run of these frames (one
// WebSocket message each, or one BUNDLE of them), a v0 page the bodies inside them. Pure functions.
//
//   frame i = frames[ends[i-1] .. ends[i]) = 0x42 | u64 seq | u64 ts | str8 from | str8 id | u32 len | body

import { readU32, readU64, utf8Length } from "../protocol/bytes.ts";
import { V1 } from "../protocol/v1.ts";
import { DELIVER_FIXED_BYTES, putDeliver, V1_BUNDLE_SERVER } from "../protocol/v1-bundle.ts";
import type { Delivery, StoredRow } from "./wire.ts";

export interface FramePage {
  seqs: Float64Array;
  /** Every row's DELIVER frame back to back; frame i ends at ends[i]. */
  frames: Uint8Array;
  ends: Uint32Array;
  /**
   * A v0 link's page: `frames` holds the rows' bodies alone, back to back (the bytes a v0 socket
   * gets, written as they are: no copy per row in the shard). Only the v0 encoding can write it.
   */
  bodies?: true;
  /**
   * The byte just before `frames` in its buffer belongs to this page (a page built in the owner's
   * lent buffer, router/hot-backlog.ts): a bundle of the whole page is written there as a view,
   * its tag in that byte, instead of a copy. Never set on a page from a port (isFramePage).
   */
  tagRoom?: true;
  /**
   * The page's buffer is lent (router/hot-backlog.ts PageBuffer): the session calls this once the
   * page is written or dropped, and not before. Never set on a page from a port (isFramePage).
   */
  release?: () => void;
}

/** DELIVER opcode (protocol/v1.ts) and its fixed bytes: op, seq, ts, two str8 lengths, body length. */
const DELIVER = V1.DELIVER;
const FIXED = DELIVER_FIXED_BYTES;

/** What a page builder needs of a row (a StoredRow, or the columns SQLite returned). */
export type PageRow = Pick<StoredRow, "seq" | "ts" | "sender" | "msgId" | "body">;

/**
 * A page being filled row by row, growing its buffer by doubling (no per-row allocation). `scratch`
 * (PageScratch) lends it a buffer kept from earlier pages: done() copies the bytes out, so the
 * working buffer is never sent and can be filled again by the next page.
 */
export class FramePageBuilder {
  private buf: Uint8Array;
  private readonly seqs: number[] = [];
  private readonly ends: number[] = [];
  private at = 0;

  constructor(expectBytes = 64 * 1024, scratch?: PageScratch) {
    const want = Math.max(64, expectBytes);
    this.buf = scratch?.lend(want) ?? new Uint8Array(want);
    this.scratch = scratch;
  }
  private readonly scratch: PageScratch | undefined;

  /** Rows so far and their bytes. */
  get rows(): number {
    return this.seqs.length;
  }
  get bytes(): number {
    return this.at;
  }

  add(seq: number, ts: number, sender: string, msgId: string, body: Uint8Array): void {
    const fl = utf8Length(sender);
    const il = utf8Length(msgId);
    const size = FIXED + fl + il + body.byteLength;
    if (this.at + size > this.buf.byteLength) this.grow(this.at + size);
    this.at = putDeliver(this.buf, this.at, seq, ts, sender, fl, msgId, il, body);
    this.seqs.push(seq);
    this.ends.push(this.at);
  }

  /** A row whose DELIVER head was stored with it (deliverHead): two copies, nothing encoded. */
  addHead(seq: number, head: Uint8Array, body: Uint8Array): void {
    const size = head.byteLength + body.byteLength;
    if (this.at + size > this.buf.byteLength) this.grow(this.at + size);
    this.buf.set(head, this.at);
    this.buf.set(body, this.at + head.byteLength);
    this.at += size;
    this.seqs.push(seq);
    this.ends.push(this.at);
  }

  private grow(need: number): void {
    let n = this.buf.byteLength * 2;
    while (n < need) n *= 2;
    const next = new Uint8Array(n);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }

  /** The page (its buffer trimmed to the bytes written: a clone copies only those). */
  done(): FramePage {
    this.scratch?.keep(this.buf);
    return {
      seqs: Float64Array.from(this.seqs),
      frames: this.buf.slice(0, this.at),
      ends: Uint32Array.from(this.ends),
    };
  }
}

/**
 * One working buffer a page builder fills, kept from page to page instead of a fresh one each time:
 * a fresh 1 MiB buffer costs the writer a kernel page fault per 4 KiB it touches (a quarter of its
 * samples in a drain, issue 14). Only the copy done() makes leaves the thread, so nothing that is
 * being written to a socket is ever reused. A buffer over `maxBytes` (a page of huge rows) is not
 * kept, so the scratch never holds more than that. Single-threaded: one builder at a time.
 */
export class PageScratch {
  private buf: Uint8Array | undefined;

  constructor(private readonly maxBytes: number) {}

  /** A buffer of at least `bytes` (contents undefined), the kept one if big enough. */
  lend(bytes: number): Uint8Array {
    const b = this.buf;
    this.buf = undefined;
    if (b !== undefined && b.byteLength >= bytes) return b;
    return new Uint8Array(Math.max(bytes, b?.byteLength ?? 0));
  }

  /** Takes back the buffer a builder finished with (it may have grown). */
  keep(buf: Uint8Array): void {
    if (buf.byteLength <= this.maxBytes) this.buf = buf;
  }

  /** Bytes held (0 or the kept buffer's size). */
  get heldBytes(): number {
    return this.buf?.byteLength ?? 0;
  }
}

/** The rows (one recipient's, seq ascending) as a page. */
export function framePage(rows: readonly PageRow[]): FramePage {
  let bytes = 0;
  for (const r of rows) bytes += r.body.byteLength + FIXED + 32;
  const b = new FramePageBuilder(bytes);
  for (const r of rows) b.add(r.seq, r.ts, r.sender, r.msgId, r.body);
  return b.done();
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** A str8's text: short ASCII without a decoder call (ids and user names). */
function str(b: Uint8Array, at: number, n: number): string {
  let s = "";
  for (let i = at; i < at + n; i++) {
    const c = b[i]!;
    if (c >= 0x80) return utf8Decoder.decode(b.subarray(at, at + n));
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Is frame i well formed: its opcode, its strings and body inside it, ending exactly at its end,
 * and its seq the column's? Returns the body's offset, or -1.
 */
function bodyAt(p: FramePage, i: number): number {
  const start = i === 0 ? 0 : p.ends[i - 1]!;
  const end = p.ends[i]!;
  const f = p.frames;
  if (end < start + FIXED || f[start] !== DELIVER || readU64(f, start + 1) !== p.seqs[i]) return -1;
  const fl = f[start + 17]!;
  if (start + 18 + fl >= end) return -1;
  const il = f[start + 18 + fl]!;
  const body = start + 19 + fl + il + 4;
  if (body > end || readU32(f, body - 4) !== end - body) return -1;
  return body;
}

const isNum = (v: unknown, ctor: typeof Float64Array | typeof Uint32Array) => v instanceof ctor;

/** A well-formed page: equal lengths, seqs ascending integers ≥ 1, every frame whole and in order. */
export function isFramePage(v: unknown): v is FramePage {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Record<string, unknown>;
  if (!isNum(p.seqs, Float64Array) || !isNum(p.ends, Uint32Array) || !(p.frames instanceof Uint8Array)) return false;
  const page = v as FramePage;
  const n = page.seqs.length;
  if (page.ends.length !== n || (n > 0 && page.ends[n - 1] !== page.frames.byteLength)) return false;
  if (p.bodies !== undefined && p.bodies !== true) return false;
  if (p.tagRoom !== undefined || p.release !== undefined) return false; // only a page built in this thread
  const bodies = page.bodies === true;
  let prevSeq = 0;
  for (let i = 0; i < n; i++) {
    const seq = page.seqs[i]!;
    if (!Number.isSafeInteger(seq) || seq <= prevSeq) return false;
    if (i > 0 && page.ends[i]! < page.ends[i - 1]!) return false;
    if (!bodies && bodyAt(page, i) < 0) return false;
    prevSeq = seq;
  }
  return true;
}

/**
 * Deliveries for the rows above `afterSeq` (the page was checked by isFramePage), bodies as views
 * into the page's buffer: for a connection that needs the fields (JSON), not the frames.
 */
export function frameDeliveries(p: FramePage, afterSeq: number): Delivery[] {
  const out: Delivery[] = [];
  const f = p.frames;
  for (let i = 0; i < p.seqs.length; i++) {
    const seq = p.seqs[i]!;
    if (seq <= afterSeq) continue;
    const start = i === 0 ? 0 : p.ends[i - 1]!;
    const fl = f[start + 17]!;
    const il = f[start + 18 + fl]!;
    const body = start + 19 + fl + il + 4;
    out.push({
      seq,
      ts: readU64(f, start + 9),
      from: str(f, start + 18, fl),
      id: str(f, start + 19 + fl, il),
      body: f.subarray(body, p.ends[i]!),
      t0: 0,
    });
  }
  return out;
}

/** Index of the first row with seq > afterSeq. */
function firstAfter(p: FramePage, afterSeq: number): number {
  let i = 0;
  while (i < p.seqs.length && p.seqs[i]! <= afterSeq) i++;
  return i;
}

/** The page's rows above `afterSeq` (the page itself when all are; a copy of the rest otherwise). */
export function framesAfter(p: FramePage, afterSeq: number): FramePage {
  const i = firstAfter(p, afterSeq);
  if (i === 0) return p;
  const from = p.ends[i - 1]!;
  const rest: FramePage = {
    seqs: p.seqs.slice(i),
    frames: p.frames.slice(from),
    ends: p.ends.slice(i).map((e) => e - from),
  };
  if (p.bodies) rest.bodies = true;
  return rest;
}

/**
 * The page's own buffers, each once: a page from the writer or the shard's memory of rows owns
 * them whole (they were made or moved for it), so they may be moved to another thread or freed.
 */
export function pageBuffers(p: FramePage): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of [p.seqs, p.frames, p.ends]) {
    const b = v.buffer as ArrayBuffer;
    if (!out.includes(b)) out.push(b);
  }
  return out;
}

/**
 * The page was written (the transports copy what they keep) or dropped: a lent page's buffer goes
 * back to its lender, and a page's own buffers are freed now (detached) instead of at the shard's
 * next collection: a crowd of drains of 64 KiB rows otherwise left 100+ MiB of written pages per
 * shard waiting for JSC's collector (chaos `oom`).
 */
export function pageDone(p: FramePage): void {
  if (p.release !== undefined) return p.release();
  for (const b of pageBuffers(p)) b.transfer(0);
}

/** Where row i's frame starts and its body starts (the page was checked by isFramePage). */
export function frameStart(p: FramePage, i: number): number {
  return i === 0 ? 0 : p.ends[i - 1]!;
}
export function bodyStart(p: FramePage, i: number): number {
  const f = p.frames;
  const start = frameStart(p, i);
  if (p.bodies) return start;
  const fl = f[start + 17]!;
  return start + 19 + fl + f[start + 18 + fl]! + 4;
}

/** Every row's body back to back (a v0 page: the seed's stream of raw message bytes). */
export function joinedBodies(p: FramePage): Uint8Array {
  if (p.bodies) return p.frames;
  const n = p.seqs.length;
  const at = new Uint32Array(n);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    at[i] = bodyStart(p, i);
    bytes += p.ends[i]! - at[i]!;
  }
  const out = new Uint8Array(bytes);
  const f = p.frames;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const end = p.ends[i]!;
    // Bodies are small: a byte loop beats making a view per body; big ones are copied whole.
    if (end - at[i]! > SMALL_BODY) out.set(f.subarray(at[i]!, end), o), o += end - at[i]!;
    else for (let k = at[i]!; k < end; k++) out[o++] = f[k]!;
  }
  return out;
}

/** Bodies up to this size are copied byte by byte (a subarray costs ~0.1 µs to make). */
const SMALL_BODY = 256;

/**
 * The page as v1 server messages for a client granted bundles: BUNDLEs of whole frames, each at
 * most `maxBytes` (a single frame over it goes alone, as a plain DELIVER).
 */
export function frameBundles(p: FramePage, maxBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const n = p.seqs.length;
  let i = 0;
  while (i < n) {
    const from = frameStart(p, i);
    let j = i + 1;
    while (j < n && p.ends[j]! - from + 1 <= maxBytes) j++;
    if (j - i === 1) out.push(p.frames.subarray(from, p.ends[i]!));
    else if (i === 0 && j === n && p.tagRoom && p.frames.byteOffset >= 1) {
      // The whole page is one bundle and the byte before it is the page's: tag it there, no copy.
      const b = new Uint8Array(p.frames.buffer, p.frames.byteOffset - 1, 1 + p.ends[n - 1]!);
      b[0] = V1_BUNDLE_SERVER;
      out.push(b);
    } else {
      const b = new Uint8Array(1 + p.ends[j - 1]! - from);
      b[0] = V1_BUNDLE_SERVER;
      b.set(p.frames.subarray(from, p.ends[j - 1]!), 1);
      out.push(b);
    }
    i = j;
  }
  return out;
}
