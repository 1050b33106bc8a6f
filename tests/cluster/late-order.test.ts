// Per-sender order for adopted late rows (docs/CLUSTER.md, "Per-sender order for adopted late
// rows"), against a real nats-server: an old owner's writer stores m1 of sender s after the new
// owner went live for the recipient (its view lagged: a late row), s heard "stored" and sends m2,
// which reaches the new owner. The recipient must see m1 before m2.

import { describe, expect, test } from "bun:test";
import {
  GATE_POLL_MS,
  GATE_WAIT_MS,
  gatesLink,
  LateHeard,
  linkDrained,
  mayMeetLateRows,
  OrderGate,
} from "../../src/cluster/order-gate.ts";
import { SETTLE_MS } from "../../src/cluster/handover.ts";
import { Owner, type OwnerLimits } from "../../src/router/owner.ts";
import { isOwnerMsg, type PortMsg, type RouteMsg, type WriterReq } from "../../src/router/wire.ts";
import { natsLinkForFile, openJsWriter } from "../helpers/js-writer-fixture.ts";
import { until } from "../helpers/server.ts";

const limits: OwnerLimits = {
  maxPending: 8,
  pageSize: 10,
  pageBytes: 1 << 20,
  maxFetches: 8,
  pendingSpillMs: 1000,
  seqBlock: 10,
  recentIds: 100,
  holdback: 4,
  slowTimeoutMs: 5000,
  dedupeWindowMs: 60_000,
};

const link = natsLinkForFile("a");

const writer = () => openJsWriter(link());

/** Polls until `cond` holds (the shared `until`, with this file's default wait). */
const waitUntil = (cond: () => boolean, ms = 10_000) => until(cond, "the condition", ms);

/** A writer standing for an old owner: its requests, and how many it answered "committed". */
async function oldOwner(): Promise<{ req: (m: WriterReq) => void; committed: () => number }> {
  const w = await writer();
  let n = 0;
  w.setPort(0, { postMessage: (msgs) => void (n += msgs.filter((m) => m.t === "committed").length) });
  return { req: (m) => w.receive(0, [m]), committed: () => n };
}

/**
 * The new owner: an Owner on its own JsWriter, wired as a cluster shard wires them
 * (shard-cluster.ts): routes pass the order gate, whose re-read is the writer's recheck.
 */
async function newOwner(movedAt = performance.now()) {
  const w = await writer();
  const toShard: PortMsg[] = [];
  let pages = 0;
  const o = new Owner({
    self: 0,
    shards: 1,
    toShard: (_k, m) => toShard.push(m),
    toWriter: (m) => w.receive(0, [m]),
    now: () => Date.now(),
    underPressure: () => false,
  }, limits);
  w.setPort(0, {
    postMessage: (msgs) => {
      for (const m of msgs) {
        if (m.t === "rows") pages++;
        if (isOwnerMsg(m)) o.handle(m);
        else toShard.push(m);
      }
    },
  });
  w.adopt = (user, rows) => o.adoptLate(user, rows);
  const gate = new OrderGate({
    young: (user) => mayMeetLateRows(performance.now(), movedAt, w.claims.openedAt(user)),
    drained: (user) => o.isLive(user),
    reread: (user, done) => w.recheck(user, 0, done),
    release: (routes) => routes.forEach((m) => o.handle(m)),
    refuse: () => {},
  });
  const route = (m: RouteMsg) => void (gate.take(m) || o.handle(m));
  const delivered = () => toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => `${d.id}@${d.seq}`) : []));
  return { w, o, route, delivered, pages: () => pages };
}

const send = (to: string, id: string): RouteMsg => ({
  t: "route",
  to,
  from: "s",
  id,
  body: new TextEncoder().encode(id),
  ts: Date.now(),
  t0: 0,
  o: 0,
  c: 1,
});

