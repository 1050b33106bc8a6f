// The JetStream writer speaks the single node's writer protocol against a real nats-server:
// replies in request order, "stored" only after the PubAck, pages that see earlier appends,
// cursor paging, delete on cumulative ack, seq blocks and last-seen, garbage counted.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type NatsLink, openLink } from "../../src/cluster/connect.ts";
import { ClusterInbox } from "../../src/cluster/inbox.ts";
import { cursorAfter, pageAfter, planCapacity, planDelete } from "../../src/cluster/js-plan.ts";
import { JsWriter } from "../../src/cluster/js-writer.ts";
import { LastSeen } from "../../src/cluster/last-seen.ts";
import { SeqBlocks } from "../../src/cluster/seq-blocks.ts";
import { parseKey, SentWindow } from "../../src/cluster/sent-kv.ts";
import { sentKeyHash } from "../../src/router/sent-filter.ts";

const WINDOW_MS = 60_000;
import type { PortMsg, StoredRow, WriterReq } from "../../src/router/wire.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";

describe("JetStream writer planning (pure)", () => {
  const p = (seq: number, streamSeq: number) => ({ seq, streamSeq });
  test("in order: one purge, no singles", () => {
    expect(planDelete([p(1, 10), p(2, 11), p(3, 12)], 2)).toEqual({ purgeBelow: 12, singles: [] });
    expect(planDelete([p(3, 12)], 2)).toEqual({ purgeBelow: null, singles: [] });
  });
  test("a retried row behind a later one: purge stops at the first kept row, the rest go singly", () => {
    // seq 2 failed first and was stored again after seq 3
    const rows = [p(1, 10), p(3, 11), p(2, 12), p(4, 13)];
    expect(planDelete(rows, 2)).toEqual({ purgeBelow: 11, singles: [12] });
    expect(pageAfter(rows, 1, 2).map((r) => r.seq)).toEqual([2, 3]);
    expect(cursorAfter(rows, 3)).toBe(12);
    expect(cursorAfter(rows, 2)).toBe(10); // row 3 at 11 is not delivered yet: do not skip past it
  });
});

let nats: NatsFixture;
let link: NatsLink;
beforeAll(async () => {
  nats = await startNats();
  link = await openLink({ servers: nats.urls, nodeId: "w", replicas: 1 });
});
afterAll(async () => {
  await link?.close();
  await nats?.close();
});

class Port {
  got: PortMsg[] = [];
  postMessage(msgs: PortMsg[]) {
    this.got.push(...msgs);
  }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(10);
  }
}

const row = (seq: number): StoredRow => ({
  recipient: "bob",
  seq,
  sender: "alice",
  msgId: `m${seq}`,
  ts: 1000 + seq,
  body: new TextEncoder().encode(`body ${seq}`),
});

describe("--max-inbox planning (pure)", () => {
  test("rows fit in order until each recipient's inbox is full", () => {
    const counts = new Map([["a", 2], ["b", 0]]);
    expect(planCapacity(["a", "b", "a", "b", "b"], counts, 3)).toEqual([true, true, false, true, true]);
    expect(planCapacity(["b", "b", "b", "b"], counts, 3)).toEqual([true, true, true, false]);
    expect(counts.get("a")).toBe(2); // the caller's counts are not changed
  });
});

describe("dedupe window keys (pure)", () => {
  test("a scanned subject parses back to its key; anything else is not one", () => {
    const tok = (x: string) => Buffer.from(x).toString("base64url");
    expect(parseKey(`$KV.iris_sent.${tok("bob")}.${tok("al.ice")}._${tok("m 1")}`, 5)).toEqual({
      recipient: "bob",
      sender: "al.ice",
      msgId: "m 1",
      ts: 5,
    });
    expect(parseKey(`$KV.iris_sent.${tok("bob")}.${tok("alice")}._`, 5)?.msgId).toBe("");
    expect(parseKey(`$KV.iris_sent.${tok("bob")}.${tok("alice")}`, 5)).toBeNull();
    expect(parseKey(`$KV.iris_seq.${tok("bob")}`, 5)).toBeNull();
    expect(parseKey(`$KV.iris_sent.***.${tok("a")}._${tok("b")}`, 5)).toBeNull();
  });
});

