// The owner actor's decisions, driven message by message with a recording I/O.

import { beforeEach, describe, expect, test } from "bun:test";
import { Owner, type OwnerLimits } from "../../src/router/owner.ts";
import { SMALL_LIMITS } from "../helpers/owner-harness.ts";
import type { PortMsg, RememberReq, RouteMsg, StoredRow, WriterReq } from "../../src/router/wire.ts";
import { SentFilter, sentKeyHash } from "../../src/router/sent-filter.ts";
import { DEDUPE_SCAN_PAGE } from "../../src/limits.ts";
import { framePage, isFramePage } from "../../src/router/frame-page.ts";

let toShard: { k: number; m: PortMsg }[];
let toWriter: WriterReq[];
let now = 1000;
const limits: OwnerLimits = SMALL_LIMITS;
const io = {
  self: 0,
  shards: 1,
  toShard: (k: number, m: PortMsg) => toShard.push({ k, m }),
  toWriter: (m: WriterReq) => toWriter.push(m),
  now: () => now,
  underPressure: () => false,
};

/** Requests the owner batches per turn (a remember) leave at its end (setImmediate). */
const turnEnd = () => new Promise<void>((r) => setImmediate(r));

let o: Owner;
beforeEach(async () => {
  await turnEnd(); // the last test's owner may still close a turn's remember (into the old arrays)
  toShard = [];
  toWriter = [];
  o = new Owner(io, limits);
});

const route = (to: string, id: string, from = "s"): RouteMsg => ({
  t: "route",
  to,
  from,
  id,
  body: new TextEncoder().encode(id),
  ts: now,
  t0: now,
  o: 1,
  c: 7,
});
const load = (user: string, base = 1, limit = 10) =>
  o.handle({ t: "loaded", user, seqBase: base, seqLimit: limit, lastSeen: 0 });
/**
 * Creates the box (as a first route or login does, with nothing routed or attached yet) and answers
 * its load, then forgets the traffic so far. A status query no longer creates one (see below).
 */
const ready = (user: string, base = 1, limit = 10) => {
  (o as unknown as { box(user: string): void }).box(user);
  load(user, base, limit);
  toShard = [];
  toWriter = [];
};
const appends = () => toWriter.filter((m): m is Extract<WriterReq, { t: "append" }> => m.t === "append");
const delivered = () => toShard.flatMap(({ m }) => (m.t === "deliver" ? m.items.map((d) => d.id) : []));
const acks = () => toShard.flatMap(({ m }) => (m.t === "sent" ? [`${m.id}:${m.status}`] : []));
const row = (seq: number, id: string): StoredRow => ({
  recipient: "u",
  seq,
  sender: "s",
  msgId: id,
  ts: 1,
  body: new Uint8Array(),
});