describe("the order gate (pure)", () => {
  test("routes wait for a re-read that starts after them, in order; later ones for the next one", async () => {
    const reads: (() => void)[] = [];
    const released: string[] = [];
    let young = true;
    const g = new OrderGate({
      young: (u) => young && u !== "old",
      drained: () => true,
      reread: (_u, done) => void reads.push(done),
      release: (rs) => rs.forEach((r) => released.push(r.id)),
      refuse: () => {},
    });
    expect(g.take(send("old", "x"))).toBe(false); // a user this shard had before the move: not held
    expect(g.take(send("u", "1"))).toBe(true);
    expect(g.take(send("u", "2"))).toBe(true); // arrived after the read in flight was asked for
    expect(reads.length).toBe(1);
    reads[0]!(); // covers "1" only
    expect(released).toEqual(["1"]);
    expect(reads.length).toBe(2); // "2" gets a read of its own
    expect(g.take(send("u", "3"))).toBe(true); // behind "2", whatever the owner's view says now
    young = false;
    reads[1]!(); // "2" goes; the claim is no longer young: "3" goes with it, no third read
    expect(released).toEqual(["1", "2", "3"]);
    expect(reads.length).toBe(2);
    expect(g.size).toBe(0);
    expect(g.counters).toEqual({ held: 3, rereads: 2, timeouts: 0, refused: 0 });
  });

  test("at a cut the held routes are taken out in order, and the re-read in flight releases nothing", () => {
    // nats-restart: m62, m68 stayed held across a cut while the box's waiting m2..m56 were parked;
    // at the regain the parked ones were held again, behind m62 and m68.
    const reads: (() => void)[] = [];
    const released: string[] = [];
    const g = new OrderGate({
      young: () => true,
      drained: () => true,
      reread: (_u, done) => void reads.push(done),
      release: (rs) => rs.forEach((r) => released.push(r.id)),
      refuse: () => {},
    });
    for (const id of ["m62", "m68"]) g.take(send("u", id));
    g.take(send("v", "x1"));
    const parked = ["m2", "m8", ...g.takeAll().map((m) => m.id)]; // the box's waiting ones, then the gate's
    expect(parked).toEqual(["m2", "m8", "m62", "m68", "x1"]);
    expect(g.size).toBe(0);
    for (const done of reads) done(); // the old re-reads answer late
    expect(released).toEqual([]);
    // The regain: the parked routes come back in order, held again, released in that order.
    for (const id of parked) g.take(send(id === "x1" ? "v" : "u", id));
    for (let i = 0; i < reads.length; i++) reads[i]!();
    expect(released.filter((id) => id !== "x1")).toEqual(["m2", "m8", "m62", "m68"]);
  });

  test("a re-read that never answers lets its routes go after a while; past the cap, routes are refused", async () => {
    const released: string[] = [];
    const refused: string[] = [];
    const g = new OrderGate(
      {
        young: () => true,
        drained: () => true,
        reread: () => {},
        release: (rs) => rs.forEach((r) => released.push(r.id)),
        refuse: (m) => refused.push(m.id),
      },
      50,
      2,
    );
    expect(GATE_WAIT_MS).toBeGreaterThan(1000); // in production: a writer stalled by a NATS fault
    g.take(send("u", "1"));
    g.take(send("v", "2"));
    expect(g.take(send("u", "3"))).toBe(true);
    expect(refused).toEqual(["3"]);
    await Bun.sleep(150);
    expect(released).toEqual(["1", "2"]);
    expect(g.counters.timeouts).toBe(2);
  });

  test("a held user's re-read waits while its link drains; the time-out covers that wait", async () => {
    const reads: string[] = [];
    const released: string[] = [];
    let draining = true;
    const g = new OrderGate(
      {
        young: () => true,
        drained: (u) => u !== "d" || !draining,
        reread: (u, done) => (reads.push(u), done()),
        release: (rs) => rs.forEach((r) => released.push(r.id)),
        refuse: () => {},
      },
      400,
    );
    g.take(send("d", "1"));
    g.take(send("l", "2")); // a live user's read runs at once
    expect(reads).toEqual(["l"]);
    await Bun.sleep(GATE_POLL_MS * 3);
    expect(released).toEqual(["2"]);
    draining = false;
    await until(() => released.length === 2, "the drained user's route");
    expect(reads).toEqual(["l", "d"]);
    draining = true;
    g.take(send("d", "3")); // drains for longer than the gate waits: let go, counted
    await until(() => released.length === 3, "the timed-out route");
    expect(g.counters.timeouts).toBe(1);
    expect(reads).toEqual(["l", "d"]);
  });

  test("the gate holds routes for a live or draining link, not for a user with no link", () => {
    expect(gatesLink("live") && gatesLink("draining")).toBe(true);
    expect(gatesLink("none")).toBe(false);
    expect(linkDrained("draining")).toBe(false);
    expect(linkDrained("live") && linkDrained("none")).toBe(true);
  });

  test("a claim may meet late rows while owners just moved, if it is new", () => {
    expect(mayMeetLateRows(5000, 1000, undefined)).toBe(true); // no claim yet
    expect(mayMeetLateRows(5000, 1000, 3000)).toBe(true); // opened after the move
    expect(mayMeetLateRows(5000, 1000, 1000 - SETTLE_MS)).toBe(true); // an attach a little before our view moved
    expect(mayMeetLateRows(5000, 1000, 1000 - SETTLE_MS - 1)).toBe(false); // owned here from before
    expect(mayMeetLateRows(1000 + SETTLE_MS + 1, 1000, 3000)).toBe(false); // the move has settled
  });

  test("a late store announced by another owner gates its user for the settle window", () => {
    const h = new LateHeard();
    h.mark("u", 1000);
    h.mark("v", 2000);
    expect(h.recent("u", 1000 + SETTLE_MS)).toBe(true);
    expect(h.recent("u", 1001 + SETTLE_MS)).toBe(false);
    expect(h.recent("w", 1000)).toBe(false);
    h.mark("w", 2001 + SETTLE_MS); // prunes the ones heard too long ago
    expect(h.recent("v", 2001 + SETTLE_MS)).toBe(false);
    expect(h.recent("w", 2001 + SETTLE_MS)).toBe(true);
  });
});

