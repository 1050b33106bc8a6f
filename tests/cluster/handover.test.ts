// Owner hand-over: the claim rules (pure), the owner adopting late rows, and two JetStream
// writers standing for an old and a new owner of one user against a real nats-server: the new
// owner serves the old one's backlog, never deletes a late row before adopting it, adopts late
// rows (old block or a stale owner's newer block) under its own seqs, and deletes the old copy
// once the new seq is acked.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type NatsLink, openLink } from "../../src/cluster/connect.ts";
import { Claims, decodeLate, encodeLate } from "../../src/cluster/handover.ts";
import { ClusterInbox } from "../../src/cluster/inbox.ts";
import type { ReadRow } from "../../src/cluster/inbox-codec.ts";
import { JsWriter } from "../../src/cluster/js-writer.ts";
import { LastSeen } from "../../src/cluster/last-seen.ts";
import { SeqBlocks } from "../../src/cluster/seq-blocks.ts";
import { SentWindow } from "../../src/cluster/sent-kv.ts";
import { PARK_MAX, PARK_MS, ParkedRoutes } from "../../src/cluster/parked.ts";
import type { OwnerLimits } from "../../src/router/owner.ts";
import { recordingOwner } from "../helpers/owner-harness.ts";
import type { PortMsg, StoredRow, WriterReq } from "../../src/router/wire.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";

const read = (to: string, seq: number, streamSeq: number, owner?: string): ReadRow => ({
  to,
  seq,
  from: "s",
  id: `m${seq}`,
  ts: 1,
  body: new Uint8Array(),
  streamSeq,
  ...(owner ? { owner } : {}),
});

describe("claims (pure)", () => {
  test("foreign rows: the old backlog is served, late ones are kept from acks until adopted", () => {
    const c = new Claims("n1");
    c.reserved("u", 101, 5);
    c.reserved("u", 201); // a top-up keeps the claim
    const mine = c.current("u")!.tag;
    expect(mine).toBe("n1.1");
    expect(c.tagOf("nobody")).toBe("n1.0"); // matches no claim
    const rows = [read("u", 5, 1, "old"), read("u", 7, 2), read("u", 3, 3, "old"), read("u", 150, 4, mine)];
    const p = c.page(rows, 4);
    // seq 5 and 7 lie between the cursor and the claim's first seq: the previous owner's backlog.
    expect(p.keep.map((r) => r.seq)).toEqual([5, 7, 150]);
    expect(p.late.map((r) => r.seq)).toEqual([3]); // below the cursor: the recipient would drop it
    expect(c.verdict(rows[0]!)).toBe("served");
    const stale = read("u", 305, 5, "other"); // a stale owner's block above this claim's
    expect(c.page([stale], 160).late).toEqual([stale]);
    // Numbered before the previous claim began (an owner two moves ago): adopted, not served.
    const older = read("u", 4, 6, "older");
    expect(c.page([older], 0)).toEqual({ keep: [], late: [older] });
    expect(c.ackSeq(rows[2]!)).toBeNull(); // never deleted before it is adopted
    expect(c.adopted("u", [rows[2]!, stale], [170, 0])).toBe(1); // one still waits for a seq
    expect(c.ackSeq(rows[2]!)).toBe(170); // deleted once seq 170 is acked
    expect(c.verdict(stale)).toBe("late");
    c.forgetBelow("u", 4);
    expect(c.verdict(rows[0]!)).toBe("late"); // marks go with the deleted rows
    c.release((u) => u === "u");
    expect(c.has("u")).toBe(false);
    expect(c.verdict(stale)).toBe("own"); // no claim: rows are treated as before
    // A delete its box still asks for after the release is judged under the released claim.
    expect(c.forDelete("u", 101)?.tag).toBe(mine);
    expect(c.verdictUnder(c.forDelete("u", 101)!, stale)).toBe("late");
    c.reserved("u", 401, 101);
    expect(c.forDelete("u", 401)?.tag).toBe("n1.2");
    expect(c.forDelete("u", 101)?.tag).toBe(mine);
    expect(c.forDelete("nobody", 5)).toBeNull();
  });

  test("a delete is judged under the claim whose blocks hold the asking box's first seq, or skipped", () => {
    const c = new Claims("n1");
    expect(c.forDelete("u", 5)).toBeNull(); // no claim here holds that box's block: skipped
    expect(c.forDelete("u")).toBeUndefined(); // an operator's purge without a claim: every row goes
    c.reserved("u", 1, 0, 0, 10); // box A: 1..10
    c.reserved("u", 11, 0, 0, 20); // A's top-up
    const first = c.current("u")!;
    expect(c.forDelete("u", 1)).toBe(first);
    c.release(() => true); // a cut
    c.reserved("u", 51, 21, 0, 60); // after the regain, box B: 51..60, a new claim
    const second = c.current("u")!;
    expect(second).not.toBe(first);
    expect(c.forDelete("u", 51)).toBe(second); // B's acks: the old claim's rows are late to it
    expect(c.forDelete("u", 1)).toBe(first); // A's last acks, still on their way
    expect(c.forDelete("u", 30)).toBeNull(); // a box of neither: skipped, nothing deleted
    expect(c.forDelete("u")).toBe(second); // an admin purge
    // A claim superseded here (another owner numbered in between) keeps answering its boxes.
    c.opened("u", 81, 61, 0, 90);
    expect(c.forDelete("u", 51)?.tag).toBe(c.current("u")!.tag);
  });

  test("announcements: users round-trip; garbage is null", () => {
    expect(decodeLate(encodeLate(["a", "b.c"]))).toEqual(["a", "b.c"]);
    for (const bad of ["{}", "[1]", '[""]', "not json", JSON.stringify(Array(1001).fill("x"))]) {
      expect(decodeLate(new TextEncoder().encode(bad))).toBeNull();
    }
    expect(decodeLate(new Uint8Array([0xff, 0xfe]))).toBeNull();
  });
});