describe("owner", () => {
  test("offline: waits for its reservation, then stores with increasing seqs", () => {
    o.handle(route("u", "a"));
    o.handle(route("u", "b"));
    expect(toWriter).toEqual([{ t: "load", user: "u", reserve: 10, box: 1 }]);
    load("u", 21, 30);
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["a", 21], ["b", 22]]);
    expect(appends()[0]!.o).toEqual([1]); // the writer acks "stored" to the origin after commit
  });

  test("login drains the backlog, holds new messages back, then goes live in order", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    expect(toWriter.at(-1)).toMatchObject({ t: "fetch", user: "u", after: 0, limit: 3 });
    o.handle(route("u", "new1")); // arrives mid-drain: held, not stored
    expect(appends()).toEqual([]);
    o.handle({ t: "rows", user: "u", gen: 1, rows: [row(1, "old1"), row(2, "old2")], more: false });
    expect(delivered()).toEqual(["old1", "old2", "new1"]);
    o.handle(route("u", "new2"));
    expect(delivered()).toEqual(["old1", "old2", "new1", "new2"]);
    expect(appends()).toEqual([]); // nothing touched the store
  });

  test("acks of a page delivered while the box loads delete once its first block is known", () => {
    // The SQLite writer answers a page before the load; the delete names the box's first block.
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [row(1, "old1"), row(2, "old2")], more: false });
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 2 });
    expect(toWriter.filter((m) => m.t === "delete")).toEqual([]);
    load("u", 3, 12);
    expect(toWriter.filter((m) => m.t === "delete")).toEqual([{ t: "delete", user: "u", upTo: 2, first: 3 }]);
  });

  test("holdback overflow spills to the store in order and the drain fetches it", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    for (const id of ["h1", "h2", "h3"]) o.handle(route("u", id));
    expect(appends().flatMap((a) => a.rows.map((r) => r.msgId))).toEqual(["h1", "h2", "h3"]);
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    // Appended since the fetch: not caught up, fetch again.
    expect(toWriter.filter((m) => m.t === "fetch").length).toBe(2);
  });

  test("a retry of an in-flight message re-targets its ack; after the ack it is a duplicate", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "m"));
    o.handle({ ...route("u", "m"), c: 8 }); // retry from a new connection
    expect(delivered()).toEqual(["m"]);
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    // "delivered" waits until the id's dedupe record is committed too.
    expect(toShard.filter(({ m }) => m.t === "sent")).toEqual([]);
    o.handle({ t: "committed", n: 1 });
    expect(toShard.filter(({ m }) => m.t === "sent")).toEqual([{
      k: 1,
      m: { t: "sent", conn: 8, id: "m", status: "delivered" },
    }]);
    o.handle(route("u", "m"));
    expect(acks()).toEqual(["m:delivered", "m:duplicate"]);
    expect(delivered()).toEqual(["m"]);
  });

  test("a send whose predecessor was not taken here is refused in order; taken, it goes", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "m1"));
    o.handle({ ...route("u", "m3"), p: "m2" }); // m2 lost on the way (or refused): m3 must not pass it
    const refusals = () => toShard.flatMap(({ m }) => (m.t === "sendError" ? [`${m.id}:${m.code}`] : []));
    expect(refusals()).toEqual(["m3:SERVER_BUSY"]);
    expect(delivered()).toEqual(["m1"]);
    o.handle({ ...route("u", "m2"), p: "m1" }); // m1 was numbered here: m2 goes
    o.handle({ ...route("u", "m3"), p: "m2" });
    expect(delivered()).toEqual(["m1", "m2", "m3"]);
    // A retry of a message taken here is answered whatever its link says (it was numbered).
    o.handle({ ...route("u", "m2"), p: "zz" });
    expect(refusals()).toEqual(["m3:SERVER_BUSY"]);
    // Another sender's sends in between: the predecessor is still known (the box's memory of ids).
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 3 }); // room for more live deliveries
    o.handle(route("u", "x1", "t"));
    o.handle({ ...route("u", "x2", "t"), p: "x1" });
    o.handle({ ...route("u", "m4"), p: "m3" });
    expect(delivered()).toEqual(["m1", "m2", "m3", "x1", "x2", "m4"]);
    expect(o.stats.orderRefused).toBe(1);
  });

  test("a predecessor this box never saw is looked up in the store: taken by an earlier owner, the retry goes", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle({ ...route("u", "m2"), p: "m1" }); // m1 was numbered (and acked) before a NATS restart
    const refusals = () => toShard.flatMap(({ m }) => (m.t === "sendError" ? [m.id] : []));
    expect(refusals()).toEqual(["m2"]);
    const asked = toWriter.filter((m) => m.t === "lookup");
    expect(asked).toEqual([expect.objectContaining({ user: "u", from: "s", id: "m1" })]);
    o.handle({ ...route("u", "m2"), p: "m1" }); // retried before the answer: refused, not asked twice
    expect(toWriter.filter((m) => m.t === "lookup").length).toBe(1);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "m1", seq: 3 });
    o.handle({ ...route("u", "m2"), p: "m1" });
    expect(delivered()).toEqual(["m2"]);
    // Unknown to the store too: refused again, and asked again at the next miss.
    o.handle({ ...route("u", "m4"), p: "m3" });
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "m3", seq: 0 });
    o.handle({ ...route("u", "m4"), p: "m3" });
    expect(refusals()).toEqual(["m2", "m2", "m4", "m4"]);
    expect(toWriter.filter((m) => m.t === "lookup").length).toBe(3);
  });

  test("a retry of an acked message is answered at once only once the user's newest dedupe records are committed", async () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "a"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    await turnEnd(); // a's record goes to the writer
    o.handle({ t: "committed", n: 1 });
    o.handle(route("u", "b"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 2 });
    await turnEnd(); // b's record goes to the writer, not committed yet
    toWriter = [];
    o.handle(route("u", "a")); // a is committed, but the box knows only its newest mark: the writer confirms
    o.handle(route("u", "b")); // b's own record is not committed: never "duplicate" before it is
    expect(toWriter).toEqual([
      { t: "confirm", user: "u", from: "s", o: 1, c: 7, id: "a", seq: 1 },
      { t: "confirm", user: "u", from: "s", o: 1, c: 7, id: "b", seq: 2 },
    ]);
    expect(acks()).toEqual(["a:delivered"]);
    o.handle({ t: "committed", n: 1 }); // b's record
    o.handle(route("u", "a"));
    o.handle(route("u", "b"));
    expect(acks()).toEqual(["a:delivered", "b:delivered", "a:duplicate", "b:duplicate"]);
    expect(delivered()).toEqual(["a", "b"]);
  });

  test("detach moves unacked deliveries to the store with their origins", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "x"));
    o.handle(route("u", "y"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    o.handle({ t: "detach", user: "u", shard: 2, conn: 9 });
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["y", 2]]);
    expect(toWriter.at(-1)).toEqual({ t: "seen", user: "u", ts: now });
    o.handle({ t: "statusQuery", user: "u", shard: 3, req: 5 });
    expect(toShard.at(-1)).toEqual({ k: 3, m: { t: "statusReply", req: 5, user: "u", online: false, lastSeen: now } });
  });

  test("a detach from an older connection is ignored after a newer login", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "attach", user: "u", shard: 3, conn: 4, v0: false, resume: 0 });
    expect(toShard.some(({ k, m }) => k === 2 && m.t === "evict" && m.why === "replaced")).toBe(true);
    o.handle({ t: "detach", user: "u", shard: 2, conn: 9 });
    expect(o.isOnline("u")).toBe(true);
  });

  test("a re-attach takes the link, but the connection it displaces is never told REPLACED", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 3, conn: 4, v0: false, resume: 0 }); // the newest login
    toShard = [];
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0, re: true }); // a late re-attach
    expect(toShard).toContainEqual({ k: 3, m: { t: "evict", user: "u", conn: 4, why: "resync" } });
    expect(toShard.some(({ m }) => m.t === "evict" && m.why === "replaced")).toBe(false);
    // The displaced client logs in again: a login, which wins with REPLACED as ever.
    toShard = [];
    o.handle({ t: "attach", user: "u", shard: 3, conn: 5, v0: false, resume: 0 });
    expect(toShard).toContainEqual({ k: 2, m: { t: "evict", user: "u", conn: 9, why: "replaced" } });
    o.handle({ t: "detach", user: "u", shard: 2, conn: 9 }); // the stale one's detach changes nothing
    expect(o.isOnline("u")).toBe(true);
  });

  test("a login read late by a starved shard (socket opened earlier) does not displace the newer login", () => {
    ready("u");
    // The newer login: its socket opened at 200, its attach arrives first.
    o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 0, opened: 200 });
    toShard = [];
    // The stale one: opened at 100 on the other shard, whose login was read only now.
    o.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0, opened: 100 });
    expect(toShard).toEqual([{ k: 0, m: { t: "evict", user: "u", conn: 9, why: "replaced" } }]);
    expect(o.stats.staleLogins).toBe(1); // iris_stale_logins_total
    o.handle({ t: "detach", user: "u", shard: 0, conn: 9 }); // its close
    expect(o.isOnline("u")).toBe(true);
    o.handle({ t: "detach", user: "u", shard: 1, conn: 4 }); // the link was the newer one's all along
    expect(o.isOnline("u")).toBe(false);
    o.handle({ t: "attach", user: "u", shard: 1, conn: 4, v0: false, resume: 0, opened: 200 });
    // Arrival order still decides for sockets opened in login order, and for unstamped attaches.
    toShard = [];
    o.handle({ t: "attach", user: "u", shard: 0, conn: 10, v0: false, resume: 0, opened: 300 });
    expect(toShard).toContainEqual({ k: 1, m: { t: "evict", user: "u", conn: 4, why: "replaced" } });
    toShard = [];
    o.handle({ t: "attach", user: "u", shard: 1, conn: 5, v0: false, resume: 0 });
    expect(toShard).toContainEqual({ k: 0, m: { t: "evict", user: "u", conn: 10, why: "replaced" } });
  });

  test("the writer restarting replays unconfirmed appends and in-flight reads", () => {
    o.handle(route("u", "a"));
    load("u");
    o.handle(route("u", "b"));
    o.handle({ t: "committed", n: 1 }); // "a" committed
    toWriter = [];
    o.writerRestarted();
    expect(appends().flatMap((a) => a.rows.map((r) => r.msgId))).toEqual(["b"]);
  });

  test("the writer restarting gets each box's last delete again: it may have died uncommitted", () => {
    ready("u");
    o.handle(route("u", "a")); // stored: u is offline
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [row(1, "a")], more: false });
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    expect(toWriter.filter((m) => m.t === "delete")).toEqual([{ t: "delete", user: "u", upTo: 1, first: 1 }]);
    toWriter = [];
    o.writerRestarted();
    expect(toWriter.filter((m) => m.t === "delete")).toEqual([{ t: "delete", user: "u", upTo: 1, first: 1 }]);
  });

  test("running out of reserved seqs queues messages until the next block commits", () => {
    ready("u", 1, 2);
    for (const id of ["a", "b", "c"]) o.handle(route("u", id));
    expect(appends().flatMap((a) => a.rows.map((r) => r.msgId))).toEqual(["a", "b"]);
    expect(toWriter.filter((m) => m.t === "load").length).toBe(1); // one refill in flight, not one per message
    load("u", 3, 12);
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["a", 1], ["b", 2], ["c", 3]]);
  });

  test("unacked deliveries older than the spill age move to the store; the next ack deletes them", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "slow1"));
    expect(o.spillStalePending(1000)).toBe(0);
    now += 1500;
    expect(o.spillStalePending(1000)).toBe(1);
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["slow1", 1]]);
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    expect(toWriter.at(-1)).toEqual({ t: "delete", user: "u", upTo: 1, first: 1 });
    expect(acks()).toEqual([]); // its ack is the writer's "stored", not a second "delivered"
  });

  test("backlog fetches are bounded per shard; a finished one lets the next drain start", () => {
    const few = new Owner(io, { ...limits, maxFetches: 1 });
    for (const u of ["a", "b"]) {
      few.handle({ t: "statusQuery", user: u, shard: 0, req: 0 });
      few.handle({ t: "loaded", user: u, seqBase: 1, seqLimit: 10, lastSeen: 0 });
    }
    toWriter = [];
    few.handle({ t: "attach", user: "a", shard: 2, conn: 1, v0: false, resume: 0 });
    few.handle({ t: "attach", user: "b", shard: 2, conn: 2, v0: false, resume: 0 });
    expect(toWriter.filter((m) => m.t === "fetch").map((m) => (m as { user: string }).user)).toEqual(["a"]);
    few.handle({ t: "rows", user: "a", gen: 1, rows: [], more: false });
    expect(toWriter.filter((m) => m.t === "fetch").map((m) => (m as { user: string }).user)).toEqual(["a", "b"]);
  });

  test("a drain waiting for a slot starts after a writer restart even if no fetch is re-issued", () => {
    const few = new Owner(io, { ...limits, maxFetches: 1 });
    for (const u of ["a", "b"]) {
      few.handle({ t: "statusQuery", user: u, shard: 0, req: 0 });
      few.handle({ t: "loaded", user: u, seqBase: 1, seqLimit: 10, lastSeen: 0 });
    }
    few.handle({ t: "attach", user: "a", shard: 2, conn: 1, v0: false, resume: 0 }); // takes the slot
    few.handle({ t: "attach", user: "b", shard: 2, conn: 2, v0: false, resume: 0 }); // queued
    few.handle({ t: "attach", user: "a", shard: 2, conn: 3, v0: false, resume: 0 }); // a's fetch is now stale
    toWriter = [];
    few.writerRestarted(); // the stale reply died with the writer
    expect(toWriter.filter((m) => m.t === "fetch").map((m) => (m as { user: string }).user)).toEqual(["b"]);
  });

  test("pages written to sockets and not yet flushed hold the shard's page budget until flow ready", () => {
    // Each fetch may read 1 MiB; the shard may have 1.5 MiB out: the second drain waits for the
    // first page to leave its socket, not merely to arrive.
    const tight = new Owner(io, { ...limits, pageBytes: 1 << 20, pageBytesOut: 1.5 * (1 << 20) });
    for (const u of ["a", "b", "c"]) {
      tight.handle({ t: "statusQuery", user: u, shard: 0, req: 0 });
      tight.handle({ t: "loaded", user: u, seqBase: 1, seqLimit: 10, lastSeen: 0 });
    }
    const fetched = () => toWriter.filter((m) => m.t === "fetch").map((m) => (m as { user: string }).user);
    toWriter = [];
    tight.handle({ t: "attach", user: "a", shard: 2, conn: 1, v0: false, resume: 0 });
    tight.handle({ t: "attach", user: "b", shard: 2, conn: 2, v0: false, resume: 0 });
    tight.handle({ t: "attach", user: "c", shard: 2, conn: 3, v0: false, resume: 0 });
    expect(fetched()).toEqual(["a", "b"]); // 2 MiB reserved: over the budget, c waits
    const big = (seq: number) => ({ ...row(seq, `big${seq}`), body: new Uint8Array(900 * 1024) });
    tight.handle({ t: "rows", user: "a", gen: 1, rows: [big(1)], more: true }); // 0.9 MiB now out in a's socket
    expect(fetched()).toEqual(["a", "b"]); // 1.9 MiB: still over
    tight.handle({ t: "rows", user: "b", gen: 2, rows: [], more: false }); // b is live: 0.9 MiB out
    expect(fetched()).toEqual(["a", "b", "c"]);
    tight.handle({ t: "rows", user: "c", gen: 3, rows: [big(1)], more: true }); // 1.8 MiB out
    tight.handle({ t: "flow", user: "c", shard: 2, conn: 3, ready: false });
    tight.handle({ t: "flow", user: "a", shard: 2, conn: 1, ready: true }); // a's page left: a may go on
    expect(fetched()).toEqual(["a", "b", "c", "a"]);
    tight.handle({ t: "detach", user: "c", shard: 2, conn: 3 }); // a blocked socket's close frees its page
    tight.handle({ t: "rows", user: "a", gen: 1, rows: [big(2)], more: true });
    tight.handle({ t: "attach", user: "c", shard: 2, conn: 4, v0: false, resume: 0 });
    expect(fetched()).toEqual(["a", "b", "c", "a", "c"]);
  });

  test("a page cut by its byte budget is not the end of the backlog", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [row(1, "big")], more: true });
    o.handle({ t: "flow", user: "u", shard: 2, conn: 9, ready: true });
    expect(toWriter.filter((m) => m.t === "fetch").length).toBe(2);
    o.handle(route("u", "later")); // still draining: held back, not delivered ahead of the backlog
    expect(delivered()).toEqual(["big"]);
  });

  test("a recipient holding maxPending unacked past the timeout is cut off", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    for (const id of ["1", "2", "3", "4"]) o.handle(route("u", id));
    expect(o.cutSlowConsumers()).toBe(0);
    now += 6000;
    expect(o.cutSlowConsumers()).toBe(1);
    expect(toShard.at(-1)!.m).toMatchObject({ t: "evict", why: "slow" });
  });

  test("a recipient idle past the timeout is not cut off by its first new delivery before it can ack", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    now += 6000; // logged in, nothing to receive for longer than the timeout
    o.handle(route("u", "1"));
    expect(delivered()).toEqual(["1"]);
    expect(o.cutSlowConsumers()).toBe(0); // found by the cluster scale run: ~0.2% of users were cut
    now += 6000; // and now it really does not ack
    expect(o.cutSlowConsumers()).toBe(1);
  });

  test("durable dedupe: while the filter is rebuilt an unknown id is looked up, later messages wait in order", () => {
    ready("u");
    o.startDedupeScan();
    o.handle(route("u", "old")); // maybe seen: ask the store
    o.handle(route("u", "new"));
    // "new" is looked up ahead (lookup-ahead.ts), but it waits behind "old"'s answer, not ahead of it.
    expect(toWriter.filter((m) => m.t === "lookup")).toEqual([
      { t: "lookup", user: "u", from: "s", id: "old", since: now - 60_000 },
      { t: "lookup", user: "u", from: "s", id: "new", since: now - 60_000 },
    ]);
    expect(appends()).toEqual([]);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "old", seq: 3 });
    // "old" was accepted before (seq 3): a confirm, never a second row; "new" goes through after it.
    expect(toWriter.find((m) => m.t === "confirm")).toMatchObject({ t: "confirm", id: "old", o: 1, c: 7 });
    expect(toWriter.filter((m) => m.t === "lookup").map((m) => (m as { id: string }).id)).toEqual(["old", "new"]);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "new", seq: 0 });
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["new", 1]]);
    // Stored: its id settles with the row (the writer records it in the same transaction).
    expect(toWriter.filter((m) => m.t === "remember")).toEqual([]);
  });

  test("durable dedupe: once the scan is done, ids the store never saw skip the lookup", () => {
    ready("u");
    o.startDedupeScan();
    o.handle({ t: "sentPage", hashes: new Uint32Array(), ts: new Float64Array(), after: null, done: true });
    o.handle(route("u", "fresh"));
    expect(toWriter.filter((m) => m.t === "lookup")).toEqual([]);
    expect(appends().length).toBe(1);
  });

  test("durable dedupe: the filter goes to the writer at shutdown and comes back whole at the next start", () => {
    ready("u");
    o.startDedupeScan();
    o.handle({ t: "sentPage", hashes: new Uint32Array(), ts: new Float64Array(), after: null, done: true });
    for (const id of ["a", "b", "c"]) o.handle(route("u", id));
    o.releaseAll();
    toWriter = [];
    o.handOverFilter();
    const req = toWriter.find((m) => m.t === "filterImage");
    expect(req).toMatchObject({ t: "filterImage", shard: 0, shards: 1 });
    const image = (req as Extract<WriterReq, { t: "filterImage" }>).image;
    // Its bits are the writer's now: a later send is looked up, not taken as new on an empty filter.
    expect(o.filterBuilding).toBe(true);
    toWriter = [];
    o.handle(route("u", "late"));
    expect(toWriter.filter((m) => m.t === "lookup").map((m) => (m as { id: string }).id)).toEqual(["late"]);

    // The next start: the image first, then the keys logged after it.
    o = new Owner(io, limits);
    ready("u");
    o.startDedupeScan();
    const [h1, h2] = sentKeyHash("u", "s", "d");
    o.handle({
      t: "sentPage",
      hashes: new Uint32Array(),
      ts: new Float64Array(),
      after: ["3", "", ""],
      done: false,
      image,
    });
    expect(toWriter.at(-1)).toMatchObject({ t: "scanSent", after: ["3", "", ""] });
    o.handle({
      t: "sentPage",
      hashes: new Uint32Array([h1, h2]),
      ts: new Float64Array([now]),
      after: ["4", "", ""],
      done: true,
    });
    expect(o.takeFilterRebuilt()).toEqual({ keys: 1, ms: 0, imageBytes: image.gens[0]!.filters[0]!.bits.byteLength });
    toWriter = [];
    for (const id of ["a", "b", "c", "d", "e"]) o.handle(route("u", id));
    // Retries of the image's keys and of the later key are looked up (asked ahead); the new id is not.
    expect(toWriter.filter((m) => m.t === "lookup").map((m) => (m as { id: string }).id)).toEqual(["a", "b", "c", "d"]);
    ["a", "b", "c", "d"].forEach((id, i) => o.handle({ t: "lookedUp", user: "u", from: "s", id, seq: i + 1 }));
    expect(toWriter.filter((m) => m.t === "confirm").map((m) => (m as { id: string }).id)).toEqual([
      "a",
      "b",
      "c",
      "d",
    ]);
    expect(appends().flatMap((a) => a.rows.map((r) => r.msgId))).toEqual(["e"]);
  });

  test("durable dedupe: an image made for another window is not read; the rebuild starts over", () => {
    o.startDedupeScan();
    const other = new SentFilter(30_000);
    other.add(1, 3, now, now);
    toWriter = [];
    o.handle({
      t: "sentPage",
      hashes: new Uint32Array(),
      ts: new Float64Array(),
      after: ["9", "", ""],
      done: false,
      image: other.image(now),
    });
    expect(toWriter).toEqual([{
      t: "scanSent",
      shard: 0,
      shards: 1,
      after: null,
      since: now - 60_000,
      limit: DEDUPE_SCAN_PAGE,
    }]);
    expect(o.filterBuilding).toBe(true);
  });

  test("durable dedupe: a rebuild reports once how many keys it read and how long it took", () => {
    o.startDedupeScan();
    expect(o.filterBuilding).toBe(true);
    const page = (n: number, done: boolean) => ({
      t: "sentPage" as const,
      hashes: new Uint32Array(2 * n).fill(7),
      ts: new Float64Array(n).fill(now),
      after: null,
      done,
    });
    o.handle(page(3, false));
    expect(o.takeFilterRebuilt()).toBeNull(); // not done yet
    now += 250;
    o.handle(page(2, true));
    expect(o.filterBuilding).toBe(false);
    expect(o.takeFilterRebuilt()).toEqual({ keys: 5, ms: 250, imageBytes: 0 });
    expect(o.takeFilterRebuilt()).toBeNull(); // once
  });

  test("durable dedupe: a remembered id older than the window is new again", () => {
    ready("u");
    o.handle(route("u", "m"));
    now += 61_000;
    toWriter = [];
    o.handle(route("u", "m"));
    // The box's memory has aged out; the filter may still say maybe, so the store decides.
    const asked = toWriter.filter((m) => m.t === "lookup").length;
    if (asked) o.handle({ t: "lookedUp", user: "u", from: "s", id: "m", seq: 0 });
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["m", 2]]);
  });

  test("durable dedupe: a live delivery's id is recorded when the recipient acks it, not before", async () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "x"));
    o.handle(route("u", "y"));
    // In flight only: if this owner died now, a retry must be taken as new.
    expect(toWriter.filter((m) => m.t === "remember")).toEqual([]);
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 2 });
    await turnEnd(); // a turn's acked keys leave in one remember at its end
    expect(toWriter.filter((m) => m.t === "remember")).toMatchObject([
      { keys: [{ msgId: "x", seq: 1 }, { msgId: "y", seq: 2 }] },
    ]);
    // Each key carries the hashes it was routed with, as sentKeyHash gives them: the writer indexes it by those.
    const rem = toWriter.find((m) => m.t === "remember") as RememberReq;
    for (const k of rem.keys) {
      const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId);
      expect([k.h1, k.h2]).toEqual([h1, h2]);
    }
    expect(acks()).toEqual([]);
    o.handle({ t: "committed", n: 1 });
    expect(acks()).toEqual(["x:delivered", "y:delivered"]);
  });

  test("a stored row's append carries the hashes its key was routed with; a row without id carries none", () => {
    ready("u");
    o.handle(route("u", "m1"));
    o.handle(route("u", "m2", "t"));
    o.handle(route("u", ""));
    const rows = appends().flatMap((a) => a.rows);
    const h = appends().flatMap((a) => a.h ?? []);
    expect(rows.map((r) => r.msgId)).toEqual(["m1", "m2", ""]);
    expect(h).toEqual([...sentKeyHash("u", "s", "m1"), ...sentKeyHash("u", "t", "m2"), -1, 0]);
  });

  test("acks of one turn share one remember; a request made meanwhile closes it first (writer order)", async () => {
    ready("u");
    ready("v");
    for (const [user, conn] of [["u", 9], ["v", 10]] as const) {
      o.handle({ t: "attach", user, shard: 2, conn, v0: false, resume: 0 });
      // Links are numbered per owner (tests/unit/link-gen.test.ts): v's is the second.
      o.handle({ t: "rows", user, gen: user === "u" ? 1 : 2, rows: [], more: false });
    }
    o.handle(route("u", "x"));
    o.handle(route("v", "y"));
    o.handle(route("v", "z"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    o.handle({ t: "ack", user: "v", shard: 2, conn: 10, seq: 1 });
    // Not sent yet: more keys may join it this turn.
    expect(toWriter.filter((m) => m.t === "remember")).toEqual([]);
    o.handle({ t: "detach", user: "v", shard: 2, conn: 10 }); // z goes to the store: closes it first
    const kinds = toWriter.map((m) => m.t).filter((t) => t === "remember" || t === "append");
    expect(kinds).toEqual(["remember", "append"]);
    expect(toWriter.find((m) => m.t === "remember")).toMatchObject({
      keys: [{ recipient: "u", msgId: "x" }, { recipient: "v", msgId: "y" }],
    });
    await turnEnd();
    expect(toWriter.filter((m) => m.t === "remember").length).toBe(1); // not sent twice
    o.handle({ t: "committed", n: 1 }); // the remember: both senders hear "delivered"
    expect(acks()).toEqual(["x:delivered", "y:delivered"]);
  });

  test("a writer restart before the turn ends replays the open remember once", async () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "x"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    o.writerRestarted();
    await turnEnd();
    expect(toWriter.filter((m) => m.t === "remember").length).toBe(1);
    o.handle({ t: "committed", n: 1 });
    expect(acks()).toEqual(["x:delivered"]);
  });

  test("the same connection attaching twice (login, then re-attach) keeps what the first link held", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    o.handle(route("u", "sent-live")); // forwarded, not acked
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle(route("u", "held")); // draining again: held back
    // The unacked delivery went to the store; the new link's drain brings it back, in order.
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([["sent-live", 1]]);
    expect(toWriter.at(-1)).toMatchObject({ t: "fetch", user: "u", after: 0 });
    o.handle({ t: "rows", user: "u", gen: 2, rows: [row(1, "sent-live")], more: false });
    expect(delivered()).toEqual(["sent-live", "sent-live", "held"]);
    expect(o.isOnline("u")).toBe(true);
  });
});

