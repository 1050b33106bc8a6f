// Late rows adopted while the recipient's link still drains its backlog (docs/CLUSTER.md,
// "Adopted while draining"), against a real nats-server: an old owner's writer (A) stores rows,
// some of them after the new owner (B) started draining them; B adopts those and holds them back
// until its drain ends. Every row must reach the recipient once, in the sender's order, also when
// the user moves away from B before the held-back rows went out.

import { expect, test } from "bun:test";
import { gatesLink, linkDrained, type LinkState, mayMeetLateRows, OrderGate } from "../../src/cluster/order-gate.ts";
import { Owner } from "../../src/router/owner.ts";
import { isOwnerMsg, type PortMsg, type RouteMsg, type WriterReq } from "../../src/router/wire.ts";
import { natsLinkForFile, openJsWriter, SMALL_OWNER_LIMITS } from "../helpers/js-writer-fixture.ts";
import { until } from "../helpers/server.ts";

const limits = SMALL_OWNER_LIMITS;

const link = natsLinkForFile("a");

const writer = () => openJsWriter(link());

/** Polls until `cond` holds (the shared `until`, with this file's default wait). */
const waitUntil = (cond: () => boolean, ms = 2000) => until(cond, "the condition", ms);

/** The old owner's writer: stores rows of sender "s" numbered by its claim, ids m<seq>. */
async function oldOwner(user: string) {
  const w = await writer();
  let n = 0;
  w.setPort(0, { postMessage: (msgs) => void (n += msgs.filter((m) => m.t === "committed").length) });
  w.receive(0, [{ t: "load", user, reserve: 10 }]); // its claim: seqs 1..10
  return async (seqs: number[]) => {
    const rows = seqs.map((seq) => ({
      recipient: user,
      seq,
      sender: "s",
      msgId: `m${seq}`,
      ts: 0,
      body: new Uint8Array(1),
    }));
    const want = n + 1;
    w.receive(0, [{ t: "append", rows, o: seqs.map(() => -1), c: seqs.map(() => 0) } satisfies WriterReq]);
    await waitUntil(() => n === want);
  };
}

/**
 * A new owner on its own writer, wired as a shard wires them, and the recipient's SDK: it takes
 * a seq above its last only, and acks (and reports its socket ready after a page) when `auto`.
 */
async function newOwner(user: string, auto: boolean) {
  const w = await writer();
  const got: string[] = [];
  const seen = { last: 0, adopted: 0 };
  const ack = () => o.handle({ t: "ack", user, shard: 2, conn: 9, seq: seen.last });
  const flow = () => o.handle({ t: "flow", user, shard: 2, conn: 9, ready: true });
  const toShard = (m: PortMsg) => {
    if (m.t !== "deliver") return;
    for (const d of m.items) if (d.seq > seen.last) (seen.last = d.seq, got.push(d.id));
    if (auto) queueMicrotask(() => (ack(), m.page && flow()));
  };
  const o: Owner = new Owner({
    self: 0,
    shards: 1,
    toShard: (_k, m) => toShard(m),
    toWriter: (m) => w.receive(0, [m]),
    now: () => Date.now(),
    underPressure: () => false,
  }, limits);
  w.setPort(0, { postMessage: (msgs) => msgs.forEach((m) => isOwnerMsg(m) && o.handle(m)) });
  w.adopt = (u, rows) => {
    seen.adopted += rows.length;
    return o.adoptLate(u, rows);
  };
  const attach = (resume: number) => o.handle({ t: "attach", user, shard: 2, conn: 9, v0: false, resume });
  return { w, o, got, seen, ack, flow, attach };
}

test("late rows adopted between two drain pages go out once, after the drain, in order", async () => {
  const user = `dora${Date.now()}`;
  const a = await oldOwner(user);
  await a([1, 2, 3, 4, 5, 6, 7]);
  const b = await newOwner(user, false);
  b.attach(0);
  await waitUntil(() => b.got.length === 5); // the first page, 1..5 (its socket not ready yet: "writing")
  await a([8, 9]); // the old owner's late appends land
  b.w.recheck(user); // the re-read adopts them: held back behind the drain
  await waitUntil(() => b.seen.adopted === 2);
  b.ack();
  b.flow(); // the next page (6, 7), then live: the held-back rows
  await waitUntil(() => b.got.length === 9);
  expect(b.got).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
});

test("held-back adopted rows survive a move away: a delete asked before it keeps their old copies", async () => {
  const user = `emil${Date.now()}`;
  const a = await oldOwner(user);
  await a([1, 2, 3, 4]);
  const b = await newOwner(user, false);
  // Another sender's message reaches B before the recipient attaches: stored at B's seq 11.
  b.o.handle({ t: "route", to: user, from: "t", id: "x1", body: new Uint8Array(1), ts: 0, t0: 0, o: -1, c: 0 });
  await waitUntil(() => b.w.counters.appended === 1);
  b.attach(0);
  await waitUntil(() => b.got.length === 5); // one page: 1..4 of the old owner, then x1 at 11
  await a([5, 6]); // late: adopted at B's 12, 13, held back (the drain goes on)
  b.w.recheck(user);
  await waitUntil(() => b.seen.adopted === 2);
  // The recipient acks 11; the delete is still queued at B's writer when B's view moves the
  // user away (claim released, box dropped with the held-back rows).
  b.ack();
  b.w.claims.release(() => true);
  b.o.dropMoved(() => true);
  // C owns the user now; the recipient re-attaches there with its last seq, and must get 5 and 6.
  const c = await newOwner(user, true);
  c.attach(11);
  await waitUntil(() => c.got.length === 2).catch(() => {});
  expect([...b.got, ...c.got]).toEqual(["m1", "m2", "m3", "m4", "x1", "m5", "m6"]);
});

/** Routes through the order gate, wired as shard-cluster.ts wires it (owners moved just now). */
function gateOf(b: Awaited<ReturnType<typeof newOwner>>) {
  const movedAt = performance.now();
  const link = (u: string): LinkState => (b.o.isLive(u) ? "live" : b.o.isOnline(u) ? "draining" : "none");
  const gate = new OrderGate({
    young: (u) => gatesLink(link(u)) && mayMeetLateRows(performance.now(), movedAt, b.w.claims.openedAt(u)),
    drained: (u) => linkDrained(link(u)),
    reread: (u, done) => b.w.recheck(u, 0, done),
    release: (routes) => routes.forEach((m) => b.o.handle(m)),
    refuse: () => {},
  });
  return (m: RouteMsg) => void (gate.take(m) || b.o.handle(m));
}

test("a send that arrives while the link drains comes after a late row of the same sender adopted meanwhile", async () => {
  const user = `fritz${Date.now()}`;
  const a = await oldOwner(user);
  await a([1, 2, 3, 4, 5, 6, 7]);
  const b = await newOwner(user, false);
  const route = gateOf(b);
  b.attach(0);
  await waitUntil(() => b.got.length === 5); // the first page, 1..5; the link drains on
  await a([8]); // the old owner stores m8 late; its sender hears "stored" and sends m9 to B
  route({ t: "route", to: user, from: "s", id: "m9", body: new Uint8Array(1), ts: 0, t0: 0, o: -1, c: 0 });
  b.w.recheck(user); // the old owner's announcement: the re-read adopts m8 (held back behind the drain)
  await waitUntil(() => b.seen.adopted === 1);
  b.ack();
  b.flow(); // the next page (6, 7), then live
  await waitUntil(() => b.got.length === 9);
  expect(b.got).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
});
