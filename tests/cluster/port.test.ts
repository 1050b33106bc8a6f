// The cross-node port against a real nats-server: one publish per destination per tick, FIFO per
// destination, garbage on a node's subject counted and dropped without disturbing real traffic.

import { describe, expect, test } from "bun:test";
import { NodePort } from "../../src/cluster/port.ts";
import {
  decodeBatch,
  encodeBatch,
  NO_STAMP,
  nodeSubject,
  PORT_FORMAT_VERSION,
  stampBatch,
} from "../../src/cluster/port-codec.ts";
import { AGE_WINDOW_MS, PortAges } from "../../src/cluster/port-age.ts";
import { PortCounts, PortSeqs } from "../../src/cluster/port-seq.ts";
import { splitPortMsg } from "../../src/cluster/port-split.ts";
import { type Delivery, isPortMsg, type PortMsg } from "../../src/router/wire.ts";
import { natsForFile } from "../helpers/nats-links.ts";

interface Item {
  k: number;
  body: Uint8Array;
}
const isItem = (x: unknown): x is Item =>
  typeof x === "object" && x !== null && Number.isInteger((x as Item).k) && (x as Item).body instanceof Uint8Array;

const fx = natsForFile();
const links = fx.links;

async function port(id: string, self = -1, onGap?: (src: number) => void): Promise<NodePort<Item>> {
  const l = await fx.open(id);
  return new NodePort(l.nc, isItem, self, onGap);
}

const delivery = (seq: number, bodyBytes: number): Delivery => ({
  seq,
  ts: 1_700_000_000_000,
  from: "alice",
  id: `m-${seq}`,
  body: new Uint8Array(bodyBytes).fill(seq & 0xff),
  t0: 0,
});

/** Publisher `a` (shard address `aSelf`) and receiver `b` listening as node `bId` shard 0: items' k in order, gaps by source. */
async function stampedPair(aId: string, aSelf: number, bId: string, bSelf: number) {
  const gaps: number[] = [];
  const a = await port(aId, aSelf);
  const b = await port(bId, bSelf, (src) => gaps.push(src));
  const got: number[] = [];
  b.listen(bId, 0, (items) => got.push(...items.map((i) => i.k)));
  await links.at(-1)!.nc.flush(); // b's subscription is on the server
  return { a, b, got, gaps };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(10);
  }
}

describe("port codec (pure)", () => {
  test("round trip; every kind of garbage is counted", () => {
    const items = [{ k: 1, body: new Uint8Array([1, 2]) }, { k: 2, body: new Uint8Array(0) }];
    expect(decodeBatch(encodeBatch(items), isItem)).toMatchObject({ items, garbage: 0, stamp: NO_STAMP });
    expect(decodeBatch(stampBatch(encodeBatch(items), NO_STAMP, 1234.5), isItem).sentAt).toBe(1234.5);
    const stamp = { src: 1025, epoch: 0xfffffffe, n: 7 };
    expect(decodeBatch(encodeBatch(items, stamp), isItem).stamp).toEqual(stamp);
    expect(decodeBatch(encodeBatch([items[0], { k: "x" }, null]), isItem).garbage).toBe(2);
    expect(decodeBatch(new Uint8Array([9, 1, 2, 3]), isItem)).toEqual({ items: [], garbage: 1 });
    expect(decodeBatch(new Uint8Array([1, 0xff, 0xfe]), isItem)).toEqual({ items: [], garbage: 1 });
    expect(decodeBatch(encodeBatch({ k: 1 } as never), isItem).garbage).toBe(1);
    const g = new Uint8Array(64);
    for (let i = 0; i < 5000; i++) {
      crypto.getRandomValues(g);
      g[0] = PORT_FORMAT_VERSION;
      decodeBatch(g, isItem); // must never throw
    }
  });
});