describe("status of users the owner holds no state for", () => {
  const replies = () => toShard.flatMap(({ m }) => (m.t === "statusReply" ? [m] : []));
  test("is read from the store without creating a box, coalesced, then cached", () => {
    o.handle({ t: "statusQuery", user: "ghost", shard: 3, req: 1 });
    o.handle({ t: "statusQuery", user: "ghost", shard: 3, req: 2 });
    expect(toWriter).toEqual([{ t: "load", user: "ghost", reserve: 0 }]);
    o.handle({ t: "loaded", user: "ghost", seqBase: 5, seqLimit: 4, lastSeen: 1234 });
    expect(replies().map((r) => [r.req, r.online, r.lastSeen])).toEqual([[1, false, 1234], [2, false, 1234]]);
    expect(o.stats.boxes).toBe(0);
    o.handle({ t: "statusQuery", user: "ghost", shard: 3, req: 3 });
    expect(toWriter.length).toBe(1); // answered from the cache
    expect(replies().at(-1)).toMatchObject({ req: 3, lastSeen: 1234 });
  });

  test("a user who gained a box while the read was in flight is answered by the box", () => {
    o.handle({ t: "statusQuery", user: "u", shard: 3, req: 9 });
    o.handle({ t: "attach", user: "u", shard: 2, conn: 1, v0: false, resume: 0 });
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 0, lastSeen: 0 });
    load("u");
    expect(replies()).toEqual([{ t: "statusReply", req: 9, user: "u", online: true, lastSeen: 0 }]);
  });

  test("when a message must be stored, the unacked ones before it are stored first (per-sender order)", () => {
    ready("u");
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
    for (const id of ["1", "2", "3", "4", "5"]) o.handle(route("u", id)); // maxPending is 4
    expect(delivered()).toEqual(["1", "2", "3", "4"]);
    expect(appends().flatMap((a) => a.rows.map((r) => [r.msgId, r.seq]))).toEqual([
      ["1", 1],
      ["2", 2],
      ["3", 3],
      ["4", 4],
      ["5", 5],
    ]);
  });
});

