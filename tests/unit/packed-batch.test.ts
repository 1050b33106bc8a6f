// A run of appends packed as one port message (router/packed-appends.ts) and a commit's "stored"
// acks packed for one shard (router/packed-acks.ts): round trips, the guards refuse what the store
// would throw on, and the shard's port turns packed acks back into `sent` messages in their order.

import { describe, expect, test } from "bun:test";
import { isPackedAppends, packAppends, unpackAppends } from "../../src/router/packed-appends.ts";
import { expandAcks, isPackedAcks, StoredAcksBuilder } from "../../src/router/packed-acks.ts";
import { type AppendReq, isWriterReq, type PortMsg, type SentMsg, type StoredRow } from "../../src/router/wire.ts";
import { packedBuffers, PortMesh } from "../../src/router/ports.ts";
import { packRemember, unpackRemember } from "../../src/router/packed-keys.ts";
import { SentFilter, sentKeyHash } from "../../src/router/sent-filter.ts";
import { createMetricsBuffer, SLOT_WRITER, SlotMetrics } from "../../src/observe/metrics.ts";

const row = (recipient: string, seq: number, sender: string, msgId: string, body: number[]): StoredRow => ({
  recipient,
  seq,
  sender,
  msgId,
  ts: 1_700_000_000_000 + seq,
  body: new Uint8Array(body),
});
/** Per row the key's hashes as an owner routed it (sentKeyHash), -1 and 0 for a row without id. */
const hashesOf = (rows: StoredRow[]) =>
  rows.flatMap((r) => r.msgId === "" ? [-1, 0] : sentKeyHash(r.recipient, r.sender, r.msgId));
const bobRows = [row("bob", 1, "alice", "m1", [1, 2]), row("bob", 2, "", "x\0y", []), row("bob", 3, "al", "", [])];
const reqs: AppendReq[] = [
  { t: "append", rows: bobRows, o: [0, -1, 2], c: [7, 8, 9], h: hashesOf(bobRows) },
  { t: "append", rows: [row("Zoë 🦊", 2 ** 40, "al", "icem1", [255])], o: [3], c: [2 ** 31] },
];

describe("packed appends", () => {
  test("round trip, unicode and NUL included, bodies byte-exact, each append kept apart", () => {
    const p = packAppends(reqs);
    expect(isPackedAppends(p)).toBe(true);
    expect(p.counts).toEqual([3, 1]);
    const back = unpackAppends(p);
    // An append without hashes comes back with "none" (-1, 0) for each row: the writer hashes those keys.
    const want = reqs.map((r) => ({ ...r, h: r.h ?? [-1, 0] }));
    expect(back.map((r) => ({ ...r, rows: r.rows.map((x) => ({ ...x, body: [...x.body] })) }))).toEqual(
      want.map((r) => ({ ...r, rows: r.rows.map((x) => ({ ...x, body: [...x.body] })) })),
    );
    expect(back[0]!.h!.slice(0, 2)).toEqual(sentKeyHash("bob", "alice", "m1")); // the owner's hashes, as given
  });

  test("the guard refuses bad counts, lengths, seq < 1, a fractional ts or conn, bodies past the buffer", () => {
    const p = packAppends(reqs);
    const withNum = (i: number, v: number) => {
      const nums = p.nums.slice();
      nums[i] = v;
      return isPackedAppends({ ...p, nums });
    };
    expect(withNum(3, 1)).toBe(true); // control: a changed seq that is still valid passes
    expect(withNum(3, 0)).toBe(false);
    expect(withNum(4, 1.5)).toBe(false);
    expect(withNum(6, 0.5)).toBe(false);
    expect(withNum(0, 4)).toBe(false); // lengths no longer add up to the text
    expect(withNum(7, 99)).toBe(false); // a body past the buffer
    expect(withNum(17, 0)).toBe(false); // body ends going backwards
    expect(withNum(8, 2 ** 32 - 1)).toBe(true); // control: the largest uint32 h1
    expect(withNum(8, 2 ** 32)).toBe(false); // h1 past a uint32
    expect(withNum(8, -2)).toBe(false); // h1 below "none"
    expect(withNum(8, 0.5)).toBe(false);
    expect(withNum(9, -(2 ** 31))).toBe(true); // control: the smallest int32 h2
    expect(withNum(9, 2 ** 31)).toBe(false); // h2 past an int32
    expect(withNum(9, NaN)).toBe(false);
    expect(isPackedAppends({ ...p, counts: [3, 0] })).toBe(false);
    expect(isPackedAppends({ ...p, counts: [1, 1] })).toBe(false);
    expect(isPackedAppends({ ...p, counts: [] })).toBe(false);
    expect(isPackedAppends({ ...p, text: p.text + "z" })).toBe(false);
    expect(isPackedAppends({ ...p, nums: [...p.nums] })).toBe(false);
    expect(isPackedAppends({ ...p, t: "append" })).toBe(false);
  });
});

