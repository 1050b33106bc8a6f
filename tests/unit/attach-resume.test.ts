// The cursor of an attach that reaches a box still loading its seqs: the client's resume point,
// capped by the box's seqs only once they are known (docs/CLUSTER.md, "Cluster chaos": a cursor
// of 0 let an older claim's late rows be served below the client's last seq and acked away).

import { expect, test } from "bun:test";
import { defaultOwnerLimits } from "../../src/limits.ts";
import type { WriterReq } from "../../src/router/wire.ts";
import { recordingOwner } from "../helpers/owner-harness.ts";

const fetches = (w: WriterReq[]) => w.flatMap((m) => (m.t === "fetch" ? [m.after] : []));
const deletes = (w: WriterReq[]) => w.flatMap((m) => (m.t === "delete" ? [m.upTo] : []));

test("an attach to a loading box pages from the client's resume point and acks it once loaded", () => {
  const r = recordingOwner(defaultOwnerLimits);
  r.o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 7 });
  expect(r.toWriter[0]).toMatchObject({ t: "load", user: "u" }); // the page is read after the load
  expect(fetches(r.toWriter)).toEqual([7]);
  expect(deletes(r.toWriter)).toEqual([]); // not before the box knows its seqs
  r.o.handle({ t: "loaded", user: "u", seqBase: 21, seqLimit: 30, lastSeen: 0 });
  expect(deletes(r.toWriter)).toEqual([7]);
  r.o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
  r.o.handle({ t: "ack", user: "u", shard: 1, conn: 4, seq: 9 }); // beyond what was forwarded: ignored
  expect(deletes(r.toWriter)).toEqual([7]);
});

test("a resume beyond every seq handed out is still capped, once the load says where they end", () => {
  const r = recordingOwner(defaultOwnerLimits);
  r.o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 50 });
  r.o.handle({ t: "loaded", user: "u", seqBase: 10, seqLimit: 19, lastSeen: 0 });
  expect(deletes(r.toWriter)).toEqual([9]);
  r.o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
  r.o.handle({ t: "route", to: "u", from: "s", id: "", body: new Uint8Array(1), ts: 0, t0: 0, o: -1, c: 0 });
  const delivered = r.toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => d.seq) : []));
  expect(delivered).toEqual([10]); // live, above the capped cursor
});

test("a page answered before the load (SQLite: reads go before the group commit) is not acked by the load", () => {
  const r = recordingOwner(defaultOwnerLimits);
  r.o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 7 });
  const row = (seq: number) => ({ recipient: "u", seq, sender: "s", msgId: `m${seq}`, ts: 0, body: new Uint8Array(1) });
  r.o.handle({ t: "rows", user: "u", gen: 1, rows: [row(8), row(9)], more: false });
  r.o.handle({ t: "loaded", user: "u", seqBase: 10, seqLimit: 19, lastSeen: 0 });
  expect(deletes(r.toWriter)).toEqual([7]); // 8 and 9 wait for the client's ack
  r.o.handle({ t: "ack", user: "u", shard: 1, conn: 4, seq: 9 });
  expect(deletes(r.toWriter)).toEqual([7, 9]);
});

test("cluster: an attach above a ready box's seqs gives up the rest of its block and waits for a new one", () => {
  const { o, toShard, toWriter } = recordingOwner(defaultOwnerLimits, 1000, () => true);
  const route = (id: string) =>
    o.handle({ t: "route", to: "u", from: "s", id, body: new Uint8Array(1), ts: 0, t0: 0, o: -1, c: 0 });
  route("a"); // the box loads: seqs 1..1024; "a" is stored at 1
  o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 1024, lastSeen: 0 });
  o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 2000 }); // seen from another owner
  expect(toWriter.filter((m) => m.t === "load")).toHaveLength(2); // a new block is asked for
  expect(deletes(toWriter)).toEqual([]); // the resume point is not acked against the old block
  route("b"); // waits for the new block
  o.handle({ t: "loaded", user: "u", seqBase: 2049, seqLimit: 3072, lastSeen: 0 });
  expect(deletes(toWriter)).toEqual([2000]);
  const appended = toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => [r.msgId, r.seq]) : []));
  expect(appended).toEqual([["a", 1]]);
  o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
  const delivered = toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => [d.id, d.seq]) : []));
  expect(delivered).toEqual([["b", 2049]]);
});

test("cluster: a resume point above every seq ever handed out costs at most two reservations, then is capped", () => {
  const { o, toWriter } = recordingOwner(defaultOwnerLimits, 1000, () => true);
  const loads = () => toWriter.filter((m) => m.t === "load").length;
  o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 1e12 }); // a client's error
  o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 1024, lastSeen: 0 }); // asked before: once more
  expect(loads()).toBe(2);
  o.handle({ t: "loaded", user: "u", seqBase: 1025, seqLimit: 2048, lastSeen: 0 }); // asked after: the last word
  expect(loads()).toBe(2);
  expect(deletes(toWriter)).toEqual([1024]);
});
