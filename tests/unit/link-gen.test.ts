// A page read still in flight when its box is dropped (a cluster fence or placement change, an idle
// sweep) answers later. A fresh box for the same user must not take that answer for its own link's
// page: the old read started from the old link's cursor, at an older time, so taking it could skip
// rows (go live on an empty old page) or serve them from a point the new link never asked for.

import { expect, test } from "bun:test";
import { defaultOwnerLimits } from "../../src/limits.ts";
import type { FetchReq, StoredRow, WriterReq } from "../../src/router/wire.ts";
import { type RecordingOwner, recordingOwner } from "../helpers/owner-harness.ts";

const fetchesOf = (w: WriterReq[]) => w.filter((m): m is FetchReq => m.t === "fetch");
const row = (seq: number): StoredRow => ({
  recipient: "u",
  seq,
  sender: "s",
  msgId: `m${seq}`,
  ts: 0,
  body: new Uint8Array(1),
});
const deliveredTo = (r: RecordingOwner, conn: number) =>
  r.toShard.flatMap((m) => (m.t === "deliver" && m.conn === conn ? m.items.map((d) => d.seq) : []));

/** Attaches `conn` to a loaded box of "u" and returns the page read it asked for. */
function attachFetching(r: RecordingOwner, conn: number): FetchReq {
  r.o.handle({ t: "attach", user: "u", shard: 1, conn, v0: false, resume: 0 });
  r.o.handle({ t: "loaded", user: "u", seqBase: 11, seqLimit: 20, lastSeen: 0 });
  const f = fetchesOf(r.toWriter).at(-1);
  expect(f).toBeDefined();
  return f!;
}

/** The old read's answer (empty: read before rows 1 and 2 were stored) comes before the new read's. */
function answerOldThenNew(r: RecordingOwner, old: FetchReq, fresh: FetchReq): void {
  r.o.handle({ t: "rows", user: "u", gen: old.gen, rows: [], more: false });
  expect(deliveredTo(r, 5)).toEqual([]); // the old page is not the new link's
  r.o.handle({ t: "rows", user: "u", gen: fresh.gen, rows: [row(1), row(2)], more: false });
  expect(deliveredTo(r, 5)).toEqual([1, 2]); // its own page is served, then it goes live
  r.o.handle({ t: "route", to: "u", from: "s", id: "live", body: new Uint8Array(1), ts: 0, t0: 0, o: -1, c: 0 });
  expect(deliveredTo(r, 5)).toEqual([1, 2, 11]);
}

test("cluster: a fence drops the box with a page read in flight; the fresh box's link ignores its answer", () => {
  const r = recordingOwner(defaultOwnerLimits, 1000, () => true);
  const old = attachFetching(r, 4);
  r.o.dropMoved(() => true, false, true); // cut off: every box goes, the read stays in the writer
  const fresh = attachFetching(r, 5); // the regain: the session re-attaches to a fresh box
  answerOldThenNew(r, old, fresh);
});

test("one node: an idle sweep forgets a box whose released link's page read is still in flight", () => {
  const r = recordingOwner(defaultOwnerLimits);
  const old = attachFetching(r, 4);
  r.o.handle({ t: "detach", user: "u", shard: 1, conn: 4 });
  expect(r.o.sweep(0)).toBe(1); // the fixed clock: idle since now
  const fresh = attachFetching(r, 5);
  answerOldThenNew(r, old, fresh);
});