describe("parked routes (pure)", () => {
  test("a route waits for the view that makes this shard its owner, in arrival order, for a while", () => {
    const refused: string[] = [];
    const p = new ParkedRoutes((m) => refused.push(m.id));
    const r = (to: string, id: string) => ({
      t: "route" as const,
      to,
      from: "s",
      id,
      body: new Uint8Array(),
      ts: 0,
      t0: 0,
      o: 1,
      c: 1,
    });
    p.add(r("a", "1"), 0);
    p.add(r("b", "2"), 10);
    p.add(r("a", "3"), 20);
    expect(p.take((u) => u === "a", 100).map((m) => m.id)).toEqual(["1", "3"]);
    expect(p.size).toBe(1);
    expect(p.take(() => true, 10 + PARK_MS + 1)).toEqual([]); // waited too long: its sender hears a refusal
    expect(p.dropped).toBe(1);
    expect(refused).toEqual(["2"]);
    for (let i = 0; i <= PARK_MAX; i++) p.add(r("c", String(i)), 0);
    expect(p.size).toBe(PARK_MAX);
    expect(p.dropped).toBe(2);
    expect(refused).toEqual(["2", String(PARK_MAX)]);
  });
});

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

const stored = (seq: number, id: string): StoredRow => ({
  recipient: "u",
  seq,
  sender: "s",
  msgId: id,
  ts: 1,
  body: new TextEncoder().encode(id),
});

describe("owner adopts late rows", () => {
  test("new seqs from its block, delivered live without an ack to the sender; known ids keep theirs", () => {
    const { o, toShard, toWriter } = recordingOwner(limits);
    expect(o.adoptLate("u", [stored(3, "late")])).toBeNull(); // nobody connected: left for the drain
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    expect(o.adoptLate("u", [stored(3, "late")])).toEqual([0]); // seqs not loaded yet
    o.handle({ t: "loaded", user: "u", seqBase: 41, seqLimit: 50, lastSeen: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false }); // live
    o.handle({ t: "route", to: "u", from: "s", id: "new", body: new Uint8Array(), ts: 1, t0: 1, o: 1, c: 7 });
    expect(o.adoptLate("u", [stored(3, "late"), stored(99, "new")])).toEqual([42, 41]);
    const items = toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => [d.id, d.seq]) : []));
    expect(items).toEqual([["new", 41], ["late", 42]]);
    o.handle({ t: "ack", user: "u", shard: 2, conn: 9, seq: 42 });
    o.handle({ t: "committed", n: 1 });
    // The recipient's ack reaches the store (the late row's old copy goes with seq 42) ...
    expect(toWriter.filter((m) => m.t === "delete")).toEqual([{ t: "delete", user: "u", upTo: 42, first: 41 }]);
    // ... and only the regular sender hears "delivered": the late one heard "stored" long ago.
    expect(toShard.filter((m) => m.t === "sent").map((m) => m.t === "sent" && m.id)).toEqual(["new"]);
  });
});