describe("an append's key hashes at the writer's port", () => {
  test("two per row, each pair in range, or none at all", () => {
    const a = reqs[0]!;
    expect(isWriterReq(a)).toBe(true);
    expect(isWriterReq({ ...a, h: undefined })).toBe(true); // an append without hashes: the writer hashes
    expect(isWriterReq({ ...a, h: a.h!.slice(2) })).toBe(false); // one row short
    expect(isWriterReq({ ...a, h: [2 ** 32, 0, -1, 0, -1, 0] })).toBe(false);
    expect(isWriterReq({ ...a, h: [0, 2 ** 31, -1, 0, -1, 0] })).toBe(false);
    expect(isWriterReq({ ...a, h: [-2, 0, -1, 0, -1, 0] })).toBe(false);
    expect(isWriterReq({ ...a, h: ["1", 0, -1, 0, -1, 0] })).toBe(false);
    expect(isWriterReq({ ...a, h: [5, -7, -1, 0, -1, 0] })).toBe(true); // control
  });
});

describe("packed stored acks", () => {
  test("round trip and guard", () => {
    const b = new StoredAcksBuilder();
    b.add(5, "m1");
    b.add(-3, "");
    b.add(2 ** 40, "Zoë 🦊");
    const p = b.done();
    expect(isPackedAcks(p)).toBe(true);
    const out: SentMsg[] = [];
    expandAcks(p, (m) => out.push(m));
    expect(out).toEqual([
      { t: "sent", conn: 5, id: "m1", status: "stored" },
      { t: "sent", conn: -3, id: "", status: "stored" },
      { t: "sent", conn: 2 ** 40, id: "Zoë 🦊", status: "stored" },
    ]);
    expect(isPackedAcks({ ...p, ids: p.ids + "x" })).toBe(false);
    expect(isPackedAcks({ ...p, nums: p.nums.subarray(1) })).toBe(false);
    expect(isPackedAcks({ ...p, nums: Float64Array.of(1.5, 0) })).toBe(false);
    expect(isPackedAcks({ ...p, nums: Float64Array.of(1, -1) })).toBe(false);
  });

  test("a shard's port hands packed acks to its handler as `sent` messages, in order with the rest", () => {
    const seen: PortMsg[] = [];
    const mesh = new PortMesh(0, 1, new SlotMetrics(createMetricsBuffer(1), SLOT_WRITER), (m) => seen.push(m));
    const b = new StoredAcksBuilder();
    b.add(1, "a");
    b.add(2, "b");
    mesh.receive([{ t: "committed", n: 1 }, b.done(), { t: "sent", conn: 3, id: "c", status: "duplicate" }, 42]);
    expect(seen).toEqual([
      { t: "committed", n: 1 },
      { t: "sent", conn: 1, id: "a", status: "stored" },
      { t: "sent", conn: 2, id: "b", status: "stored" },
      { t: "sent", conn: 3, id: "c", status: "duplicate" },
    ]);
  });

  test("a shard's port sends appends since the last other request as one message, in their place", async () => {
    const ch = new MessageChannel();
    const got: unknown[][] = [];
    ch.port2.onmessage = (e) => got.push(e.data as unknown[]);
    const mesh = new PortMesh(0, 1, new SlotMetrics(createMetricsBuffer(1), SLOT_WRITER), () => {});
    // What the flush hands over as transfers (the packed appends' buffers: moved, not cloned).
    const moved: unknown[] = [];
    const post = ch.port1.postMessage.bind(ch.port1);
    ch.port1.postMessage = ((m: unknown, t?: Transferable[]) => (moved.push(...(t ?? [])), post(m, t ?? []))) as never;
    mesh.setWriter(ch.port1);
    mesh.toWriter(reqs[0]!);
    mesh.toWriter(reqs[1]!);
    mesh.toWriter({ t: "seen", user: "bob", ts: 5 });
    mesh.toWriter(reqs[1]!);
    mesh.flush();
    expect(moved.length).toBe(4); // two packed appends, two buffers each
    expect(moved.every((b) => b instanceof ArrayBuffer && b.byteLength === 0)).toBe(true); // detached here
    const end = Date.now() + 2000;
    while (got.length === 0 && Date.now() < end) await Bun.sleep(5);
    ch.port1.close();
    const batch = got[0]!;
    expect(batch.map((m) => (m as { t: string }).t)).toEqual(["appends", "seen", "appends"]);
    expect(isPackedAppends(batch[0]) && unpackAppends(batch[0]).length).toBe(2);
    expect(isPackedAppends(batch[2]) && unpackAppends(batch[2])[0]!.rows[0]!.msgId).toBe("icem1");
  });

  test("a packed remember's typed column is moved to the writer (a short one's number[] is cloned); keys arrive whole", async () => {
    const keys = (n: number) =>
      Array.from(
        { length: n },
        (_, i) => {
          const k = { recipient: `r${i % 7}`, sender: "Zoë", msgId: `id${i}`, seq: i + 1, ts: 1_700_000_000_000 + i };
          const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId); // as an owner's keys carry them
          return { ...k, h1, h2 };
        },
      );
    const long = { t: "remember" as const, keys: keys(40) };
    const short = { t: "remember" as const, keys: keys(3) };
    const pl = packRemember(long), ps = packRemember(short);
    expect(pl.nums instanceof Float64Array && !(ps.nums instanceof Float64Array)).toBe(true);
    const out = [ps, pl, { t: "seen" as const, user: "bob", ts: 5 }];
    expect(packedBuffers(out)).toEqual([(pl.nums as Float64Array).buffer as ArrayBuffer]);
    const ch = new MessageChannel();
    const got: unknown[][] = [];
    ch.port2.onmessage = (e) => got.push(e.data as unknown[]);
    ch.port1.postMessage(out, packedBuffers(out));
    expect(pl.nums.length).toBe(0); // detached here: moved, not copied
    const end = Date.now() + 2000;
    while (got.length === 0 && Date.now() < end) await Bun.sleep(5);
    ch.port1.close();
    expect(unpackRemember(got[0]![0] as typeof ps)).toEqual(short);
    expect(unpackRemember(got[0]![1] as typeof pl)).toEqual(long);
  });

  test("the packed appends' buffers are moved to the writer, not cloned; the rows arrive whole", async () => {
    const packed = packAppends(reqs);
    const out = [packed, { t: "seen" as const, user: "bob", ts: 5 }];
    expect(packedBuffers(out)).toEqual([packed.nums.buffer as ArrayBuffer, packed.bodies.buffer as ArrayBuffer]);
    const ch = new MessageChannel();
    const got: unknown[][] = [];
    ch.port2.onmessage = (e) => got.push(e.data as unknown[]);
    ch.port1.postMessage(out, packedBuffers(out));
    expect(packed.nums.byteLength + packed.bodies.byteLength).toBe(0); // detached here: moved, not copied
    const end = Date.now() + 2000;
    while (got.length === 0 && Date.now() < end) await Bun.sleep(5);
    ch.port1.close();
    const back = unpackAppends(got[0]![0] as typeof packed);
    expect(back.map((r) => r.rows.map((x) => [x.recipient, x.seq, x.msgId, [...x.body]]))).toEqual(
      reqs.map((r) => r.rows.map((x) => [x.recipient, x.seq, x.msgId, [...x.body]])),
    );
  });

  test("a filter image's bit words are moved to the writer at shutdown, each buffer once; they arrive whole", async () => {
    const f = new SentFilter(60_000);
    for (let i = 0; i < 20_000; i++) f.add(...sentKeyHash("r", "s", `m${i}`), 1000, 1000); // two filters
    const image = f.image(1000);
    const words = image.gens[0]!.filters.map((x) => [...x.bits.subarray(0, 64)]);
    const out = [{ t: "filterImage" as const, shard: 0, shards: 1, image }, { t: "bye" as const, shard: 0 }];
    expect(packedBuffers(out).length).toBe(2);
    const ch = new MessageChannel();
    const got: unknown[][] = [];
    ch.port2.onmessage = (e) => got.push(e.data as unknown[]);
    ch.port1.postMessage(out, packedBuffers(out));
    expect(image.gens[0]!.filters.every((x) => x.bits.byteLength === 0)).toBe(true); // moved, not copied
    const end = Date.now() + 2000;
    while (got.length === 0 && Date.now() < end) await Bun.sleep(5);
    ch.port1.close();
    const back = (got[0]![0] as { image: typeof image }).image;
    expect(back.gens[0]!.filters.map((x) => [...x.bits.subarray(0, 64)])).toEqual(words);
  });
});
