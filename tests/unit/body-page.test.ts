// A v0 link's backlog pages as the rows' bodies alone (store/inbox-log.ts fetchBodyBlobs,
// router/blob-page.ts pageOfBodyBlobs, FramePage.bodies; issue 14): the bytes are exactly the
// framed page's bodies joined (what a v0 socket got before), cut at the same row with the same
// seqs, `more` and byte count; from the index, the tail, both, past a watermark, rows without a
// head included; null for a tail row below indexed ones and for stretches whose seqs and lengths
// do not add up. The shard side: the owner's slice keeps the flag, the page writes as it is to v0,
// and a non-v0 connection refuses it; a page read ahead as bodies goes only to a fetch for bodies.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pageOfBlobs, pageOfBodyBlobs } from "../../src/router/blob-page.ts";
import { framesAfter, isFramePage, joinedBodies } from "../../src/router/frame-page.ts";
import type { FetchReq, StoredRow } from "../../src/router/wire.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { migrate, MIGRATIONS } from "../../src/store/migrations.ts";
import { PageAhead } from "../../src/store/page-ahead.ts";
import { framePageOf } from "../../src/store/writer.ts";
import { writeFramePage } from "../../src/gateway/page-writer.ts";
import type { Transport } from "../../src/gateway/transports.ts";

