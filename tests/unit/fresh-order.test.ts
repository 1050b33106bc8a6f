// Per-sender order through a NATS restart at the owner (docs/CLUSTER.md, "Per-sender order through
// NATS restarts (branch cl-order4)"). An owner is wired as a cluster shard wires it
// (host/shard-host.ts: the dropped-sends fence in front of it, the fresh-box hook), driven message
// by message. Shape 1: sends numbered and forwarded live, dropped unanswered with the box at a cut,
// must reach the recipient before the sender's next send, which reaches the fresh box first.
// Shape 2: a row the dropped box stored late (its append retried through the outage) must be
// adopted before the fresh box numbers a later send of the same sender.

import { describe, expect, test } from "bun:test";
import { DROPPED_FENCE_MS, DroppedSends } from "../../src/cluster/dropped-sends.ts";
import { Owner, type OwnerLimits } from "../../src/router/owner.ts";
import type { PortMsg, RouteMsg, StoredRow, WriterReq } from "../../src/router/wire.ts";

const limits: OwnerLimits = {
  maxPending: 100,
  pageSize: 100,
  pageBytes: 1 << 20,
  maxFetches: 8,
  pendingSpillMs: 60_000,
  seqBlock: 100,
  recentIds: 1000,
  holdback: 100,
  slowTimeoutMs: 60_000,
  dedupeWindowMs: 600_000,
};

const route = (id: string, c = 7): RouteMsg => ({
  t: "route",
  to: "r",
  from: "s",
  id,
  body: new TextEncoder().encode(id),
  ts: 1,
  t0: 1,
  o: 1,
  c,
});

/** One owner shard of a cluster node: the owner, the dropped-sends fence in front, and what went out. */
function clusterShard(fresh: (user: string, done: () => void) => boolean = () => false) {
  const toShard: PortMsg[] = [];
  const toWriter: WriterReq[] = [];
  const parked: RouteMsg[] = [];
  const dropped = new DroppedSends();
  let now = 1000;
  const o = new Owner({
    self: 0,
    shards: 1,
    toShard: (_k, m) => toShard.push(m),
    toWriter: (m) => toWriter.push(m),
    now: () => now,
    underPressure: () => false,
    owns: () => true,
    park: (m) => parked.push(m),
    droppedUnanswered: (user, from, id) => dropped.dropped(user, from, id),
    freshBox: fresh,
  }, limits);
  /** What ShardCluster.holds does for a route (the dropped-sends part), then the owner. */
  const send = (m: RouteMsg) => {
    if (dropped.size > 0 && dropped.refuses(m.to, m.from, m.id, () => o.mayHaveNumbered(m.to, m.from, m.id), now)) {
      toShard.push({ t: "sendError", conn: m.c, id: m.id, code: "SERVER_BUSY", reason: "dropped" });
      return;
    }
    o.handle(m);
  };
  const load = (base: number) => o.handle({ t: "loaded", user: "r", seqBase: base, seqLimit: base + 99, lastSeen: 0 });
  const attach = (conn: number, resume: number) => {
    o.handle({ t: "attach", user: "r", shard: 2, conn, v0: false, resume });
    const fetch = toWriter.findLast((m) => m.t === "fetch");
    if (fetch?.t === "fetch") o.handle({ t: "rows", user: "r", gen: fetch.gen, rows: [], more: false });
  };
  /** Seqs delivered to the recipient or stored for it, by id, in seq order. */
  const numbered = () => {
    const out: [number, string][] = [];
    for (const m of toShard) if (m.t === "deliver") { for (const d of m.items) out.push([d.seq, d.id]); }
    for (const m of toWriter) if (m.t === "append") { for (const r of m.rows) out.push([r.seq, r.msgId]); }
    return out.sort((a, b) => a[0] - b[0]).map(([, id]) => id);
  };
  const refused = () => toShard.flatMap((m) => (m.t === "sendError" ? [m.id] : []));
  /** The store's dedupe window has none of the ids looked up (never stored nor delivered). */
  const answerLookups = () => {
    for (let i = 0; i < toWriter.length; i++) {
      const m = toWriter[i]!;
      if (m.t === "lookup") o.handle({ t: "lookedUp", user: m.user, from: m.from, id: m.id, seq: 0 });
    }
  };
  return {
    o,
    send,
    load,
    attach,
    numbered,
    refused,
    answerLookups,
    parked,
    dropped,
    toShard,
    toWriter,
    at: (t: number) => (now = t),
  };
}

