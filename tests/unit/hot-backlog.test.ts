// The shard's memory of rows it stored (router/hot-backlog.ts): it answers a page only when it can
// stand for the store, and its pages are the writer's pages byte for byte.

import { describe, expect, test } from "bun:test";
import { HotBacklog, PageBuffer } from "../../src/router/hot-backlog.ts";
import { frameBundles, framePage, isFramePage } from "../../src/router/frame-page.ts";
import { ROW_OVERHEAD_BYTES } from "../../src/limits.ts";
import type { StoredRow } from "../../src/router/wire.ts";
import { V1_BUNDLE_SERVER } from "../../src/protocol/v1-bundle.ts";

const row = (seq: number, body = 8, user = "u", ts = 1000 + seq): StoredRow => ({
  recipient: user,
  seq,
  sender: `sender-${seq % 3}`,
  msgId: `id-${seq}`,
  ts,
  body: new Uint8Array(body).fill(seq & 0xff),
});
const NOW = 2000;

/** Stores and commits rows one append each, as an owner does for an offline user. */
function stored(h: HotBacklog, rows: StoredRow[], firstSeq = 1): void {
  for (const r of rows) {
    h.storing(r.recipient, firstSeq, 0, [r]);
    h.committed([r]);
  }
}

const seqsOf = (p: { page: { seqs: Float64Array } } | null) => (p === null ? null : [...p.page.seqs]);

