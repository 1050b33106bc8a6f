// An attach that reaches a fresh owner box (its seq reservation still loading) under a claim that
// outlived the box (docs/CLUSTER.md, "Cluster chaos": the god-mode loss of seed 9202), against a
// real nats-server. The recipient already processed seqs of this claim; an older claim's rows then
// land late. They are numbered below the client's resume point, so they must be adopted under new
// seqs, never delivered as they are (the SDK drops a seq at or below its last) and then deleted by
// the SDK's cumulative ack.

import { expect, test } from "bun:test";
import { Owner } from "../../src/router/owner.ts";
import { isOwnerMsg, type PortMsg, type WriterReq } from "../../src/router/wire.ts";
import { natsLinkForFile, openJsWriter, SMALL_OWNER_LIMITS } from "../helpers/js-writer-fixture.ts";
import { until } from "../helpers/server.ts";

const limits = SMALL_OWNER_LIMITS;

const link = natsLinkForFile("g");

/** How long the recipient may wait for the late rows (each step here takes a few ms). */
const DELIVER_WAIT_MS = 1500;

/** The first owner's writer (claim A, seqs 1..10): its appends of sender "s" land when called. */
async function firstOwner(user: string) {
  const w = await openJsWriter(link());
  let n = 0;
  w.setPort(0, { postMessage: (msgs) => void (n += msgs.filter((m) => m.t === "committed").length) });
  w.receive(0, [{ t: "load", user, reserve: 10 }]);
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
    await until(() => n === want, "the first owner's append", 2000);
  };
}

/** The current owner (claim B) on its own writer, and the recipient's SDK: it keeps a seq above its last only, and acks. */
async function currentOwner(user: string) {
  const w = await openJsWriter(link());
  const got: string[] = [];
  const sdk = { last: 0, dropped: [] as number[] };
  const toShard = (m: PortMsg) => {
    if (m.t !== "deliver") return;
    for (const d of m.items) {
      if (d.seq > sdk.last) (sdk.last = d.seq, got.push(d.id));
      else sdk.dropped.push(d.seq); // "already seen": the SDK's next ack covers it
    }
    queueMicrotask(() => {
      o.handle({ t: "ack", user, shard: 2, conn: 9, seq: sdk.last });
      if (m.page) o.handle({ t: "flow", user, shard: 2, conn: 9, ready: true });
    });
  };
  const o: Owner = new Owner({
    self: 0,
    shards: 1,
    toShard: (_k, m) => toShard(m),
    toWriter: (m) => w.receive(0, [m]),
    now: () => Date.now(),
    underPressure: () => false,
    owns: () => true, // its view makes it the owner (a cluster shard's owner has this hook)
  }, limits);
  w.setPort(0, { postMessage: (msgs) => msgs.forEach((m) => isOwnerMsg(m) && o.handle(m)) });
  w.adopt = (u, rows) => o.adoptLate(u, rows);
  const attach = () => o.handle({ t: "attach", user, shard: 2, conn: 9, v0: false, resume: sdk.last });
  const send = (id: string) =>
    o.handle({ t: "route", to: user, from: "t", id, body: new Uint8Array(1), ts: 0, t0: 0, o: -1, c: 0 });
  return { w, o, got, sdk, attach, send };
}

test("a re-attach to a loading box keeps the client's resume point: an older claim's late rows are adopted, not acked away", async () => {
  const user = `gwen${Date.now()}`;
  const a = await firstOwner(user); // claim A: 1..10, its appends still retrying
  const b = await currentOwner(user);
  b.attach(); // first login (resume 0): claim B opens, 11..20, nothing stored yet
  await until(() => b.o.isLive(user), "the first drain", 2000);
  b.send("x1");
  b.send("x2");
  await until(() => b.got.length === 2, "x1, x2 live", 2000); // seqs 11, 12, acked
  expect(b.sdk.last).toBe(12);
  await a([1, 2]); // A's appends land now: numbered below B's block, below what the client has
  // B's view catches up with an attach that came first (the user "moved here"): the box goes,
  // the writer's claim stays, and the session attaches again with its last seq (12).
  b.o.dropMoved(() => true);
  b.attach();
  await until(() => b.got.length === 4, "m1, m2 adopted", DELIVER_WAIT_MS).catch(() => {});
  expect(b.sdk.dropped).toEqual([]);
  expect(b.got).toEqual(["x1", "x2", "m1", "m2"]);
});

test("an attach to a box whose seqs lie below the client's resume point (another owner numbered above them meanwhile) loses nothing", async () => {
  const user = `hugo${Date.now()}`;
  const x = await currentOwner(user); // its view makes it the owner from the start
  x.send("s1"); // a sender on its node: claim X opens (1..10), s1 stored at 1 (nobody attached)
  await until(() => x.w.counters.appended === 1, "s1 stored", 2000);
  const y = await currentOwner(user); // another node's view makes it the owner for a moment
  y.attach(); // the recipient's session attaches there: claim Y (11..20), its drain serves s1
  await until(() => y.o.isLive(user), "the drain at Y", 2000);
  y.send("y1");
  await until(() => y.got.length === 2, "s1 and y1 at Y", 2000);
  expect(y.sdk.last).toBe(11);
  // The views agree on X again: Y's view moved the user away; the session attaches to X.
  y.w.claims.release(() => true);
  y.o.dropMoved(() => true);
  x.sdk.last = y.sdk.last;
  x.attach();
  await until(() => x.o.isLive(user), "the drain at X", 2000);
  x.send("s2");
  await until(() => x.got.length === 1, "s2 at X", DELIVER_WAIT_MS).catch(() => {});
  expect(x.sdk.dropped).toEqual([]);
  expect([...y.got, ...x.got]).toEqual(["s1", "y1", "s2"]);
});

test("a row the stale box stored after the client moved on is adopted, not skipped below the resume point and acked away", async () => {
  const user = `ines${Date.now()}`;
  const x = await currentOwner(user);
  x.send("s0"); // claim X (1..10): s0 stored at 1
  await until(() => x.w.counters.appended === 1, "s0 stored", 2000);
  const y = await currentOwner(user);
  y.attach(); // claim Y (11..20): its drain serves s0
  await until(() => y.o.isLive(user), "the drain at Y", 2000);
  y.send("y1");
  await until(() => y.got.length === 2, "s0 and y1 at Y", 2000);
  x.send("s1"); // X's view still names X: stored at 2, below what the client has (11)
  await until(() => x.w.counters.appended === 2, "s1 stored", 2000);
  y.w.claims.release(() => true);
  y.o.dropMoved(() => true);
  x.sdk.last = y.sdk.last;
  x.attach();
  await until(() => x.got.length === 1, "s1 at X", DELIVER_WAIT_MS).catch(() => {});
  expect(x.sdk.dropped).toEqual([]);
  expect([...y.got, ...x.got]).toEqual(["s0", "y1", "s1"]);
});