describe("shape 1: sends dropped unanswered at a cut", () => {
  test("the sender's next send waits until the dropped ones come back, then all go in order", () => {
    const sh = clusterShard();
    sh.send(route("m0"));
    sh.load(1);
    sh.attach(9, 0); // live
    sh.send(route("m1"));
    sh.send(route("m2"));
    expect(sh.numbered()).toEqual(["m0", "m1", "m2"]); // all live, none acked by the recipient
    sh.o.handle({ t: "ack", user: "r", shard: 2, conn: 9, seq: 1 }); // m0 acked: settled
    // The cut: the box goes with m1 and m2 (numbered, forwarded, never answered, never stored).
    sh.o.dropMoved(() => true, false, true);
    sh.dropped.regained(2000);
    sh.at(2000);
    sh.toShard.length = 0;
    sh.toWriter.length = 0;
    // The fresh box: the recipient re-attaches, and the sender's next send arrives before its resends.
    sh.send(route("m3"));
    expect(sh.refused()).toEqual(["m3"]); // refused for now: the SDK retries its oldest unacked first
    sh.attach(10, 1);
    sh.load(101);
    sh.send(route("m1")); // the resends
    sh.send(route("m2"));
    sh.send(route("m3")); // the SDK's retry of the refused send
    sh.answerLookups(); // m1 and m2 may have been numbered before (the filter): the store says not settled
    expect(sh.numbered()).toEqual(["m1", "m2", "m3"]);
    expect(sh.dropped.size).toBe(0);
  });

  test("a refused send comes back before the sender's later sends, even when a dropped one returns between them", () => {
    // Split-brain seed 45854: the routes held at the cut run in one burst at the regain, the dropped
    // m0 among them behind m6..m18; m24 then passed and was numbered before the retried m6.
    const sh = clusterShard();
    sh.send(route("a"));
    sh.load(1);
    sh.attach(9, 0);
    sh.o.handle({ t: "ack", user: "r", shard: 2, conn: 9, seq: 1 }); // a acked: settled
    sh.send(route("m0"));
    expect(sh.numbered()).toEqual(["a", "m0"]); // m0 live, never acked
    sh.o.dropMoved(() => true, false, true);
    sh.dropped.regained(2000);
    sh.at(2000);
    sh.toShard.length = 0;
    sh.toWriter.length = 0;
    sh.attach(10, 0);
    sh.load(101);
    for (const id of ["m6", "m12", "m18", "m0", "m24", "m6", "m30"]) sh.send(route(id)); // the parked burst
    sh.answerLookups();
    expect(sh.refused()).toEqual(["m6", "m12", "m18", "m24", "m30"]);
    expect(sh.numbered()).toEqual(["m0", "m6"]); // m6's second copy was the oldest refused one
    for (const id of ["m12", "m18", "m24", "m30"]) sh.send(route(id)); // the SDK's retries, oldest first
    sh.answerLookups();
    expect(sh.numbered()).toEqual(["m0", "m6", "m12", "m18", "m24", "m30"]);
    expect(sh.dropped.size).toBe(0);
  });

  test("a refused send waits for its turn: a later refused one coming back first is refused again", () => {
    const d = new DroppedSends();
    d.dropped("r", "s", "m0");
    d.regained(0);
    const refuses = (id: string) => d.refuses("r", "s", id, () => false, 1);
    expect(refuses("m1")).toBe(true);
    expect(refuses("m2")).toBe(true);
    expect(refuses("m0")).toBe(false); // dropped: back
    expect(refuses("m2")).toBe(true); // m1 first
    expect(refuses("m1")).toBe(false);
    expect(refuses("m2")).toBe(false);
    expect(d.size).toBe(0);
    expect(refuses("m3")).toBe(false);
  });

  test("an older send coming back passes; other senders and recipients are not held; the fence lifts in time", () => {
    const sh = clusterShard();
    sh.send(route("m0"));
    sh.load(1);
    sh.attach(9, 0);
    sh.send(route("m1"));
    sh.o.dropMoved(() => true, false, true);
    sh.dropped.regained(2000);
    sh.at(2000);
    sh.toShard.length = 0;
    sh.send(route("m0")); // numbered before (the filter knows it): a resend, never held
    sh.send({ ...route("x1"), from: "other" });
    sh.send({ ...route("y1"), to: "q" });
    expect(sh.refused()).toEqual([]);
    sh.send(route("m2"));
    expect(sh.refused()).toEqual(["m2"]);
    sh.at(2000 + DROPPED_FENCE_MS); // m1 never came back (a sender without an SDK)
    sh.send(route("m2"));
    expect(sh.refused()).toEqual(["m2"]);
    expect(sh.dropped.size).toBe(0);
  });
});

describe("shape 2: a late row of the dropped box", () => {
  const lateRow = (seq: number, id: string): StoredRow => ({
    recipient: "r",
    seq,
    sender: "s",
    msgId: id,
    ts: 1,
    body: new TextEncoder().encode(id),
  });

  test("a fresh box adopts the late rows its re-read finds before it numbers the sender's next send", () => {
    let settled: (() => void) | null = null;
    const sh = clusterShard((_user, done) => (settled = done, true));
    sh.send(route("m2")); // the fresh box's first route: waits for the load
    sh.load(101);
    expect(sh.numbered()).toEqual([]); // not numbered yet: the re-read runs first
    // The writer's re-read (behind the dropped box's append of m1, which landed) finds m1, late.
    expect(sh.o.adoptLate("r", [lateRow(57, "m1")])).toEqual([101]);
    settled!();
    expect(sh.numbered()).toEqual(["m1", "m2"]);
    expect(sh.toShard.filter((m) => m.t === "sent")).toEqual([]); // m1's sender heard "stored" already
  });

  test("with the recipient attached to the fresh box, the adopted row goes out first too", () => {
    let settled: (() => void) | null = null;
    const sh = clusterShard((_user, done) => (settled = done, true));
    sh.o.handle({ t: "attach", user: "r", shard: 2, conn: 9, v0: false, resume: 56 });
    sh.send(route("m2"));
    sh.load(101);
    expect(sh.o.adoptLate("r", [lateRow(57, "m1")])).toEqual([101]);
    settled!();
    const fetch = sh.toWriter.findLast((m) => m.t === "fetch");
    if (fetch?.t === "fetch") sh.o.handle({ t: "rows", user: "r", gen: fetch.gen, rows: [], more: false });
    const delivered = sh.toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => d.id) : []));
    expect(delivered).toEqual(["m1", "m2"]);
  });

  test("outside a settle window the box numbers at once (the hook says no)", () => {
    const sh = clusterShard(() => false);
    sh.send(route("m2"));
    sh.load(101);
    expect(sh.numbered()).toEqual(["m2"]);
  });
});
