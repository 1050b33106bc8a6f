// Backlog pages read as SQLite-joined blobs of whole frames (store/inbox-log.ts fetchFrameBlobs,
// router/blob-page.ts; issue 14): the same page, byte for byte and cut at the same row, as the
// row-by-row read; from the index, from the tail's runs of ids, both, past a watermark; null (rows
// read one by one) for rows without a stored head, for a tail row below indexed ones, and for frames
// that are not whole or not in seq order.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROW_OVERHEAD_BYTES } from "../../src/limits.ts";
import { pageOfBlobs } from "../../src/router/blob-page.ts";
import { framePage, isFramePage } from "../../src/router/frame-page.ts";
import type { StoredRow } from "../../src/router/wire.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { migrate, MIGRATIONS } from "../../src/store/migrations.ts";
import { framePageOf } from "../../src/store/writer.ts";

const root = mkdtempSync(join(tmpdir(), `iris-blobpage-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fileNo = 0;
const open = (path = join(root, `case-${++fileNo}.db`)) =>
  InboxStore.open(path, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });

const enc = new TextEncoder();
function row(recipient: string, seq: number): StoredRow {
  // Bodies of varied sizes (0 to 300 bytes, NUL bytes and invalid UTF-8 included) and non-ASCII names.
  const body = new Uint8Array((seq * 37) % 301).map((_, i) => (seq + i * 131) & 255);
  return {
    recipient,
    seq,
    sender: seq % 5 === 0 ? "žofie" : `s${seq % 3}`,
    msgId: `m-${seq}-🙂`,
    ts: 1e12 + seq,
    body,
  };
}
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** The page both ways: the blobs walked, and the row-by-row read (the writer's fallback). */
function bothWays(s: InboxStore, user: string, after: number, limit: number, maxBytes: number) {
  const blobs = s.fetchFrameBlobs(user, after, limit);
  const byBlob = blobs === null ? null : pageOfBlobs(blobs, limit, maxBytes, after);
  const byRow = framePageOf(s.fetchFrameRows(user, after, limit), limit, maxBytes);
  return { blobs, byBlob, byRow };
}
const plain = (p: { frames: { seqs: Float64Array; frames: Uint8Array; ends: Uint32Array } }) => ({
  seqs: [...p.frames.seqs],
  frames: [...p.frames.frames],
  ends: [...p.frames.ends],
});

describe("blob pages", () => {
  test("tail, index and watermark: the same page as the row read, cut at the same row", () => {
    const s = open();
    s.transaction(() => s.append(range(1, 40).map((q) => row("bob", q))));
    s.transaction(() => s.append(range(1, 5).map((q) => row("ann", q)))); // another user's ids between
    s.transaction(() => s.append(range(41, 60).map((q) => row("bob", q))));
    const cases = () => {
      for (
        const [after, limit, maxBytes] of [[0, 100, 1 << 20], [3, 25, 1 << 20], [0, 60, 3000], [10, 7, 1], [
          59,
          10,
          1e6,
        ]]
      ) {
        const { blobs, byBlob, byRow } = bothWays(s, "bob", after!, limit!, maxBytes!);
        expect(blobs).not.toBeNull();
        expect(plain(byBlob!)).toEqual(plain(byRow));
        expect([byBlob!.more, byBlob!.bytes]).toEqual([byRow.more, byRow.bytes]);
        expect(isFramePage(byBlob!.frames)).toBe(true);
      }
    };
    expect(s.fetchFrameBlobs("bob", 0, 100)!.length).toBe(2); // two runs of ids in the tail
    cases();
    s.transaction(() => s.buildInboxIndex());
    expect(s.fetchFrameBlobs("bob", 0, 100)!.length).toBe(1); // one indexed stretch
    cases();
    s.deleteUpTo("bob", 30); // a watermark: rows at or below it read as gone
    const { byBlob, byRow } = bothWays(s, "bob", 0, 100, 1 << 20);
    expect(byBlob!.frames.seqs[0]).toBe(31);
    expect(plain(byBlob!)).toEqual(plain(byRow));
    expect(bothWays(s, "nobody", 0, 10, 1000).byBlob!.frames.seqs.length).toBe(0);
    s.close();
  });

  test("the frames are the ones framePage encodes, and the cut page's view survives a transfer", async () => {
    const s = open();
    const rows = range(1, 30).map((q) => row("u", q));
    s.transaction(() => s.append(rows));
    const p = pageOfBlobs(s.fetchFrameBlobs("u", 0, 30)!, 30, 1 << 20, 0)!;
    expect(plain(p)).toEqual(plain({ frames: framePage(rows) }));
    const budget = rows.slice(0, 12).reduce((n, r) => n + r.body.byteLength + ROW_OVERHEAD_BYTES, 0);
    const cut = pageOfBlobs(s.fetchFrameBlobs("u", 0, 30)!, 30, budget, 0)!;
    expect([cut.frames.seqs.length, cut.more]).toEqual([12, true]);
    const { port1, port2 } = new MessageChannel();
    const got = new Promise<unknown>((resolve) => (port2.onmessage = (e) => resolve(e.data)));
    const f = cut.frames;
    port1.postMessage(f, [f.seqs.buffer as ArrayBuffer, f.frames.buffer as ArrayBuffer, f.ends.buffer as ArrayBuffer]);
    const back = await got;
    expect(isFramePage(back)).toBe(true);
    expect(plain({ frames: back as typeof f })).toEqual(plain({ frames: framePage(rows.slice(0, 12)) }));
    port1.close();
    s.close();
  });

  test("rows without a stored head, or a tail row below indexed ones, are read row by row", () => {
    const path = join(root, `case-${++fileNo}.db`);
    const d = new Database(path, { create: true });
    migrate(d, MIGRATIONS.slice(0, 5));
    const ins = d.prepare(
      "INSERT INTO inbox_log (id, recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    for (const q of range(1, 5)) {
      const r = row("old", q);
      ins.run(q, r.recipient, r.seq, r.sender, r.msgId, r.ts, r.body);
    }
    d.close();
    const s = open(path);
    expect(s.fetchFrameBlobs("old", 0, 10)).toBeNull(); // migrated rows have no head
    s.transaction(() => s.append(range(1, 10).map((q) => row("mix", q))));
    s.transaction(() => s.buildInboxIndex());
    s.transaction(() => s.append(range(11, 20).map((q) => row("mix", q))));
    // Indexed 1–10 and tail 11–20: the indexed blob, then the tail's, as the row read merges them.
    for (const [after, limit] of [[0, 20], [0, 5], [4, 12], [10, 20]]) {
      const { blobs, byBlob, byRow } = bothWays(s, "mix", after!, limit!, 1 << 20);
      expect(blobs!.length).toBe(after! + limit! <= 10 || after! >= 10 ? 1 : 2);
      expect(plain(byBlob!)).toEqual(plain(byRow));
    }
    // A row stored out of seq order lands in the tail below indexed ones: only the row read merges it.
    s.transaction(() => s.append(range(30, 31).map((q) => row("late", q))));
    s.transaction(() => s.buildInboxIndex());
    s.transaction(() => s.append([row("late", 29)]));
    expect(s.fetchFrameBlobs("late", 0, 10)).toBeNull();
    expect(plain(bothWays(s, "late", 29, 10, 1 << 20).byBlob!)).toEqual(plain(bothWays(s, "late", 29, 10, 1e6).byRow));
    s.close();
  });

  test("frames that are not whole, or not above the cursor in ascending order, give null", () => {
    const rows = range(1, 4).map((q) => row("u", q));
    const frames = framePage(rows).frames;
    expect(pageOfBlobs([frames], 10, 1e9, 0)!.frames.seqs.length).toBe(4);
    expect(pageOfBlobs([frames.subarray(0, frames.length - 1)], 10, 1e9, 0)).toBeNull(); // cut short
    expect(pageOfBlobs([frames], 10, 1e9, 1)).toBeNull(); // seq 1 is not above the cursor
    const twice = framePage([rows[1]!, rows[0]!]).frames; // 2 then 1
    expect(pageOfBlobs([twice], 10, 1e9, 0)).toBeNull();
    const split = framePage(rows.slice(0, 2)).frames;
    expect(pageOfBlobs([split, framePage(rows.slice(2)).frames], 10, 1e9, 0)!.frames.seqs).toEqual(
      Float64Array.from([1, 2, 3, 4]),
    );
    const bad = frames.slice();
    bad[0] = 0x41; // not a DELIVER
    expect(pageOfBlobs([bad], 10, 1e9, 0)).toBeNull();
    expect(pageOfBlobs([enc.encode("\x42")], 10, 1e9, 0)).toBeNull();
  });
});