const root = mkdtempSync(join(tmpdir(), `iris-bodypage-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fileNo = 0;
const open = (path = join(root, `case-${++fileNo}.db`)) =>
  InboxStore.open(path, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });

function row(recipient: string, seq: number): StoredRow {
  // Bodies of varied sizes (0 to 300 bytes, NUL bytes and invalid UTF-8 included).
  const body = new Uint8Array((seq * 37) % 301).map((_, i) => (seq + i * 131) & 255);
  return { recipient, seq, sender: `s${seq % 3}`, msgId: `m-${seq}`, ts: 1e12 + seq, body };
}
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** The bodies page, and the framed page read row by row (what a v0 link got before). */
function bothWays(s: InboxStore, user: string, after: number, limit: number, maxBytes: number) {
  const stretches = s.fetchBodyBlobs(user, after, limit);
  const byBody = stretches === null ? null : pageOfBodyBlobs(stretches, limit, maxBytes, after);
  const byRow = framePageOf(s.fetchFrameRows(user, after, limit), limit, maxBytes);
  return { stretches, byBody, byRow };
}
function expectSame(s: InboxStore, user: string, after: number, limit: number, maxBytes: number): void {
  const { byBody, byRow } = bothWays(s, user, after, limit, maxBytes);
  expect(byBody).not.toBeNull();
  expect(byBody!.frames.bodies).toBe(true);
  expect(isFramePage(byBody!.frames)).toBe(true);
  expect([...byBody!.frames.seqs]).toEqual([...byRow.frames.seqs]);
  expect([...joinedBodies(byBody!.frames)]).toEqual([...joinedBodies(byRow.frames)]);
  expect([byBody!.more, byBody!.bytes]).toEqual([byRow.more, byRow.bytes]);
}

describe("v0 body pages", () => {
  test("tail, index, both and watermark: the framed page's bodies, cut at the same row", () => {
    const s = open();
    s.transaction(() => s.append(range(1, 40).map((q) => row("bob", q))));
    s.transaction(() => s.append(range(1, 5).map((q) => row("ann", q)))); // another user's ids between
    s.transaction(() => s.append(range(41, 60).map((q) => row("bob", q))));
    const budgets = [[0, 100, 1 << 20], [3, 25, 1 << 20], [0, 60, 3000], [10, 7, 1], [59, 10, 1e6]];
    expect(s.fetchBodyBlobs("bob", 0, 100)!.length).toBe(2); // two runs of ids in the tail
    for (const [after, limit, maxBytes] of budgets) expectSame(s, "bob", after!, limit!, maxBytes!);
    s.transaction(() => s.buildInboxIndex());
    s.transaction(() => s.append(range(61, 70).map((q) => row("bob", q))));
    expect(s.fetchBodyBlobs("bob", 0, 100)!.length).toBe(2); // the indexed stretch, then the tail's run
    for (const [after, limit, maxBytes] of [...budgets, [55, 10, 1 << 20], [0, 70, 1 << 20]]) {
      expectSame(s, "bob", after!, limit!, maxBytes!);
    }
    s.deleteUpTo("bob", 30); // a watermark: rows at or below it read as gone
    expect(bothWays(s, "bob", 0, 100, 1 << 20).byBody!.frames.seqs[0]).toBe(31);
    expectSame(s, "bob", 0, 100, 1 << 20);
    expect(bothWays(s, "nobody", 0, 10, 1000).byBody!.frames.seqs.length).toBe(0);
    s.close();
  });

  test("rows stored without a head read as bodies too; a tail row below indexed ones gives null", () => {
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
    expect(s.fetchFrameBlobs("old", 0, 10)).toBeNull(); // no heads: frames must be read row by row
    expectSame(s, "old", 0, 10, 1 << 20); // the bodies need none
    s.transaction(() => s.append(range(30, 31).map((q) => row("late", q))));
    s.transaction(() => s.buildInboxIndex());
    s.transaction(() => s.append([row("late", 29)]));
    expect(s.fetchBodyBlobs("late", 0, 10)).toBeNull();
    expectSame(s, "late", 29, 10, 1 << 20);
    s.close();
  });

  test("stretches whose seqs, lengths and bytes do not agree, or not above the cursor, give null", () => {
    const b = Uint8Array.from([1, 2, 3, 4, 5]);
    const ok = pageOfBodyBlobs([{ b, s: "[3,4]", z: "[2,3]" }], 10, 1e9, 0)!;
    expect([...ok.frames.seqs, ...ok.frames.ends]).toEqual([3, 4, 2, 5]);
    expect(pageOfBodyBlobs([{ b, s: "[3,4]", z: "[2,2]" }], 10, 1e9, 0)).toBeNull(); // 4 of 5 bytes
    expect(pageOfBodyBlobs([{ b, s: "[3]", z: "[2,3]" }], 10, 1e9, 0)).toBeNull(); // one seq, two lengths
    expect(pageOfBodyBlobs([{ b, s: "[4,3]", z: "[2,3]" }], 10, 1e9, 0)).toBeNull(); // descending
    expect(pageOfBodyBlobs([{ b, s: "[3,4]", z: "[2,3]" }], 10, 1e9, 3)).toBeNull(); // not above the cursor
    expect(pageOfBodyBlobs([{ b, s: "[3,4", z: "[2,3]" }], 10, 1e9, 0)).toBeNull(); // not JSON
    expect(pageOfBodyBlobs([{ b, s: "[3,4.5]", z: "[2,3]" }], 10, 1e9, 0)).toBeNull();
    const two = pageOfBodyBlobs([{ b, s: "[3,4]", z: "[2,3]" }, { b: b.slice(0, 1), s: "[9]", z: "[1]" }], 3, 1e9, 0)!;
    expect([[...two.frames.seqs], [...two.frames.frames], two.more]).toEqual([[3, 4, 9], [1, 2, 3, 4, 5, 1], true]);
    expect(pageOfBodyBlobs([{ b, s: "[3,4]", z: "[2,3]" }, { b, s: "[2,9]", z: "[2,3]" }], 9, 1e9, 0)).toBeNull();
    // Not valid as frames, so no frame walk could take it for a framed page either.
    expect(pageOfBlobs([b], 10, 1e9, 0)).toBeNull();
  });

  test("the owner's slice keeps the flag; v0 writes the bytes as they are; other encodings refuse", () => {
    const page = pageOfBodyBlobs([{ b: Uint8Array.from([1, 2, 3, 4, 5]), s: "[3,4]", z: "[2,3]" }], 10, 1e9, 0)!;
    const rest = framesAfter(page.frames, 3);
    expect([rest.bodies, [...rest.seqs], [...rest.frames]]).toEqual([true, [4], [3, 4, 5]]);
    const sent: Uint8Array[] = [];
    const t: Transport = {
      send: (d) => (sent.push(d as Uint8Array), 1),
      getBufferedAmount: () => 0,
      close: () => {},
      pause: () => {},
      resume: () => {},
    };
    expect(writeFramePage(t, "v0", false, page.frames)).toBe(true); // over WebSocket: one message each
    expect(sent.map((m) => [...m])).toEqual([[1, 2], [3, 4, 5]]);
    sent.length = 0;
    for (const proto of ["v1", "json"] as const) expect(writeFramePage(t, proto, false, page.frames)).toBe(false);
    expect(writeFramePage(t, "v1", true, page.frames)).toBe(false);
    expect(sent.length).toBe(0);
  });

  test("a page read ahead as bodies goes only to a fetch that asked for bodies", () => {
    const page = pageOfBodyBlobs([{ b: Uint8Array.from([1, 2, 3]), s: "[5]", z: "[3]" }], 1, 1e9, 4)!;
    const fetch = (bodies?: boolean): FetchReq => ({
      t: "fetch",
      user: "u",
      after: 4,
      limit: 1,
      maxBytes: 1e9,
      gen: 1,
      ...(bodies === undefined ? {} : { bodies }),
    });
    const ahead = new PageAhead();
    ahead.put("u", 4, 1, 1e9, page);
    expect(ahead.take(fetch())).toBeUndefined();
    ahead.put("u", 4, 1, 1e9, page);
    expect(ahead.take(fetch(true))?.frames).toBe(page.frames);
  });
});