describe("stale batches (pure)", () => {
  test("a batch slower than max age is stale, measured against the publisher's fastest transit", () => {
    const ages = new PortAges(3500);
    const skew = -60_000; // the publisher's clock is a minute ahead of ours: only transit differences count
    const t = 1_000_000;
    expect(ages.stale(7, t - skew - 2, t)).toBe(false);
    expect(ages.stale(7, t + 100 - skew - 3000, t + 100)).toBe(false); // 3 s late: not yet
    expect(ages.stale(7, t + 200 - skew - 5000, t + 200)).toBe(true); // 5 s late: sent before a cut
    expect(ages.stale(7, t + 300 - skew - 1, t + 300)).toBe(false);
    expect(ages.stale(8, t - 9000, t)).toBe(true); // the first batch seen can be stale too
    expect(ages.stale(8, t + 1 - 2, t + 1)).toBe(false);
    expect(ages.stale(-1, 0, t)).toBe(false); // unstamped
    expect(new PortAges(Infinity).stale(7, 0, t)).toBe(false);
  });

  test("a publisher whose clock is behind ours is learned after two windows", () => {
    const ages = new PortAges(3500);
    const t = 1_000_000;
    expect(ages.stale(9, t - 10_000, t)).toBe(true);
    expect(ages.stale(9, t + AGE_WINDOW_MS - 10_000, t + AGE_WINDOW_MS)).toBe(true);
    expect(ages.stale(9, t + 2 * AGE_WINDOW_MS - 10_000, t + 2 * AGE_WINDOW_MS)).toBe(false);
  });

  test("a clock step is forgotten after two windows", () => {
    const ages = new PortAges(3500);
    const t = 1_000_000;
    expect(ages.stale(7, t - 1, t)).toBe(false);
    // The publisher's clock steps back by 10 s: its batches look late until the baseline moves on.
    expect(ages.stale(7, t + 10 - 10_000, t + 10)).toBe(true);
    const later = t + 2 * AGE_WINDOW_MS + 20;
    expect(ages.stale(7, later - 10_000, later)).toBe(false);
    expect(ages.stale(7, later + 5 - 10_001, later + 5)).toBe(false);
  });
});

describe("port loss detection (pure)", () => {
  test("a count jump is a gap; syncs repeat the last count; a new epoch must start at its first batch", () => {
    const tx = new PortCounts();
    const rx = new PortSeqs();
    const at = (n: number) => ({ src: 3, epoch: tx.epoch, n });
    expect(rx.check(tx.next(3, "s"), false)).toBe("ok");
    expect(rx.check(tx.next(3, "s"), false)).toBe("ok");
    expect(rx.check(tx.syncs(3)[0]![1], true)).toBe("ok"); // n = 2 again
    tx.next(3, "s"); // n = 3 is lost
    expect(rx.check(tx.next(3, "s"), false)).toBe("gap");
    expect(rx.check(at(5), false)).toBe("ok");
    expect(rx.check(at(7), true)).toBe("gap"); // a sync after a lost last batch (6 and 7)
    expect(rx.check(at(8), false)).toBe("ok");
    expect(rx.check({ src: 3, epoch: tx.epoch + 1, n: 1 }, false)).toBe("ok"); // restarted publisher
    // An epoch first seen past its first batch: earlier ones may have been lost (the split-brain loss).
    expect(rx.check({ src: 3, epoch: tx.epoch + 2, n: 40 }, false)).toBe("gap");
    expect(rx.check({ src: 3, epoch: tx.epoch + 2, n: 41 }, false)).toBe("ok");
    expect(rx.check({ src: 3, epoch: tx.epoch + 3, n: 5 }, true)).toBe("gap"); // a sync of 5 first: 1..5 unseen
  });
});