describe("owner adopts late rows whose id it only looked up", () => {
  test("a retry answered 'duplicate' from the durable window does not stand for the late row: it is adopted", () => {
    const { o, toShard } = recordingOwner(limits);
    o.handle({ t: "attach", user: "u", shard: 2, conn: 9, v0: false, resume: 0 });
    o.handle({ t: "loaded", user: "u", seqBase: 41, seqLimit: 50, lastSeen: 0 });
    o.handle({ t: "rows", user: "u", gen: 1, rows: [], more: false }); // live
    // Fresh owner state (a restart or a fence): its filter is building, so the sender's retry of
    // "late" (stored by an earlier owner with seq 3) is looked up, found in the durable window
    // with that owner's seq, and answered "duplicate" without a copy of its own.
    o.startDedupeScan();
    o.handle({ t: "route", to: "u", from: "s", id: "late", body: new Uint8Array(), ts: 1, t0: 1, o: 1, c: 7 });
    o.handle({ t: "lookedUp", user: "u", from: "s", id: "late", seq: 3 });
    // The late row itself must now get a seq of this owner and go out; keeping seq 3 would let
    // the recipient's next ack delete it undelivered.
    expect(o.adoptLate("u", [stored(3, "late")])).toEqual([41]);
    const items = toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => [d.id, d.seq]) : []));
    expect(items).toEqual([["late", 41]]);
  });
});

let nats: NatsFixture;
let links: NatsLink[] = [];
beforeAll(async () => {
  nats = await startNats();
  links = [await openLink({ servers: nats.urls, nodeId: "a", replicas: 1 })];
});
afterAll(async () => {
  for (const l of links) await l.close();
  await nats?.close();
});

class Port {
  got: PortMsg[] = [];
  postMessage(msgs: PortMsg[]) {
    this.got.push(...msgs);
  }
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(10);
  }
}

async function writer(): Promise<{ w: JsWriter; port: Port; req: (...r: WriterReq[]) => void }> {
  const nc = links[0]!.nc;
  const w = new JsWriter(
    await ClusterInbox.open(nc, { replicas: 1, ttlSec: 0 }),
    await SeqBlocks.open(nc, 1),
    await LastSeen.open(nc, 1),
    await SentWindow.open(nc, 1, 60_000),
    60_000,
  );
  const port = new Port();
  w.setPort(0, port);
  return { w, port, req: (...r) => w.receive(0, r) };
}

const rowsOf = (p: Port) => p.got.filter((m): m is Extract<PortMsg, { t: "rows" }> => m.t === "rows");
const count = (p: Port, t: PortMsg["t"]) => p.got.filter((m) => m.t === t).length;

/** An append request for `user`'s rows of these seqs (ids `<prefix><seq>`), from no connection. */
const appendFor = (user: string, prefix: string) => (...seqs: number[]): WriterReq => ({
  t: "append",
  rows: seqs.map((seq) => ({ ...stored(seq, `${prefix}${seq}`), recipient: user })),
  o: seqs.map(() => -1),
  c: seqs.map(() => 0),
});

describe("two owners of one user on JetStream", () => {
  test("the new owner serves the old backlog, keeps late rows from acks, adopts them, then deletes", async () => {
    const inbox = await ClusterInbox.open(links[0]!.nc, { replicas: 1, ttlSec: 0 });
    const [a, b] = [await writer(), await writer()];
    const append = appendFor("carl", "m");
    a.req({ t: "load", user: "carl", reserve: 10 }, append(1, 2, 3));
    await until(() => count(a.port, "committed") === 1);
    b.req({ t: "load", user: "carl", reserve: 10 }, {
      t: "fetch",
      user: "carl",
      after: 0,
      limit: 100,
      maxBytes: 1 << 20,
      gen: 1,
    });
    await until(() => rowsOf(b.port).length === 1);
    expect(rowsOf(b.port)[0]!.rows.map((r) => r.seq)).toEqual([1, 2, 3]); // the old owner's backlog

    // The old owner's append finishes after the move (seq 4 of its block), and a stale owner
    // numbers one from a block reserved after the new owner's (21..30).
    a.req(append(4), { t: "load", user: "carl", reserve: 10 }, append(21));
    await until(() => count(a.port, "committed") === 3);
    const adoptions: number[][] = [];
    let next = 0; // 0 = nobody connected yet: nothing is adopted, nothing deleted
    b.w.adopt = (_u, rows) => (adoptions.push(rows.map((r) => r.seq)), next ? rows.map(() => next++) : null);
    b.req({ t: "delete", user: "carl", upTo: 1000 }); // an ack far beyond the late rows' seqs
    await until(async () => adoptions.length === 1 && (await inbox.backlog("carl")) === 2);
    expect(adoptions[0]).toEqual([4, 21]); // found by the delete, offered to the owner, kept

    next = 15; // the new owner's block is 11..20
    b.w.recheck("carl");
    await until(() => b.w.counters.adopted === 2);
    expect(adoptions[1]).toEqual([4, 21]);
    b.req({ t: "delete", user: "carl", upTo: 15 });
    await until(async () => (await inbox.backlog("carl")) === 1); // seq 4's old copy, adopted as 15
    b.req({ t: "delete", user: "carl", upTo: 16 });
    await until(async () => (await inbox.backlog("carl")) === 0);
    expect(adoptions.length).toBe(2); // nothing was offered twice once adopted
  });
});

