// The nats-restart liveness fault (docs/CLUSTER.md, "A liveness fault under NATS restarts"): a box
// that waits on a dedupe lookup collects one copy per SDK resend of every unanswered send. Each copy
// used to cost a writer request of its own (a confirm) in the shard's ordered reply chain, so the
// box fell further behind than the resends came in. Now a copy joins its waiting twin, and a resend
// of an id numbered before this box (known from the store's durable record) is answered at once.

import { describe, expect, test } from "bun:test";
import { defaultOwnerLimits } from "../../src/router/owner.ts";
import type { PortMsg, RouteMsg } from "../../src/router/wire.ts";
import { WaitingCopies } from "../../src/router/route-copies.ts";
import { recordingOwner } from "../helpers/owner-harness.ts";

const route = (id: string, c: number, from = "s"): RouteMsg => ({
  t: "route",
  to: "u",
  from,
  id,
  body: new TextEncoder().encode(id),
  ts: 1,
  t0: 1,
  o: 1,
  c,
});

const sentAcks = (out: PortMsg[]) => out.flatMap((m) => (m.t === "sent" ? [`${m.id}:${m.status}:${m.conn}`] : []));

/** An owner whose box for "u" got its first block at seq 100, with the dedupe filter still rebuilding. */
function regained() {
  const r = recordingOwner({ ...defaultOwnerLimits, seqBlock: 1000 });
  r.o.startDedupeScan(); // every id with an id is looked up, as after a cut
  r.o.handle(route("first", 1)); // creates the box (its load goes out)
  r.o.handle({ t: "loaded", user: "u", seqBase: 100, seqLimit: 1099, lastSeen: 0 });
  return r;
}

describe("a long queue behind lookups", () => {
  test("it moves on from its head as answers come, in order, its lookups asked as room frees, copies absorbed", () => {
    const { o, toShard, toWriter } = regained();
    // 600 sends wait behind "first" (more than the 256 lookups a box asks ahead).
    const ids = Array.from({ length: 600 }, (_, i) => `m${i}`);
    for (const id of ids) o.handle(route(id, 1));
    const lookups = () => toWriter.flatMap((m) => (m.t === "lookup" ? [m.id] : []));
    expect(lookups().length).toBe(257); // "first", and 256 asked ahead
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "first", seq: 0 });
    // Each answer numbers the queue's head; the next ids ask for their lookups as room frees up.
    for (const id of ids) {
      o.handle({ t: "lookedUp", user: "u", from: "s", id, seq: 0 });
      if (id === "m100") {
        // The SDK resends everything still unanswered: each copy joins its waiting twin.
        for (const c of ids.slice(101)) o.handle(route(c, 2));
      }
    }
    expect(lookups()).toEqual(["first", ...ids]); // each asked once, in queue order
    const numbered = toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => r.msgId) : []));
    expect(numbered).toEqual(["first", ...ids]); // seqs in the order the sends came
    expect(toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => r.seq) : []))).toEqual(
      Array.from({ length: 601 }, (_, i) => 100 + i),
    );
    expect(o.waitingBytes).toBe(0); // nothing left waiting
    expect(toShard.filter((m) => m.t === "sent")).toEqual([]); // stored rows are answered by the writer
  });
});