describe("hot backlog", () => {
  test("a page is the writer's page: the same DELIVER frames, and the bodies alone for v0", () => {
    const h = new HotBacklog(1 << 20, 0);
    const rows = [1, 2, 3, 4, 5].map((s) => row(s, 10 + s));
    stored(h, rows);
    const p = h.page("u", 0, 100, 1 << 20, NOW, false)!;
    const want = framePage(rows);
    expect(p.more).toBe(false);
    expect([...p.page.seqs]).toEqual([...want.seqs]);
    expect([...p.page.ends]).toEqual([...want.ends]);
    expect(p.page.frames).toEqual(want.frames);
    const b = h.page("u", 2, 100, 1 << 20, NOW, true)!;
    expect(b.page.bodies).toBe(true);
    expect([...b.page.seqs]).toEqual([3, 4, 5]);
    expect(b.page.frames).toEqual(new Uint8Array([...rows[2]!.body, ...rows[3]!.body, ...rows[4]!.body]));
    expect([...b.page.ends]).toEqual([13, 27, 42]);
  });

  test("pages are cut by rows and by bytes as the writer counts them, keeping one row", () => {
    const h = new HotBacklog(1 << 20, 0);
    stored(h, [1, 2, 3, 4, 5].map((s) => row(s, 100)));
    expect(seqsOf(h.page("u", 0, 2, 1 << 20, NOW, false))).toEqual([1, 2]);
    expect(h.page("u", 0, 2, 1 << 20, NOW, false)!.more).toBe(true);
    const perRow = 100 + ROW_OVERHEAD_BYTES;
    expect(seqsOf(h.page("u", 1, 100, 3 * perRow, NOW, false))).toEqual([2, 3, 4]);
    expect(seqsOf(h.page("u", 1, 100, 1, NOW, false))).toEqual([2]); // one row at least
    const last = h.page("u", 4, 100, 1 << 20, NOW, false)!;
    expect([[...last.page.seqs], last.more]).toEqual([[5], false]);
    expect(seqsOf(h.page("u", 5, 100, 1 << 20, NOW, false))).toEqual([]); // caught up
  });

  test("frames spanning several chunks come out whole and in order", () => {
    const h = new HotBacklog(64 << 20, 0);
    const rows = Array.from({ length: 3000 }, (_, i) => row(i + 1, 200));
    stored(h, rows);
    const p = h.page("u", 0, 10_000, 64 << 20, NOW, false)!;
    expect(isFramePage({ ...p.page, tagRoom: undefined })).toBe(true);
    expect(p.page.frames).toEqual(framePage(rows).frames);
    const mid = h.page("u", 1234, 500, 64 << 20, NOW, false)!;
    expect(mid.page.frames).toEqual(framePage(rows.slice(1234, 1734)).frames);
    // A v0 page over the same chunks: each body moved over the heads before it, in order.
    const v0 = h.page("u", 100, 10_000, 64 << 20, NOW, true)!;
    expect(v0.page.frames).toEqual(new Uint8Array(rows.slice(100).flatMap((r) => [...r.body])));
    expect([...v0.page.ends]).toEqual(rows.slice(100).map((_, i) => 200 * (i + 1)));
  });

  test("nothing is answered while rows are in flight, below the floor, or without an entry", () => {
    const h = new HotBacklog(1 << 20, 0);
    expect(h.page("u", 0, 10, 1 << 20, NOW, false)).toBeNull(); // no entry: the writer answers
    h.storing("u", 11, 0, [row(11)]);
    expect(h.page("u", 10, 10, 1 << 20, NOW, false)).toBeNull(); // sent to the store, not confirmed
    h.committed([row(11)]);
    expect(seqsOf(h.page("u", 10, 10, 1 << 20, NOW, false))).toEqual([11]);
    // The box's block starts at 11: rows below may be in the store from before; a cursor under the floor is the writer's.
    expect(h.page("u", 9, 10, 1 << 20, NOW, false)).toBeNull();
    h.storing("u", 11, 11, [row(12), row(13)]);
    h.committed([row(12)]);
    expect(h.page("u", 10, 10, 1 << 20, NOW, false)).toBeNull(); // 13 still in flight
    h.committed([row(13)]);
    expect(seqsOf(h.page("u", 10, 10, 1 << 20, NOW, false))).toEqual([11, 12, 13]);
  });

  test("rows below the box's first block are not its: they neither count nor enter", () => {
    const h = new HotBacklog(1 << 20, 0);
    h.storing("u", 11, 0, [row(5), row(11)]);
    h.committed([row(5), row(11)]);
    expect(seqsOf(h.page("u", 10, 10, 1 << 20, NOW, false))).toEqual([11]);
  });

  test("with a start, an entry starts once the box sent that many rows, above every row it sent before", () => {
    const h = new HotBacklog(1 << 20, 0, { rows: 3, bytes: 1 << 20 });
    const storeOne = (seq: number, before: number) => {
      h.storing("u", 1, before, [row(seq)]);
      h.committed([row(seq)]);
    };
    storeOne(1, 0);
    storeOne(2, 1);
    expect([h.users, h.bytes]).toEqual([0, 0]); // counted only: no memory kept for a short backlog
    expect(h.page("u", 0, 10, 1 << 20, NOW, false)).toBeNull();
    storeOne(3, 2);
    expect(h.users).toBe(1);
    expect(h.page("u", 0, 10, 1 << 20, NOW, false)).toBeNull(); // rows 1-2 are the writer's first page
    expect(h.page("u", 1, 10, 1 << 20, NOW, false)).toBeNull();
    expect(seqsOf(h.page("u", 2, 10, 1 << 20, NOW, false))).toEqual([3]);
    h.storing("u", 1, 3, [row(4), row(5)]);
    h.committed([row(4), row(5)]);
    expect(seqsOf(h.page("u", 2, 10, 1 << 20, NOW, false))).toEqual([3, 4, 5]);
    // A spilled delivery below the floor (sent to the store after later rows) is the writer's, not a gap.
    h.storing("u", 1, 5, [row(2)]);
    h.committed([row(2)]);
    expect(seqsOf(h.page("u", 2, 10, 1 << 20, NOW, false))).toEqual([3, 4, 5]);
  });

  test("with a start, one append of that many rows starts the entry at once; acks, forget and drop count afresh", () => {
    const h = new HotBacklog(1 << 20, 0, { rows: 3, bytes: 1 << 20 });
    h.storing("u", 1, 0, [row(1), row(2), row(3)]);
    h.committed([row(1), row(2), row(3)]);
    expect(seqsOf(h.page("u", 0, 10, 1 << 20, NOW, false))).toEqual([1, 2, 3]);

    const g = new HotBacklog(1 << 20, 0, { rows: 3, bytes: 1 << 20 });
    const storeOne = (user: string, seq: number, before: number) => {
      g.storing(user, 1, before, [row(seq, 8, user)]);
      g.committed([row(seq, 8, user)]);
    };
    storeOne("a", 1, 0);
    storeOne("a", 2, 1);
    g.deleted("a", 2); // drained from the store: what is left is counted again
    storeOne("a", 3, 2);
    storeOne("a", 4, 3);
    expect(g.users).toBe(0);
    storeOne("a", 5, 4);
    expect(seqsOf(g.page("a", 4, 10, 1 << 20, NOW, false))).toEqual([5]);
    for (const end of ["forget", "drop"] as const) {
      storeOne(end, 1, 0);
      storeOne(end, 2, 1);
      g[end](end);
      storeOne(end, 3, 2);
      storeOne(end, 4, 3);
      expect(g.page(end, 3, 10, 1 << 20, NOW, false)).toBeNull();
    }
    storeOne("forget", 5, 4); // forget counts afresh: the third row since starts it
    expect(seqsOf(g.page("forget", 4, 10, 1 << 20, NOW, false))).toEqual([5]);
  });

  test("with a start, bytes as the writer weighs a page start an entry before the rows do (big messages)", () => {
    const h = new HotBacklog(1 << 20, 0, { rows: 500, bytes: 2 * (100 + ROW_OVERHEAD_BYTES) });
    h.storing("u", 1, 0, [row(1, 100)]);
    h.committed([row(1, 100)]);
    expect(h.users).toBe(0);
    h.storing("u", 1, 1, [row(2, 100)]);
    h.committed([row(2, 100)]);
    expect(seqsOf(h.page("u", 1, 10, 1 << 20, NOW, false))).toEqual([2]);
    expect(h.page("u", 0, 10, 1 << 20, NOW, false)).toBeNull();
  });

  test("an ack's delete trims rows; an emptied entry goes and starts again with the next store", () => {
    const h = new HotBacklog(1 << 20, 0);
    stored(h, [1, 2, 3].map((s) => row(s)));
    h.deleted("u", 2);
    expect(seqsOf(h.page("u", 0, 10, 1 << 20, NOW, false))).toEqual([3]);
    h.deleted("u", 3);
    expect(h.users).toBe(0);
    expect(h.bytes).toBe(0);
    stored(h, [row(4)]);
    expect(seqsOf(h.page("u", 3, 10, 1 << 20, NOW, false))).toEqual([4]);
  });

  test("a long drain's trims keep the rest whole and in order (the front is cut off as it grows)", () => {
    const h = new HotBacklog(64 << 20, 0);
    const rows = Array.from({ length: 1000 }, (_, i) => row(i + 1, 1 + (i % 7) * 40));
    stored(h, rows);
    for (let acked = 37; acked < 1000; acked += 37) {
      h.deleted("u", acked);
      const n = Math.min(30, 1000 - acked);
      const want = rows.slice(acked, acked + n);
      const p = h.page("u", acked, 30, 1 << 20, NOW, false)!;
      expect([...p.page.seqs]).toEqual(want.map((r) => r.seq));
      expect(p.page.frames).toEqual(framePage(want).frames); // every frame whole after a cut
      expect(isFramePage(p.page)).toBe(true);
      const b = h.page("u", acked, 30, 1 << 20, NOW, true)!;
      expect(b.page.frames).toEqual(new Uint8Array(want.flatMap((r) => [...r.body])));
    }
  });

  test("a refused row, a row out of order or under an ack drop the entry until the box is forgotten", () => {
    const h = new HotBacklog(1 << 20, 0);
    stored(h, [row(1), row(2)]);
    h.drop("u"); // e.g. the writer refused a row (inbox full)
    stored(h, [row(3)]);
    expect(h.page("u", 2, 10, 1 << 20, NOW, false)).toBeNull();
    h.forget("u"); // the box went: a new box starts afresh
    stored(h, [row(21)], 21);
    expect(seqsOf(h.page("u", 20, 10, 1 << 20, NOW, false))).toEqual([21]);

    stored(h, [row(23)], 21);
    stored(h, [row(22)], 21); // a live delivery spilled after a later row: not mirrored
    expect(h.page("u", 20, 10, 1 << 20, NOW, false)).toBeNull();

    const g = new HotBacklog(1 << 20, 0);
    stored(g, [row(1), row(2), row(3)]);
    g.deleted("u", 2);
    stored(g, [row(2)]); // below the ack's delete: the store makes it live again
    expect(g.page("u", 0, 10, 1 << 20, NOW, false)).toBeNull();
  });

  test("the same row committed again (a replay after a writer restart) is kept once", () => {
    const h = new HotBacklog(1 << 20, 0);
    stored(h, [row(1), row(2)]);
    h.storing("u", 1, 2, [row(2)]);
    h.committed([row(2)]);
    expect(seqsOf(h.page("u", 0, 10, 1 << 20, NOW, false))).toEqual([1, 2]);
  });

  test("a page that would hold a row past the TTL is left to the writer", () => {
    const h = new HotBacklog(1 << 20, 500);
    stored(h, [row(1, 8, "u", 1000), row(2, 8, "u", 1600)]);
    expect(seqsOf(h.page("u", 0, 10, 1 << 20, 1499, false))).toEqual([1, 2]);
    expect(h.page("u", 0, 10, 1 << 20, 1501, false)).toBeNull();
    expect(seqsOf(h.page("u", 1, 10, 1 << 20, 1501, false))).toEqual([2]);
  });

  test("a row past the TTL is found wherever it sits on the page (a clock that stepped back)", () => {
    const h = new HotBacklog(1 << 20, 500);
    stored(h, [row(1, 8, "u", 1600), row(2, 8, "u", 1000), row(3, 8, "u", 1700)]);
    expect(seqsOf(h.page("u", 0, 10, 1 << 20, 1499, false))).toEqual([1, 2, 3]);
    expect(h.page("u", 0, 10, 1 << 20, 1501, false)).toBeNull();
    expect(seqsOf(h.page("u", 0, 1, 1 << 20, 1501, false))).toEqual([1]); // row 2 is not on this page
    expect(seqsOf(h.page("u", 2, 10, 1 << 20, 1501, false))).toEqual([3]);
  });

  test("past the budget the oldest entries go whole; clear() drops every entry", () => {
    const h = new HotBacklog(64 * 1024, 0);
    for (const u of ["a", "b", "c"]) stored(h, Array.from({ length: 150 }, (_, i) => row(i + 1, 100, u)));
    expect(h.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(h.page("a", 0, 10, 1 << 20, NOW, false)).toBeNull();
    expect(seqsOf(h.page("c", 0, 2, 1 << 20, NOW, false))).toEqual([1, 2]);
    h.clear();
    expect([h.users, h.bytes]).toEqual([0, 0]);
    stored(h, [row(151, 8, "c")]);
    expect(h.page("c", 150, 10, 1 << 20, NOW, false)).toBeNull(); // dropped: not until forgotten
  });

  test("a budget of 0 keeps nothing", () => {
    const h = new HotBacklog(0, 0);
    stored(h, [row(1)]);
    expect([h.users, h.page("u", 0, 10, 1 << 20, NOW, false)]).toEqual([0, null]);
  });

  test("a page in the kept buffer leaves room for the bundle tag, and the whole-page bundle is a view of it", () => {
    const h = new HotBacklog(1 << 20, 0);
    const rows = [1, 2, 3].map((s) => row(s));
    stored(h, rows);
    const buffer = new PageBuffer(1 << 20);
    const p = h.page("u", 0, 10, 1 << 20, NOW, false, buffer)!.page;
    expect(p.tagRoom).toBe(true);
    const [bundle, ...rest] = frameBundles(p, 1 << 20);
    expect(rest).toEqual([]);
    expect(bundle!.buffer).toBe(p.frames.buffer); // no copy
    expect(bundle).toEqual(new Uint8Array([V1_BUNDLE_SERVER, ...framePage(rows).frames]));
    // Until the session gives it back, the next page gets a buffer of its own (it may be built
    // before the first is written: the shard's trampoline runs the writes after the owner's turn).
    expect(buffer.lent).toBe(true);
    const q = h.page("u", 1, 10, 1 << 20, NOW, false, buffer)!.page;
    expect(q.frames.buffer).not.toBe(p.frames.buffer);
    expect(q.release).toBeUndefined();
    expect(p.frames).toEqual(framePage(rows).frames); // the first page is intact
    expect(q.frames).toEqual(framePage(rows.slice(1)).frames);
    p.release!();
    const r = h.page("u", 2, 10, 1 << 20, NOW, false, buffer)!.page;
    expect(r.frames.buffer).toBe(p.frames.buffer); // given back: kept and lent again
    expect(r.frames).toEqual(framePage(rows.slice(2)).frames);
    // A page over the buffer's cap gets its own buffer, which is not kept.
    const small = new PageBuffer(16);
    const big = h.page("u", 0, 10, 1 << 20, NOW, true, small)!.page;
    expect([big.frames.byteLength, small.heldBytes, big.release]).toEqual([24, 0, undefined]);
  });

  test("a page from a port may not claim the tag's room", () => {
    const p = { ...framePage([row(1), row(2)]), tagRoom: true as const };
    expect(isFramePage(p)).toBe(false);
    // And a bundle is copied when the page does not own the byte before it.
    const own = framePage([row(1), row(2)]);
    const [b] = frameBundles(own, 1 << 20);
    expect(b!.buffer).not.toBe(own.frames.buffer);
    expect(b![0]).toBe(V1_BUNDLE_SERVER);
  });
});
