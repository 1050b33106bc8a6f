// The JetStream inbox against a real nats-server: append (stored = PubAck), dedupe by msg id,
// backlog reads by direct get and by a short-lived ordered consumer, delete on cumulative ack,
// garbage on the inbox subjects skipped and counted; seq blocks never overlap, even under races
// between two would-be owners and across a server kill -9.

import { describe, expect, test } from "bun:test";
import type { NatsLink } from "../../src/cluster/connect.ts";
import { ClusterInbox } from "../../src/cluster/inbox.ts";
import { decodeRow, inboxSubject, rowHeaders, type StoredRow, token, untoken } from "../../src/cluster/inbox-codec.ts";
import { SeqBlocks } from "../../src/cluster/seq-blocks.ts";
import { natsForFile } from "../helpers/nats-links.ts";

const fx = natsForFile();

async function link(id: string): Promise<NatsLink> {
  const l = await fx.open(id);
  return l;
}

const row = (to: string, seq: number, from = "alice"): StoredRow => ({
  to,
  seq,
  from,
  id: `m-${seq}`,
  ts: 1_700_000_000_000 + seq,
  body: new TextEncoder().encode(`hello ${seq}`),
});

describe("inbox codec (pure)", () => {
  test("any user id becomes one subject token and back", () => {
    for (const u of ["bob", "a.b*c>d", "ünï cödé 🎉", "x".repeat(200), ""]) expect(untoken(token(u))).toBe(u);
    expect(inboxSubject("bob")).toMatch(/^iris\.inbox\.[0-9a-f]{2}\.Ym9i$/);
    expect(untoken("not base64!")).toBeNull();
  });

  test("malformed stored messages decode to null", () => {
    const r = row("bob", 1);
    const s = inboxSubject("bob");
    expect(decodeRow(s, 9, rowHeaders(r), r.body)).toEqual({ ...r, streamSeq: 9 });
    expect(decodeRow(s, 9, undefined, r.body)).toBeNull();
    expect(decodeRow("iris.inbox.00.Ym9i", 9, rowHeaders(r), r.body)).toBeNull(); // wrong bucket
    expect(decodeRow(inboxSubject("carol"), 9, rowHeaders(r), r.body)).not.toBeNull();
    const bad = rowHeaders(r);
    bad.set("Iris-Seq", "-1");
    expect(decodeRow(s, 9, bad, r.body)).toBeNull();
  });
});

describe("inbox on JetStream", () => {
  test("append, dedupe, read both ways, delete on ack", async () => {
    const inbox = await ClusterInbox.open((await link("i1")).nc, { replicas: 1, ttlSec: 0 });
    const rows = Array.from({ length: 200 }, (_, i) => row("bob", i + 1));
    const acks = await inbox.append(rows);
    expect(acks.every((a) => a.ok && !a.duplicate)).toBe(true);
    const retry = await inbox.append([rows[7]!]); // an SDK retry of an already stored send
    expect(retry[0]).toMatchObject({ ok: true, duplicate: true });
    await inbox.append([row("carol", 1)]); // another user's rows never show up in bob's backlog
    expect(await inbox.backlog("bob")).toBe(200);

    const direct = await inbox.readDirect("bob", 0, 1000);
    const ordered = await inbox.readOrdered("bob", 0, 1000);
    expect(direct.map((r) => r.seq)).toEqual(rows.map((r) => r.seq));
    expect(ordered).toEqual(direct);
    expect(await inbox.readBacklog("bob", 0, 1000)).toEqual(direct);
    expect((await inbox.readBacklog("bob", direct[9]!.streamSeq, 20)).map((r) => r.seq)).toEqual(
      rows.slice(10, 30).map((r) => r.seq),
    );
    expect(direct[0]!.body).toEqual(rows[0]!.body);
    // Each body has a buffer of its own: a view into the client's read buffer made a structured
    // clone of a few rows carry whole read buffers (a port item over max_payload: the held-batch loss).
    for (const r of [...direct, ...ordered]) expect(r.body.buffer.byteLength).toBe(r.body.byteLength);
    expect((await inbox.readDirect("bob", 0, 50)).length).toBe(50);

    const purged = await inbox.deleteThrough("bob", direct[99]!.streamSeq);
    expect(purged).toBe(100);
    expect((await inbox.readOrdered("bob", 0, 1000)).map((r) => r.seq)[0]).toBe(101);
    expect(await inbox.backlog("carol")).toBe(1);
    expect(await inbox.readOrdered("nobody", 0, 10)).toEqual([]);
  });

  test("garbage published on an inbox subject is counted and skipped", async () => {
    const l = await link("i2");
    const inbox = await ClusterInbox.open(l.nc, { replicas: 1, ttlSec: 0 });
    await inbox.append([row("dave", 1)]);
    l.nc.publish(inboxSubject("dave"), "no headers at all");
    await l.nc.flush();
    await inbox.append([row("dave", 2)]);
    const got = await inbox.readDirect("dave", 0, 10);
    expect(got.map((r) => r.seq)).toEqual([1, 2]);
    expect(inbox.counters.garbage).toBe(1);
  });
});

describe("seq blocks", () => {
  test("racing owners never get overlapping blocks", async () => {
    const [a, b] = [await SeqBlocks.open((await link("s1")).nc, 1), await SeqBlocks.open((await link("s2")).nc, 1)];
    const blocks = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).reserve("erin", 100)));
    const sorted = blocks.sort((x, y) => x.first - y.first);
    for (let i = 0; i < sorted.length; i++) {
      expect(sorted[i]!.last - sorted[i]!.first).toBe(99);
      if (i > 0) expect(sorted[i]!.first).toBe(sorted[i - 1]!.last + 1);
    }
    expect(sorted.at(-1)!.last).toBe(2000);
    expect(a.conflicts + b.conflicts).toBeGreaterThan(0); // the race really happened
  });

  test("the high-water survives a nats-server kill -9", async () => {
    const l = await link("s3");
    const blocks = await SeqBlocks.open(l.nc, 1);
    const before = await blocks.reserve("frank", 1000);
    await fx.nats.servers[0]!.stop("SIGKILL");
    await fx.nats.servers[0]!.start();
    const end = Date.now() + 10_000;
    while (l.state() !== "up" && Date.now() < end) await Bun.sleep(20);
    const after = await blocks.reserve("frank", 1000);
    expect(after.first).toBe(before.last + 1);
    // A new claim learns where the one before it began; a top-up keeps the claim's start.
    const claimed = await blocks.reserve("frank", 10, true);
    expect(claimed.prevFirst).toBe(0); // the earlier blocks opened no claim
    expect((await blocks.reserve("frank", 10)).prevFirst).toBe(claimed.first);
    const other = await blocks.reserve("frank", 10, true);
    expect(other.prevFirst).toBe(claimed.first);
    expect(await blocks.highWater("frank")).toBe(claimed.last + 20);
    // A top-up of a claim that is still the latest opens none; of one superseded since, a new one.
    expect((await blocks.reserve("frank", 10, other.first)).opened).toBe(false);
    const again = await blocks.reserve("frank", 10, claimed.first);
    expect([again.opened, again.prevFirst]).toEqual([true, other.first]);
  }, 20_000);
});