describe("JetStream writer", () => {
  test("the writer protocol end to end", async () => {
    const w = new JsWriter(
      await ClusterInbox.open(link.nc, { replicas: 1, ttlSec: 0 }),
      await SeqBlocks.open(link.nc, 1),
      await LastSeen.open(link.nc, 1),
      await SentWindow.open(link.nc, 1, WINDOW_MS),
      WINDOW_MS,
    );
    const [p0, p1] = [new Port(), new Port()];
    w.setPort(0, p0);
    w.setPort(1, p1);
    const req = (...r: WriterReq[]) => w.receive(0, r);

    req({ t: "load", user: "bob", reserve: 100 }, { t: "seen", user: "bob", ts: 4242 });
    await until(() => p0.got.length === 1);
    expect(p0.got[0]).toMatchObject({ t: "loaded", seqBase: 1, seqLimit: 100 });

    const rows = Array.from({ length: 30 }, (_, i) => row(i + 1));
    const append = (rs: StoredRow[]) => ({ t: "append" as const, rows: rs, o: rs.map(() => 1), c: rs.map(() => 7) });
    const fetch = (after: number, gen = 1) => ({
      t: "fetch" as const,
      user: "bob",
      after,
      limit: 10,
      maxBytes: 1 << 20,
      gen,
    });
    req(append(rows.slice(0, 10)), append(rows.slice(10, 20)), append(rows.slice(20)), fetch(0));
    await until(() => p0.got.length === 5);
    expect(p0.got.slice(1).map((m) => m.t)).toEqual(["committed", "committed", "committed", "rows"]);
    const page1 = p0.got[4] as Extract<PortMsg, { t: "rows" }>;
    expect(page1.rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(page1.rows[0]).toEqual(rows[0]!);
    expect(page1.more).toBe(true);
    expect(p1.got.length).toBe(30);
    expect(p1.got.every((m) => m.t === "sent" && m.status === "stored" && m.conn === 7)).toBe(true);

    req(fetch(10), { t: "delete", user: "bob", upTo: 20 }, fetch(0, 2));
    await until(() => p0.got.length === 7);
    expect((p0.got[5] as Extract<PortMsg, { t: "rows" }>).rows.map((r) => r.seq)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 11),
    );
    const after = p0.got[6] as Extract<PortMsg, { t: "rows" }>;
    expect(after.gen).toBe(2);
    expect(after.rows.map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 21));

    req(append([rows[29]!]), { t: "load", user: "bob", reserve: 0 });
    await until(() => p0.got.length === 9 && p1.got.length === 31);
    expect(p1.got[30]).toMatchObject({ t: "sent", status: "duplicate", id: "m30" });
    expect(p0.got[8]).toMatchObject({ t: "loaded", seqBase: 101, seqLimit: 100, lastSeen: 4242 });

    // The dedupe window: remembered keys and stored rows are found; retries are confirmed.
    req(
      { t: "remember", keys: [{ recipient: "bob", sender: "zed", msgId: "z1", seq: 77, ts: Date.now() }] },
      { t: "lookup", user: "bob", from: "zed", id: "z1", since: 0 },
      { t: "lookup", user: "bob", from: "zed", id: "nope", since: 0 },
      { t: "lookup", user: "bob", from: "alice", id: "m5", since: 0 },
      { t: "confirm", user: "bob", from: "alice", id: "m5", o: 1, c: 9 },
      { t: "confirm", user: "bob", from: "x", id: "never", o: 1, c: 9 },
      { t: "scanSent", shard: 0, shards: 1, after: null, since: 0, limit: 100 },
    );
    await until(() => p0.got.length === 14 && p1.got.length === 33);
    // The filter-rebuild page is answered aside (no order with the rest); the others in order.
    const ordered = p0.got.slice(9).filter((m) => m.t !== "sentPage");
    expect(ordered.map((m) => m.t)).toEqual(["committed", "lookedUp", "lookedUp", "lookedUp"]);
    expect(ordered.slice(1).map((m) => (m as Extract<PortMsg, { t: "lookedUp" }>).seq)).toEqual([77, 0, 5]);
    expect(p1.got[31]).toMatchObject({ t: "sent", id: "m5", status: "duplicate", conn: 9 });
    expect(p1.got[32]).toMatchObject({ t: "sendError", id: "never", code: "SERVER_BUSY" });
    // The filter rebuild lists the window: the 30 stored rows' keys and the remembered one.
    const page = p0.got.slice(9).find((m) => m.t === "sentPage") as Extract<PortMsg, { t: "sentPage" }>;
    expect(page.done).toBe(true);
    const pairs = new Set(
      Array.from({ length: page.ts.length }, (_, i) => `${page.hashes[2 * i]}/${page.hashes[2 * i + 1]}`),
    );
    const expected = [...rows.map((r) => sentKeyHash("bob", "alice", r.msgId)), sentKeyHash("bob", "zed", "z1")];
    expect(pairs).toEqual(new Set(expected.map(([a, b]) => `${a >>> 0}/${b >>> 0}`))); // stored as u32
    // Paged: 31 keys in pages of 10, each page resuming after the last stream seq.
    let cursor: [string, string, string] | null = null;
    let seen = 0;
    for (let pages = 1; pages <= 10; pages++) {
      const before = p0.got.length;
      req({ t: "scanSent", shard: 0, shards: 1, after: cursor, since: 0, limit: 10 });
      await until(() => p0.got.length === before + 1);
      const pg = p0.got[before] as Extract<PortMsg, { t: "sentPage" }>;
      seen += pg.ts.length;
      cursor = pg.after;
      if (pg.done) break;
    }
    expect(seen).toBe(31);

    w.receive(0, [{ t: "append", rows: [{ ...rows[0], seq: 0 }], o: [1], c: [1] }, "junk"]);
    w.receive(0, "not a batch");
    expect(w.counters.garbage).toBe(3);
  });

  test("--max-inbox: rows past the cap are refused INBOX_FULL; a retry of a stored one is a duplicate", async () => {
    const w = new JsWriter(
      await ClusterInbox.open(link.nc, { replicas: 1, ttlSec: 0 }),
      await SeqBlocks.open(link.nc, 1),
      await LastSeen.open(link.nc, 1),
      await SentWindow.open(link.nc, 1, WINDOW_MS),
      WINDOW_MS,
      null,
      null,
      3,
    );
    const [p0, p1] = [new Port(), new Port()];
    w.setPort(0, p0);
    w.setPort(1, p1);
    const r = (seq: number): StoredRow => ({ ...row(seq), recipient: "carol", msgId: `c${seq}` });
    const five = [1, 2, 3, 4, 5].map(r);
    w.receive(0, [{ t: "append", rows: five, o: five.map(() => 1), c: five.map(() => 3) }]);
    await until(() => p1.got.length === 5);
    expect(p1.got.map((m) => m.t === "sent" ? m.status : m.t === "sendError" ? m.code : m.t)).toEqual([
      "INBOX_FULL",
      "INBOX_FULL",
      "stored",
      "stored",
      "stored",
    ]);
    expect(p0.got.find((m) => m.t === "rejected")).toEqual({ t: "rejected", user: "carol", seqs: [4, 5] });
    w.receive(0, [{ t: "append", rows: [r(2), r(6)], o: [1, 1], c: [3, 3] }]);
    await until(() => p1.got.length === 7);
    expect(p1.got.slice(5).map((m) => m.t === "sent" ? m.status : m.t === "sendError" ? m.code : m.t)).toEqual([
      "duplicate",
      "INBOX_FULL",
    ]);
    // After the recipient acked two, two more fit.
    // (An append does not wait for an earlier delete: a count read meanwhile can still be the old one.)
    w.receive(0, [{ t: "delete", user: "carol", upTo: 2 }]);
    await Bun.sleep(500);
    w.receive(0, [{
      t: "append",
      rows: [r(7), r(8), r(9)],
      o: [1, 1, 1],
      c: [3, 3, 3],
    }]);
    await until(() => p1.got.length === 10);
    expect(p1.got.slice(7).map((m) => m.t === "sent" ? m.status : m.t === "sendError" ? m.code : m.t)).toEqual([
      "INBOX_FULL",
      "stored",
      "stored",
    ]);
    expect(w.counters.rejectedFull).toBe(4); // 4, 5, 6, 9
  });
});