describe("a delete asked after its owner's claim was released", () => {
  test("is judged under that claim: another owner's late rows below the ack stay until adopted", async () => {
    const inbox = await ClusterInbox.open(links[0]!.nc, { replicas: 1, ttlSec: 0 });
    const [a, b] = [await writer(), await writer()];
    const append = appendFor("dora", "d");
    a.req({ t: "load", user: "dora", reserve: 10 }); // the old owner: 1..10
    await until(() => count(a.port, "loaded") === 1);
    b.req({ t: "load", user: "dora", reserve: 10 }); // the new owner: 11..20
    await until(() => count(b.port, "loaded") === 1);
    b.req(append(11, 12));
    await until(() => count(b.port, "committed") === 1);
    a.req(append(3, 4)); // the old owner's appends, landing late (retried through a cut)
    await until(() => count(a.port, "committed") === 1);
    // dora moves on from b; b's box still hears an ack (a lagging view routed it there).
    b.w.claims.release(() => true);
    b.req({ t: "delete", user: "dora", upTo: 12, first: 11 });
    await until(async () => (await inbox.backlog("dora")) === 2);
    await Bun.sleep(200);
    expect(await inbox.backlog("dora")).toBe(2); // 3 and 4 wait for their adoption
    const left = await inbox.readBacklog("dora", 0, 10);
    expect(left.map((r) => r.seq)).toEqual([3, 4]);
  });
});

describe("an append that fails and runs again", () => {
  test("keeps the tag it was given when it arrived, though a new claim opened meanwhile", async () => {
    const nc = links[0]!.nc;
    const inbox = await ClusterInbox.open(nc, { replicas: 1, ttlSec: 0 });
    const w = new JsWriter(
      inbox,
      await SeqBlocks.open(nc, 1),
      await LastSeen.open(nc, 1),
      await SentWindow.open(nc, 1, 60_000),
      60_000,
      null,
      null,
      1000, // --max-inbox: an append counts the inbox first
    );
    const port = new Port();
    w.setPort(0, port);
    w.receive(0, [{ t: "load", user: "erin", reserve: 10 }]);
    await until(() => count(port, "loaded") === 1);
    const old = w.claims.current("erin")!.tag;
    // The count fails once, as during a cut; before it does, the user's claim is released and a
    // new box's reservation opens a new claim (the regain).
    const countOf = inbox.countOf.bind(inbox);
    let failed = false;
    inbox.countOf = async (user: string) => {
      if (failed) return countOf(user);
      failed = true;
      w.claims.release(() => true);
      w.receive(0, [{ t: "load", user: "erin", reserve: 10 }]);
      await until(() => w.claims.current("erin") !== undefined);
      throw new Error("timeout");
    };
    const rows = [1, 2].map((seq) => ({ ...stored(seq, `e${seq}`), recipient: "erin" }));
    w.receive(0, [{ t: "append", rows, o: [-1, -1], c: [0, 0] }]);
    await until(() => count(port, "committed") === 1);
    expect(w.claims.current("erin")!.tag).not.toBe(old);
    // Stored under the old claim: late to the new one (adopted), never its own to ack away.
    expect((await inbox.readBacklog("erin", 0, 10)).map((r) => r.owner)).toEqual([old, old]);
  });
});
