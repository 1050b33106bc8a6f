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