describe("cross-node port", () => {
  test("batched per destination per tick, FIFO per destination", async () => {
    const a = await port("a");
    const b = await port("b");
    const got: number[][] = [[], []];
    b.listen("b", 0, (items) => got[0]!.push(...items.map((i) => i.k)));
    b.listen("b", 1, (items) => got[1]!.push(...items.map((i) => i.k)));
    await links[1]!.nc.flush();
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      a.send("b", i % 2, { k: i, body: new Uint8Array(16) });
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r)); // a tick ends: one publish per destination
    }
    await until(() => got[0]!.length + got[1]!.length === N);
    expect(got[0]).toEqual(Array.from({ length: N / 2 }, (_, i) => 2 * i));
    expect(got[1]).toEqual(Array.from({ length: N / 2 }, (_, i) => 2 * i + 1));
    expect(a.counters.batchesOut).toBe(20);
    expect(b.counters.garbage).toBe(0);
  });

  test("stamped batches: no gap in normal traffic and syncs; a lost batch is reported with its source", async () => {
    const { a, b, got, gaps } = await stampedPair("e", 1026, "f", 2048);
    for (let i = 0; i < 2000; i++) {
      a.send("f", 0, { k: i, body: new Uint8Array(8) });
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    await until(() => got.length === 2000);
    await Bun.sleep(1200); // one sync of the last count
    expect(gaps).toEqual([]);
    // A batch lost on the way: publish the next two counts' successor directly.
    const raw = links.at(-2)!.nc;
    const epoch = 12345;
    raw.publish(nodeSubject("f", 0), encodeBatch([{ k: -1, body: new Uint8Array(1) }], { src: 7, epoch, n: 1 }));
    raw.publish(nodeSubject("f", 0), encodeBatch([{ k: -3, body: new Uint8Array(1) }], { src: 7, epoch, n: 3 }));
    await until(() => got.includes(-3));
    expect(gaps).toEqual([7]);
    expect(b.counters.gaps).toBe(1);
    a.close();
    b.close();
  });

  test("garbage on a node's subject is counted and dropped; real traffic continues", async () => {
    const a = await port("c");
    const b = await port("d");
    const got: number[] = [];
    b.listen("d", 0, (items) => got.push(...items.map((i) => i.k)));
    // This test's own links (c's, then d's): the earlier tests' links are still open, and a flush
    // on one of those does not make sure d's subscription has reached the server.
    const raw = links.at(-2)!.nc;
    await links.at(-1)!.nc.flush();
    raw.publish(nodeSubject("d", 0), "plain text");
    raw.publish(nodeSubject("d", 0), new Uint8Array(0));
    raw.publish(nodeSubject("d", 0), encodeBatch([{ k: 1, body: "not bytes" }, { k: 7, body: new Uint8Array(1) }]));
    // Two publishers have no order between them: the server must hold raw's first.
    await raw.flush();
    a.send("d", 0, { k: 8, body: new Uint8Array(1) });
    await until(() => got.length === 2);
    expect(got).toEqual([7, 8]);
    expect(b.counters.garbage).toBe(3);
  });

  test("a delivery too big for one publish arrives split, in order, the page flag on its last part only", async () => {
    // 96 held deliveries of 20 KB (about 2 MB, over NATS's 1 MiB max_payload): one port item.
    const gaps: number[] = [];
    const la = await fx.open("g");
    const lb = await fx.open("h");
    const a = new NodePort<PortMsg>(la.nc, isPortMsg, 1024, () => {}, Infinity, splitPortMsg);
    const b = new NodePort<PortMsg>(lb.nc, isPortMsg, 0, (src) => gaps.push(src));
    const got: PortMsg[] = [];
    b.listen("h", 0, (items) => got.push(...items));
    await lb.nc.flush();
    const items = Array.from({ length: 96 }, (_, i) => delivery(19457 + i, 20_000));
    a.send("h", 0, { t: "deliver", user: "bob", conn: 2, items, page: true });
    a.send("h", 0, { t: "deliver", user: "bob", conn: 2, items: [delivery(19553, 10)], page: false });
    await until(() => got.some((m) => m.t === "deliver" && m.items[0]?.seq === 19553));
    const parts = got.filter((m): m is Extract<PortMsg, { t: "deliver" }> => m.t === "deliver");
    expect(parts.flatMap((m) => m.items.map((d) => d.seq))).toEqual(Array.from({ length: 97 }, (_, i) => 19457 + i));
    expect(parts.flatMap((m) => m.items.map((d) => d.body[0]))).toEqual(
      Array.from({ length: 97 }, (_, i) => (19457 + i) & 0xff),
    );
    expect(parts.length).toBeGreaterThan(2);
    expect(parts.slice(0, -2).every((m) => !m.page)).toBe(true);
    expect(parts.at(-2)!.page).toBe(true); // the held batch's last part
    expect(a.counters.splits).toBeGreaterThan(0);
    expect(a.counters.publishErrors).toBe(0);
    expect(gaps).toEqual([]);
    a.close();
    b.close();
  });

  test("an item that cannot be published is a gap at its receiver, never a silent loss", async () => {
    const { a, b, got, gaps } = await stampedPair("i", 1025, "j", 0);
    a.send("j", 0, { k: 1, body: new Uint8Array(8) });
    await until(() => got.includes(1));
    a.send("j", 0, { k: 2, body: new Uint8Array(2 * 1024 * 1024) }); // over max_payload, not splittable
    await new Promise((r) => setImmediate(r));
    a.send("j", 0, { k: 3, body: new Uint8Array(8) });
    await until(() => got.includes(3));
    expect(got).toEqual([1, 3]);
    expect(a.counters.publishErrors).toBe(1);
    expect(gaps).toEqual([1025]); // the receiver resynchronises what the publisher served it
    a.close();
    b.close();
  });
});

describe("port item split (pure)", () => {
  test("only a delivery of several messages splits; halves keep order, the page flag goes last", () => {
    const items = [1, 2, 3, 4, 5].map((s) => delivery(s, 1));
    const [x, y] = splitPortMsg({ t: "deliver", user: "u", conn: 1, items, page: true })! as Extract<
      PortMsg,
      { t: "deliver" }
    >[];
    expect([x!.items.map((d) => d.seq), x!.page, y!.items.map((d) => d.seq), y!.page]).toEqual([
      [1, 2],
      false,
      [3, 4, 5],
      true,
    ]);
    expect(splitPortMsg({ t: "deliver", user: "u", conn: 1, items: [items[0]!], page: false })).toBeNull();
    expect(splitPortMsg({ t: "evict", user: "u", conn: 1, why: "slow" })).toBeNull();
  });
});