describe("resent copies of a waiting route", () => {
  test("copies join their twin: one answer, to the newest connection, and no writer request per copy", () => {
    const { o, toShard, toWriter } = regained();
    expect(toWriter.filter((m) => m.t === "lookup").map((m) => (m as { id: string }).id)).toEqual(["first"]);
    // The sender's SDK resends "first" and "second" every second while the lookup is slow.
    for (let i = 0; i < 50; i++) {
      o.handle(route("first", 10 + i));
      o.handle(route("second", 10 + i));
    }
    const before = toWriter.length;
    // Both were stored by an earlier owner (seqs 7 and 8, below this box's block).
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "first", seq: 7 });
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "second", seq: 8 });
    const asked = toWriter.slice(before).map((m) => m.t);
    expect(asked.filter((t) => t === "confirm")).toEqual([]); // was 100: one per copy
    expect(asked.filter((t) => t === "lookup")).toEqual([]); // "second" was asked once, ahead
    expect(toWriter.flatMap((m) => (m.t === "lookup" ? [m.id] : []))).toEqual(["first", "second"]);
    expect(sentAcks(toShard)).toEqual(["first:duplicate:59", "second:duplicate:59"]);
  });

  test("a new id's copies are numbered once and answered once", () => {
    const { o, toShard, toWriter } = regained();
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false }); // drained: live
    for (let i = 0; i < 5; i++) o.handle(route("fresh", 20 + i));
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "first", seq: 0 });
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "fresh", seq: 0 });
    const numbered = toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => `${r.msgId}@${r.seq}`) : []));
    const delivered = toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => `${d.id}@${d.seq}`) : []));
    // Live: each goes out once, in order (its ack waits for the recipient's).
    expect([...numbered, ...delivered].sort()).toEqual(["first@100", "fresh@101"]);
    expect(sentAcks(toShard)).toEqual([]); // answered when stored or acked, never per copy
  });

  test("a resend of an id this box numbered itself still asks the writer (its record may not be durable yet)", () => {
    const { o, toWriter } = regained();
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "first", seq: 0 }); // new: seq 100, stored
    const before = toWriter.length;
    o.handle(route("first", 30));
    expect(toWriter.slice(before).map((m) => m.t)).toEqual(["confirm"]);
  });

  test("lookups go ahead for every waiting route; answers are taken in the routes' order", () => {
    const { o, toShard, toWriter } = regained();
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false }); // drained: live
    for (const id of ["a", "b", "c"]) o.handle(route(id, 40));
    // All four lookups are asked now, not one per answer.
    expect(toWriter.flatMap((m) => (m.t === "lookup" ? [m.id] : []))).toEqual(["first", "a", "b", "c"]);
    // Answers out of order: nothing is numbered before the head's answer, then all in route order.
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "c", seq: 0 });
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "a", seq: 0 });
    expect(toShard.filter((m) => m.t === "deliver")).toEqual([]);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "first", seq: 0 });
    const order = () => toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => `${d.id}@${d.seq}`) : []));
    expect(order()).toEqual(["first@100", "a@101"]); // "b" is still unanswered: "c" waits behind it
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "b", seq: 5 }); // stored by an earlier owner
    expect(order()).toEqual(["first@100", "a@101", "c@102"]);
    expect(sentAcks(toShard)).toEqual(["b:duplicate:40"]);
    expect(toWriter.filter((m) => m.t === "lookup").length).toBe(4); // none asked twice
  });

  test("after a writer restart the lookups asked ahead are asked again in turn", () => {
    const { o, toWriter } = regained();
    o.handle(route("a", 40));
    o.writerRestarted();
    const again = () => toWriter.flatMap((m) => (m.t === "lookup" ? [m.id] : []));
    expect(again()).toEqual(["first", "a", "first"]);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "first", seq: 0 });
    expect(again()).toEqual(["first", "a", "first", "a"]);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "a", seq: 0 });
    const numbered = toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => `${r.msgId}@${r.seq}`) : []));
    expect(numbered).toEqual(["first@100", "a@101"]);
  });

  test("WaitingCopies: a copy with no ack due never takes the twin's ack away; ids are per sender", () => {
    const w = new WaitingCopies<object>();
    const box = {};
    const twin = route("m", 1);
    w.add(box, twin);
    expect(w.absorb(box, { ...route("m", 2), o: -1 }, null)).toBe(true);
    expect(twin.c).toBe(1);
    expect(w.absorb(box, route("m", 3, "other"), null)).toBe(false);
    expect(w.absorb(box, { ...route("", 4) }, null)).toBe(false);
    w.clear(box);
    expect(w.absorb(box, route("m", 5), null)).toBe(false);
  });
});