describe("owner: cut off (cluster)", () => {
  test("routes without a seq yet are parked, in order, when the owner state is dropped; numbered ones are not", () => {
    const parked: string[] = [];
    const toShard: PortMsg[] = [];
    const o = new Owner({
      self: 0,
      shards: 1,
      toShard: (_k, m) => toShard.push(m),
      toWriter: () => {},
      now: () => 1000,
      underPressure: () => false,
      owns: () => true,
      park: (m) => parked.push(m.id),
    }, limits);
    o.handle(route("u", "a")); // the box loads: "a" and "b" wait for seqs
    o.handle(route("u", "b"));
    o.dropMoved(() => true, false, true);
    expect(parked).toEqual(["a", "b"]);
    expect(o.backlogRows).toBe(0);
    o.handle(route("v", "c"));
    o.dropMoved(() => true); // a placement move: the sessions re-post their unanswered sends
    expect(parked).toEqual(["a", "b"]);
  });

  test("a load's reply for a dropped box is not the next box's block", () => {
    const writes: WriterReq[] = [];
    const c = new Owner({
      self: 0,
      shards: 1,
      toShard: () => {},
      toWriter: (m) => writes.push(m),
      now: () => 1000,
      underPressure: () => false,
      owns: () => true,
      park: () => {},
    }, limits);
    c.handle(route("u", "a")); // box 1 asks for its block
    c.dropMoved(() => true, false, true); // cut off: box 1 is dropped, its load still in the writer's chain
    c.handle(route("u", "b")); // box 2 asks for its own
    const loads = writes.filter((m) => m.t === "load");
    expect(loads.map((m) => m.box)).toEqual([1, 2]);
    // Box 1's reply comes late (the writer's reply chain held up through a cut): box 2 waits on.
    c.handle({ t: "loaded", user: "u", seqBase: 100, seqLimit: 199, lastSeen: 0, box: 1 });
    expect(writes.filter((m) => m.t === "append")).toEqual([]);
    c.handle({ t: "loaded", user: "u", seqBase: 300, seqLimit: 399, lastSeen: 0, box: 2 });
    const rows = writes.flatMap((m) => (m.t === "append" ? m.rows.map((r) => `${r.msgId}@${r.seq}`) : []));
    expect(rows).toEqual(["b@300"]);
  });

  test("a login's attach that comes late from another node does not close the newer login there", () => {
    const sent: { k: number; m: PortMsg }[] = [];
    const c = new Owner({
      self: 0,
      shards: 1,
      toShard: (k, m) => sent.push({ k, m }),
      toWriter: () => {},
      now: () => 1000,
      underPressure: () => false,
      owns: () => true,
    }, limits);
    c.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    // The newest login, on node 1 (shard 1024); then node 0's attach of a socket opened 500 ms before.
    c.handle({ t: "attach", user: "u", shard: 1024, conn: 15, v0: false, resume: 0, opened: 10_500 });
    sent.length = 0;
    c.handle({ t: "attach", user: "u", shard: 1, conn: 16, v0: false, resume: 0, opened: 10_000 });
    expect(sent).toEqual([{ k: 1, m: { t: "evict", user: "u", conn: 16, why: "replaced" } }]);
    c.handle({ t: "detach", user: "u", shard: 1, conn: 16 });
    expect(c.isOnline("u")).toBe(true);
    // Logins on two nodes closer than the clocks' slack: the arrival order decides.
    sent.length = 0;
    c.handle({ t: "attach", user: "u", shard: 2, conn: 17, v0: false, resume: 0, opened: 10_450 });
    expect(sent).toContainEqual({ k: 1024, m: { t: "evict", user: "u", conn: 15, why: "replaced" } });
  });
});