// Last: its append would show in the end-to-end test's scan of the dedupe window.
describe("JetStream writer with its last-seen store down", () => {
  test("a last-seen store that keeps failing holds back no reply (its KV stream without a leader)", async () => {
    const down = () => Promise.reject(new Error("jetstream is not enabled"));
    const seen = { set: down, get: down } as unknown as LastSeen;
    const w = new JsWriter(
      await ClusterInbox.open(link.nc, { replicas: 1, ttlSec: 0 }),
      await SeqBlocks.open(link.nc, 1),
      seen,
      await SentWindow.open(link.nc, 1, WINDOW_MS),
      WINDOW_MS,
    );
    const p0 = new Port();
    w.setPort(0, p0);
    w.setPort(1, new Port());
    const r = { ...row(1), recipient: "seen-down" };
    w.receive(0, [
      { t: "seen", user: "seen-down", ts: 1 },
      { t: "load", user: "seen-down", reserve: 10 },
      { t: "append", rows: [r], o: [1], c: [7] },
    ]);
    try {
      await until(() => p0.got.length === 2, 5_000);
      expect(p0.got.map((m) => m.t)).toEqual(["loaded", "committed"]);
      expect(p0.got[0]).toMatchObject({ lastSeen: 0 }); // unknown, not waited for
    } finally {
      w.stop();
    }
  });
});

