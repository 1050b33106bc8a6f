// Disk-full decisions as pure logic: the planned reserve, a failed batch's answers, the back-off,
// and the owner refusing only what it would have stored (a full disk, or a store behind its budget).

import { describe, expect, test } from "bun:test";
import { diskState, planReserveBytes, reserveBytes } from "../../src/ops/disk.ts";
import { Owner, type OwnerLimits } from "../../src/router/owner.ts";
import { SMALL_LIMITS } from "../helpers/owner-harness.ts";
import { type PortMsg, refusalsOnly, type RouteMsg, type WriterReq } from "../../src/router/wire.ts";
import { Backoff, failureCode, planFailure } from "../../src/store/write-failure.ts";
import { packRemember } from "../../src/router/packed-keys.ts";

const MiB = 1048576;
const GiB = 1024 * MiB;

describe("free-space reserve", () => {
  test("5% of the disk within [64 MiB, 1 GiB], never above 25% of a tiny disk", () => {
    expect(planReserveBytes(100 * GiB)).toBe(1 * GiB);
    expect(planReserveBytes(10 * GiB)).toBe(512 * MiB);
    expect(planReserveBytes(1 * GiB)).toBe(64 * MiB);
    expect(planReserveBytes(100 * MiB)).toBe(25 * MiB);
    expect(reserveBytes(8, 100 * GiB)).toBe(8 * MiB);
    expect(reserveBytes(0, 100 * GiB)).toBe(0);
  });
  test("full below the reserve; a zero reserve never is", () => {
    expect(diskState(7 * MiB, 8 * MiB)).toBe("full");
    expect(diskState(8 * MiB, 8 * MiB)).toBe("ok");
    expect(diskState(0, 0)).toBe("ok");
  });
});