describe("owner with the shard's memory of stored rows (hot-backlog.ts)", () => {
  const hotLimits: OwnerLimits = { ...limits, pageSize: 100, hotBacklogBytes: 1 << 20, inboxTtlMs: 0 };
  let pressure = false;
  const hotIo = { ...io, underPressure: () => pressure };
  const fetches = () => toWriter.filter((m) => m.t === "fetch");
  const pages = () =>
    toShard.flatMap((
      { k, m },
    ) => (m.t === "deliver" && m.frames ? [{ k, seqs: [...m.frames.seqs], page: m.frames }] : []));
  /** An offline user's messages stored and committed (one append each), as a flood leaves them. */
  const storedOffline = (h: Owner, ids: string[]) => {
    for (const id of ids) h.handle(route("u", id));
    h.handle({ t: "committed", n: ids.length });
  };
  let h: Owner;
  beforeEach(() => {
    pressure = false;
    h = new Owner(hotIo, hotLimits);
    (h as unknown as { box(user: string): void }).box("u");
    h.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 1000, lastSeen: 0 });
    toShard = [];
    toWriter = [];
  });

  test("a backlog stored by this box drains from memory: no read by the writer, the frames it would send", () => {
    storedOffline(h, ["a", "b", "c"]);
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    expect(fetches()).toEqual([]);
    expect(pages().map((p) => p.seqs)).toEqual([[1, 2, 3]]);
    expect(h.stats.hotPages).toBe(1); // iris_hot_backlog_pages_total
    const stored = appends().flatMap((a) => a.rows);
    expect(pages()[0]!.page.frames).toEqual(framePage(stored).frames);
    // Caught up with the page: live at once, so the next message goes straight out.
    h.handle(route("u", "d"));
    expect(delivered()).toEqual(["d"]);
    h.handle({ t: "ack", user: "u", shard: 0, conn: 9, seq: 4 });
    expect(toWriter.filter((m) => m.t === "delete")).toEqual([{ t: "delete", user: "u", upTo: 3, first: 1 }]);
  });

  test("a v0 link gets the bodies alone", () => {
    storedOffline(h, ["a", "bb"]);
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: true, resume: 0 });
    const p = pages()[0]!.page;
    expect([p.bodies, new TextDecoder().decode(p.frames), [...p.ends]]).toEqual([true, "abb", [1, 3]]);
  });

  test("while a stored row is not confirmed committed, the writer reads the page", () => {
    storedOffline(h, ["a", "b"]);
    h.handle(route("u", "c")); // sent to the store, no commit yet
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    expect(pages()).toEqual([]);
    expect(fetches()).toMatchObject([{ t: "fetch", user: "u", after: 0 }]);
  });

  test("a refused row (inbox full) leaves the whole backlog to the writer", () => {
    storedOffline(h, ["a", "b"]);
    h.handle({ t: "rejected", user: "u", seqs: [2] });
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    expect(pages()).toEqual([]);
    expect(fetches().length).toBe(1);
  });

  test("above the memory watermark nothing is kept or answered", () => {
    storedOffline(h, ["a"]);
    pressure = true;
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    expect([pages().length, fetches().length]).toEqual([0, 1]);
    expect(h.hot!.users).toBe(0);
  });

  test("long backlogs go page by page, each after the socket's flow is ready, in order", () => {
    const ids = Array.from({ length: 250 }, (_, i) => `m${i}`);
    storedOffline(h, ids);
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    expect(pages().length).toBe(1); // then waits for the session's flow
    for (let i = 0; i < 10 && pages().at(-1)!.seqs.at(-1)! < 250; i++) {
      h.handle({ t: "flow", user: "u", shard: 0, conn: 9, ready: true });
    }
    expect(pages().flatMap((p) => p.seqs)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(fetches()).toEqual([]);
  });

  test("two pages built in one turn, before either is written, do not share a buffer", () => {
    storedOffline(h, ["a", "b"]);
    (h as unknown as { box(user: string): void }).box("w");
    h.handle({ t: "loaded", user: "w", seqBase: 1, seqLimit: 1000, lastSeen: 0 });
    h.handle({ ...route("w", "x"), to: "w" });
    h.handle({ t: "committed", n: 1 });
    h.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    h.handle({ t: "attach", user: "w", shard: 0, conn: 10, v0: false, resume: 0 });
    const [p, q] = pages();
    expect(q!.page.frames.buffer).not.toBe(p!.page.frames.buffer); // nothing released the first yet
    expect(p!.page.frames).toEqual(
      framePage(appends().flatMap((a) => a.rows).filter((r) => r.recipient === "u")).frames,
    );
    p!.page.release!(); // the session wrote it
    h.handle({ t: "ack", user: "u", shard: 0, conn: 9, seq: 2 });
  });

  test("a page for a session on another shard is built in its own buffer (it crosses a port later)", () => {
    storedOffline(h, ["a", "b"]);
    h.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    const p = pages()[0]!;
    expect([p.k, p.page.frames.buffer.byteLength, p.page.tagRoom]).toEqual([2, p.page.frames.byteLength, undefined]);
    expect(isFramePage(p.page)).toBe(true); // what the port checks on the other side
  });

  test("a box keeps rows in memory only past its first rows: the writer reads those, memory the rest", () => {
    const late = new Owner(hotIo, { ...hotLimits, pageSize: 3, hotBacklogPastFirstPage: true });
    (late as unknown as { box(user: string): void }).box("u");
    late.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 1000, lastSeen: 0 });
    toShard = [];
    toWriter = [];
    storedOffline(late, ["a", "b", "c", "d", "e"]);
    expect(late.hot!.users).toBe(1);
    late.handle({ t: "attach", user: "u", shard: 0, conn: 9, v0: false, resume: 0 });
    expect(pages()).toEqual([]);
    const [fetch] = fetches() as Extract<WriterReq, { t: "fetch" }>[];
    expect(fetch).toMatchObject({ user: "u", after: 0 });
    const stored = appends().flatMap((a) => a.rows);
    // The writer's page stops short of the rows kept in memory (a page cut by its byte budget).
    late.handle({ t: "rows", user: "u", gen: fetch!.gen, rows: stored.slice(0, 2), more: true });
    late.handle({ t: "flow", user: "u", shard: 0, conn: 9, ready: true });
    expect(fetches().length).toBe(1);
    expect(pages().map((p) => p.seqs)).toEqual([[3, 4, 5]]);
    expect(pages()[0]!.page.frames).toEqual(framePage(stored.slice(2)).frames);
  });

  test("in a cluster (other owners write too) the writer reads every page", () => {
    const c = new Owner({ ...hotIo, owns: () => true }, hotLimits);
    expect(c.hot).toBeNull();
  });
});