describe("JetStream writer: last-seen times (written aside)", () => {
  /** A last-seen store whose every write waits until the test lets it finish. */
  function slowSeen() {
    const written: number[] = [];
    let finish = () => {};
    const store = {
      set: (_user: string, ts: number) => {
        written.push(ts);
        return new Promise<void>((r) => (finish = r));
      },
      get: () => Promise.resolve(0),
    } as unknown as LastSeen;
    return { store, written, finish: () => finish() };
  }

  test("a newer time that arrives as a write finishes is written too; settle waits for it", async () => {
    // The newer time comes 0..15 microtasks after the first write's store answered: every point
    // of the old write's wind-down (the check, the retry wrapper, the clean-up) is hit once.
    for (let hops = 0; hops < 16; hops++) {
      const seen = slowSeen();
      const none = {} as never; // no inbox, seq blocks or dedupe window: only last-seen is used
      const w = new JsWriter(none as ClusterInbox, none as SeqBlocks, seen.store, none as SentWindow, WINDOW_MS);
      w.setPort(0, new Port());
      w.receive(0, [{ t: "seen", user: "u", ts: 1 }]);
      seen.finish();
      for (let i = 0; i < hops; i++) await Promise.resolve();
      w.receive(0, [{ t: "seen", user: "u", ts: 2 }]);
      let ended = false;
      const settled = w.settle(2000).then(() => (ended = true));
      for (let i = 0; i < 50 && seen.written.at(-1) !== 2; i++) await Bun.sleep(1);
      await Bun.sleep(5);
      expect(ended).toBe(false); // the write of 2 is still under way
      seen.finish();
      const t0 = performance.now();
      await settled;
      expect({ hops, last: seen.written.at(-1) }).toEqual({ hops, last: 2 });
      expect(performance.now() - t0).toBeLessThan(1000); // ended by the write, not the bound
    }
  });
});