describe("a failed storage batch", () => {
  const row = (recipient: string, seq: number, msgId: string) => ({
    recipient,
    seq,
    sender: "s",
    msgId,
    ts: 1,
    body: new Uint8Array(1),
  });
  test("appends get typed errors, rejections and a commit count; other requests are retried", () => {
    const linkA = "A", linkB = "B";
    const ops: { k: string; r: WriterReq }[] = [
      { k: linkA, r: { t: "append", rows: [row("u", 5, "m1"), row("u", 6, "m2")], o: [1, -1], c: [9, 0] } },
      { k: linkA, r: { t: "delete", user: "u", upTo: 3 } },
      { k: linkB, r: { t: "append", rows: [row("v", 1, "m3")], o: [0], c: [4] } },
      { k: linkB, r: { t: "load", user: "w", reserve: 10 } },
      { k: linkA, r: { t: "remember", keys: [{ recipient: "u", sender: "s", msgId: "m0", seq: 4, ts: 1 }] } },
      // As a shard's port sends it: kept for the retry as the keys it holds.
      {
        k: linkB,
        r: packRemember({ t: "remember", keys: [{ recipient: "v", sender: "s", msgId: "p0", seq: 2, ts: 1 }] }),
      },
    ];
    const full = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
    expect(failureCode(full)).toBe("STORE_FULL");
    expect(failureCode(Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR_WRITE" }))).toBe(
      "SERVER_BUSY",
    );
    const plan = planFailure(ops, "STORE_FULL", (shard) => (shard === 0 ? linkA : linkB));
    expect(plan.rows).toBe(3);
    expect(plan.retry.map((x) => x.r.t)).toEqual(["delete", "load"]);
    const a = plan.replies.get(linkA)!;
    const b = plan.replies.get(linkB)!;
    // m1's sender lives on shard 1 (link B); m2 has no sender to answer; m3's on shard 0 (link A).
    expect(b.filter((m) => m.t === "sendError").map((m) => (m as { id: string }).id)).toEqual(["m1"]);
    expect(a.filter((m) => m.t === "sendError").map((m) => (m as { id: string }).id)).toEqual(["m3"]);
    expect(a.find((m) => m.t === "rejected")).toEqual({ t: "rejected", user: "u", seqs: [5, 6] });
    expect(b.find((m) => m.t === "rejected")).toEqual({ t: "rejected", user: "v", seqs: [1] });
    // Link A: one append and one remember, counted together and in order, as owners count them.
    expect(a.find((m) => m.t === "committed")).toEqual({ t: "committed", n: 2 });
    expect(plan.remembers.map((r) => r.keys[0]!.msgId)).toEqual(["m0", "p0"]);
    expect(plan.remembers[1]!.keys[0]).toMatchObject({ recipient: "v", sender: "s", msgId: "p0", seq: 2, ts: 1 });
    expect(b.find((m) => m.t === "committed")).toEqual({ t: "committed", n: 2 });
    expect(plan.replies.get(linkA)!.some((m) => m.t === "sent")).toBe(false);
  });
  test("back-off doubles from 50 ms to a 2 s cap and resets", () => {
    const b = new Backoff();
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([
      50,
      100,
      200,
      400,
      800,
      1600,
      2000,
    ]);
    expect(b.failing).toBe(true);
    b.reset();
    expect(b.failing).toBe(false);
    expect(b.next()).toBe(50);
  });
});

describe("owner with the store full, or behind its budget", () => {
  const limits: OwnerLimits = SMALL_LIMITS;
  function setup() {
    const toShard: { k: number; m: PortMsg }[] = [];
    const toWriter: WriterReq[] = [];
    const state = { full: true, behind: false, now: 1000 };
    const o = new Owner({
      self: 0,
      shards: 1,
      toShard: (k, m) => toShard.push({ k, m }),
      toWriter: (m) => toWriter.push(m),
      now: () => state.now,
      underPressure: () => false,
      storeRefusal: () => (state.full ? "full" : state.behind ? "behind" : null),
    }, limits);
    return { o, toShard, toWriter, state };
  }
  const route = (to: string, id: string, origin = 1): RouteMsg => ({
    t: "route",
    to,
    from: "s",
    id,
    body: new Uint8Array([1]),
    ts: 1000,
    t0: 1000,
    o: origin,
    c: 7,
  });
  /** The store behind its budget (--store-backlog-mb), the disk not full. */
  function behind() {
    const x = setup();
    x.state.full = false;
    x.state.behind = true;
    const appended = () => x.toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => r.msgId) : []));
    const refusals = () => x.toShard.flatMap(({ m }) => (m.t === "sendError" ? [`${m.id}:${m.code}:${m.reason}`] : []));
    return { ...x, appended, refusals };
  }
  test("a send to an offline user gets STORE_FULL and nothing is stored; after space returns it is", () => {
    const { o, toShard, toWriter, state } = setup();
    (o as unknown as { box(user: string): void }).box("u"); // as tests/unit/owner.test.ts does
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle(route("u", "m1"));
    expect(toWriter.filter((m) => m.t === "append")).toHaveLength(0);
    expect(toShard.map((x) => x.m)).toContainEqual(
      expect.objectContaining({ t: "sendError", id: "m1", code: "STORE_FULL" }),
    );
    expect(o.stats.storeFullRejects).toBe(1);
    // The retry (same id) is a new message, not a duplicate of one never stored.
    state.full = false;
    o.handle(route("u", "m1"));
    expect(toWriter.filter((m) => m.t === "append")).toHaveLength(1);
  });
  test("a send to a connected, reading user goes out live even when the disk is full", () => {
    const { o, toShard } = setup();
    o.handle({ t: "attach", user: "r", shard: 0, conn: 3, v0: false, resume: 0 });
    o.handle({ t: "loaded", user: "r", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle({ t: "rows", user: "r", gen: 1, rows: [], more: false }); // drain done: live
    o.handle(route("r", "live1"));
    expect(toShard.some((x) => x.m.t === "deliver")).toBe(true);
    expect(toShard.some((x) => x.m.t === "sendError")).toBe(false);
  });
  test("store behind: a send to an offline user is refused SERVER_BUSY, not stored; its retry is, once caught up", () => {
    const { o, appended, refusals, state } = behind();
    (o as unknown as { box(user: string): void }).box("u");
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle(route("u", "m1"));
    expect(appended()).toEqual([]);
    expect(refusals()).toEqual(["m1:SERVER_BUSY:store is behind; retry later"]);
    expect(o.stats.storeBehindRejects).toBe(1);
    // The retry (same id) is a new message, not a duplicate of one never stored.
    state.behind = false;
    o.handle(route("u", "m1"));
    expect(appended()).toEqual(["m1"]);
    expect(refusals()).toHaveLength(1);
  });
  test("store behind: a send to a connected, reading user goes out live", () => {
    const { o, toShard, refusals } = behind();
    o.handle({ t: "attach", user: "r", shard: 0, conn: 3, v0: false, resume: 0 });
    o.handle({ t: "loaded", user: "r", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle({ t: "rows", user: "r", gen: 1, rows: [], more: false }); // drain done: live
    o.handle(route("r", "live1"));
    expect(toShard.some((x) => x.m.t === "deliver")).toBe(true);
    expect(refusals()).toEqual([]);
    expect(o.stats.storeBehindRejects).toBe(0);
  });
  test("store behind: a v0 send (no id, no ack due) is stored; the gateway pauses its sender instead", () => {
    const { o, appended, refusals } = behind();
    (o as unknown as { box(user: string): void }).box("u");
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle(route("u", "", refusalsOnly(0)));
    expect(appended()).toEqual([""]);
    expect(refusals()).toEqual([]);
  });
  test("disk full: a v0 send (no id, no ack due) is stored, not dropped; the gateway pauses its sender", () => {
    const { o, toShard, toWriter } = setup();
    (o as unknown as { box(user: string): void }).box("u");
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle(route("u", "", refusalsOnly(0)));
    expect(toWriter.filter((m) => m.t === "append")).toHaveLength(1);
    expect(toShard.some((x) => x.m.t === "sendError")).toBe(false);
  });
});