test("owner: a retry of an unacked delivery is known however many came after it (its key is never forgotten)", async () => {
  await turnEnd();
  toShard = [];
  toWriter = [];
  // The memory's limit (2 + a batch of 64) far under the unacked deliveries a link may have (200).
  o = new Owner(io, { ...limits, recentIds: 2, maxPending: 200, pendingSpillMs: 100_000 });
  ready("u", 1, 1000);
  o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
  o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false });
  for (let i = 0; i < 150; i++) o.handle(route("u", `m${i}`));
  expect(delivered().length).toBe(150);
  o.handle({ ...route("u", "m0"), c: 8 }); // the first, still unacked, resent from a new connection
  expect(toWriter.filter((m) => m.t === "lookup")).toEqual([]); // known here: no lookup, no new seq
  expect(delivered().filter((id) => id === "m0").length).toBe(1);
  o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 150 });
  await turnEnd();
  o.handle({ t: "committed", n: 1 });
  expect(acks().filter((a) => a.startsWith("m0:"))).toEqual(["m0:delivered"]);
  // Acked: no longer pinned, so the next key lets the memory forget down to its limit; the store has them.
  o.handle(route("u", "next"));
  o.handle(route("u", "m1"));
  expect(toWriter.filter((m) => m.t === "lookup").map((m) => (m as { id: string }).id)).toEqual(["m1"]);
});