describe("a late row of an old owner and a later send of the same sender", () => {
  test("the recipient sees them in the sender's order", async () => {
    const user = `olga${Date.now()}`;
    const a = await oldOwner();
    a.req({ t: "load", user, reserve: 10 }); // the old owner's claim: seqs 1..10
    const b = await newOwner();
    // The recipient's session attaches to the new owner (claim 11..20), which drains (nothing) and goes live.
    b.o.handle({ t: "attach", user, shard: 2, conn: 9, v0: false, resume: 0 });
    await waitUntil(() => b.pages() === 1);
    // The old owner's view lags: it numbers m1 (seq 1) and stores it after the new owner went live.
    a.req({
      t: "append",
      rows: [{ recipient: user, seq: 1, sender: "s", msgId: "m1", ts: Date.now(), body: new Uint8Array(1) }],
      o: [-1],
      c: [0],
    });
    await waitUntil(() => a.committed() === 1);
    // The sender heard "stored" for m1, and sends m2; its node's view already names the new owner.
    b.route(send(user, "m2"));
    // The old owner announced its late store: the new owner re-reads the inbox and adopts m1.
    b.w.recheck(user);
    await waitUntil(() => b.delivered().length === 2);
    expect(b.delivered().map((d) => d.split("@")[0])).toEqual(["m1", "m2"]);
  });

  test("late rows are adopted in their old owner's order, whatever order they landed in", async () => {
    const user = `petr${Date.now()}`;
    const a = await oldOwner();
    a.req({ t: "load", user, reserve: 10 });
    const b = await newOwner();
    b.o.handle({ t: "attach", user, shard: 2, conn: 9, v0: false, resume: 0 });
    await waitUntil(() => b.pages() === 1);
    // Two appends of the old owner; the first was retried and landed after the second.
    for (const [k, [seq, id]] of ([[3, "m3"], [2, "m2"]] as const).entries()) {
      a.req({
        t: "append",
        rows: [{ recipient: user, seq, sender: "s", msgId: id, ts: Date.now(), body: new Uint8Array(1) }],
        o: [-1],
        c: [0],
      });
      await waitUntil(() => a.committed() === k + 1);
    }
    b.route(send(user, "m4"));
    await waitUntil(() => b.delivered().length === 3);
    expect(b.delivered().map((d) => d.split("@")[0])).toEqual(["m2", "m3", "m4"]);
  });
});