describe("owner: an idle online user's memory of ids", () => {
  const lookups = () => toWriter.filter((m) => m.t === "lookup").map((m) => (m as { id: string }).id);
  const live = (user: string) => {
    ready(user);
    o.handle({ t: "attach", user, shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "rows", user, gen: 1, rows: [], more: false });
  };

  test("is released by the sweep once every key is durable; a retry is then asked of the store", async () => {
    live("u");
    o.handle(route("u", "m"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    await turnEnd(); // the acked key's remember leaves at the turn's end
    o.handle({ t: "committed", n: 1 });
    expect(acks()).toEqual(["m:delivered"]);
    o.sweep(0); // the fixed clock: idle since now
    expect(o.stats.recentReleased).toBe(1);
    expect(o.stats.boxes).toBe(1); // the box stays: its user is online
    expect(o.stats.recentBytesSwept).toBeGreaterThan(0); // what the shard's idle collection is told
    o.handle(route("u", "m"));
    expect(lookups()).toEqual(["m"]); // not remembered here any more: the store is asked
    expect(acks()).toEqual(["m:delivered"]);
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "m", seq: 1 });
    expect(acks()).toEqual(["m:delivered", "m:duplicate"]);
    expect(delivered()).toEqual(["m"]);
    o.handle(route("u", "n")); // new messages go on live
    expect(delivered()).toEqual(["m", "n"]);
  });

  test("is kept while a delivery is unacked, and while an acked key's record is not committed", async () => {
    live("u");
    o.handle(route("u", "m"));
    o.sweep(0);
    expect(o.stats.recentReleased).toBe(0);
    o.handle({ ...route("u", "m"), c: 8 }); // a retry of the in-flight delivery: known here, no lookup
    expect(lookups()).toEqual([]);
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    await turnEnd();
    o.sweep(0);
    expect(o.stats.recentReleased).toBe(0);
    o.handle({ t: "committed", n: 1 });
    o.sweep(0);
    expect(o.stats.recentReleased).toBe(1);
  });

  test("is kept until the rows it stored for an online user are committed", () => {
    live("u");
    for (const id of ["a", "b", "c", "d", "e"]) o.handle(route("u", id)); // past maxPending (4): stored
    expect(appends().flatMap((a) => a.rows.map((r) => r.msgId))).toEqual(["a", "b", "c", "d", "e"]);
    o.sweep(0);
    expect(o.stats.recentReleased).toBe(0);
    o.handle({ t: "committed", n: appends().length });
    o.sweep(0);
    expect(o.stats.recentReleased).toBe(1);
    o.handle(route("u", "c"));
    expect(lookups()).toEqual(["c"]);
  });

  test("is not released by a user who got something since the cutoff, nor in a cluster", async () => {
    live("u");
    o.handle(route("u", "m"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    await turnEnd();
    o.handle({ t: "committed", n: 1 });
    o.sweep(1); // touched now: not idle for 1 ms yet
    expect(o.stats.recentReleased).toBe(0);

    await turnEnd();
    toShard = [];
    toWriter = [];
    o = new Owner({ ...io, owns: () => true }, limits);
    live("u");
    o.handle(route("u", "m"));
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 1 });
    await turnEnd();
    o.handle({ t: "committed", n: 1 });
    o.sweep(0);
    expect(o.stats.recentReleased).toBe(0);
  });
});
