// Backlog pages as pre-encoded v1 DELIVER frames (router/frame-page.ts, issue 14): the frames are
// byte for byte what the v1 codec encodes, the writer's page is cut as cutPage cuts, the port guard
// refuses malformed pages, and each connection kind gets the bytes it always got.

import { describe, expect, test } from "bun:test";
import {
  frameBundles,
  frameDeliveries,
  framePage,
  framesAfter,
  isFramePage,
  joinedBodies,
  pageBuffers,
  pageDone,
} from "../../src/router/frame-page.ts";
import { encodeV1Server } from "../../src/protocol/v1.ts";
import { encodeServerFrame } from "../../src/protocol/index.ts";
import { deliverHead, splitServerBundle, V1_BUNDLE_SERVER } from "../../src/protocol/v1-bundle.ts";
import { isPortMsg, type StoredRow } from "../../src/router/wire.ts";
import { cutPage, framePageOf } from "../../src/store/writer.ts";
import { writeFramePage } from "../../src/gateway/page-writer.ts";
import { TcpTransport, type Transport } from "../../src/gateway/transports.ts";
import { ROW_OVERHEAD_BYTES } from "../../src/limits.ts";

const enc = new TextEncoder();
const rows: StoredRow[] = [
  { recipient: "u", seq: 1, sender: "alice", msgId: "m1", ts: 1_700_000_000_123, body: enc.encode("hi") },
  { recipient: "u", seq: 2, sender: "bob", msgId: "", ts: 2 ** 40 + 7, body: new Uint8Array(0) },
  { recipient: "u", seq: 7, sender: "žofie", msgId: "id-é-🙂", ts: 5, body: enc.encode("ünïcødé") },
  { recipient: "u", seq: 2 ** 33, sender: "c", msgId: "x".repeat(255), ts: 9, body: new Uint8Array(3000).fill(9) },
];
const deliverFrame = (r: StoredRow) =>
  encodeV1Server({ op: "deliver", seq: r.seq, ts: r.ts, from: r.sender, id: r.msgId, body: r.body });
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.byteLength;
  return out;
};

describe("frame pages", () => {
  test("each frame is the v1 codec's DELIVER byte for byte, and survives a port's clone", () => {
    const p = structuredClone(framePage(rows));
    expect(isFramePage(p)).toBe(true);
    expect([...p.seqs]).toEqual(rows.map((r) => r.seq));
    expect([...p.frames]).toEqual([...concat(rows.map(deliverFrame))]);
    expect(frameDeliveries(p, 0).map((d) => [d.seq, d.ts, d.from, d.id, [...d.body], d.t0])).toEqual(
      rows.map((r) => [r.seq, r.ts, r.sender, r.msgId, [...r.body], 0]),
    );
  });

  test("a page moves to another thread by its own buffers; a written page is freed at once, a lent one goes back", () => {
    const p = framePage(rows);
    const buffers = pageBuffers(p);
    expect(new Set(buffers).size).toBe(3); // listed once each: a repeat fails the whole post
    const moved = structuredClone(p, { transfer: buffers });
    expect([...moved.frames]).toEqual([...concat(rows.map(deliverFrame))]);
    expect(p.frames.byteLength).toBe(0); // the sender's side holds nothing now
    const written = framePage(rows);
    pageDone(written);
    expect([written.seqs.byteLength, written.frames.byteLength, written.ends.byteLength]).toEqual([0, 0, 0]);
    const lent = framePage(rows);
    let released = 0;
    lent.release = () => released++;
    pageDone(lent);
    expect(released).toBe(1);
    expect(lent.frames.byteLength).toBeGreaterThan(0); // the lender's buffer is its own to keep
  });

  test("a stored head and its body are the codec's DELIVER frame; rows with and without heads mix", () => {
    for (const r of rows) {
      expect([...deliverHead(r.seq, r.ts, r.sender, r.msgId, r.body.byteLength), ...r.body]).toEqual([
        ...deliverFrame(r),
      ]);
    }
    // A backlog stored partly before migration 6 (no head: encoded at read) and partly after.
    const mixed = rows.map((r, i) =>
      i % 2 === 0
        ? [r.seq, deliverHead(r.seq, r.ts, r.sender, r.msgId, r.body.byteLength), r.body, null, null, null]
        : [r.seq, null, r.body, r.sender, r.msgId, r.ts]
    );
    const got = framePageOf(mixed, rows.length, 1 << 20);
    expect([...got.frames.frames]).toEqual([...concat(rows.map(deliverFrame))]);
  });

  test("the writer's page from SQLite's value rows is cut exactly as cutPage cuts rows", () => {
    const values = rows.map((r) => [r.seq, null, r.body, r.sender, r.msgId, r.ts]);
    const fits = (n: number) => rows.slice(0, n).reduce((b, r) => b + r.body.byteLength + ROW_OVERHEAD_BYTES, 0);
    for (
      const [limit, maxBytes] of [[4, 1 << 20], [9, 1 << 20], [4, fits(2)], [4, fits(2) + 1], [4, 1], [4, fits(3)]]
    ) {
      const want = cutPage(rows, limit!, maxBytes!);
      const got = framePageOf(values, limit!, maxBytes!);
      expect([got.more, [...got.frames.seqs]]).toEqual([want.more, want.rows.map((r) => r.seq)]);
      expect([...got.frames.frames]).toEqual([...concat(want.rows.map(deliverFrame))]);
    }
    expect(framePageOf([], 10, 100).frames.seqs.length).toBe(0);
  });

  test("rows above a cursor: the page itself, a copy of the rest, or nothing", () => {
    const p = framePage(rows);
    expect(framesAfter(p, 0)).toBe(p);
    const rest = framesAfter(p, 2);
    expect(isFramePage(rest)).toBe(true);
    expect([...rest.frames]).toEqual([...concat(rows.slice(2).map(deliverFrame))]);
    expect(framesAfter(p, 2 ** 33).seqs.length).toBe(0);
    expect(frameDeliveries(p, 2).map((d) => d.seq)).toEqual([7, 2 ** 33]);
  });

  test("malformed pages are refused by the port guard", () => {
    const good = () => framePage(rows);
    const flip = (i: number, v: number) => {
      const p = good();
      p.frames[i] = v;
      return p;
    };
    const bad: unknown[] = [
      null,
      { ...good(), seqs: [...good().seqs] },
      { ...good(), seqs: new Float64Array([1, 2, 7]) },
      { ...good(), seqs: new Float64Array([2, 1, 7, 2 ** 33]) },
      { ...good(), seqs: new Float64Array([1, 3, 7, 2 ** 33]) }, // the frame says 2
      { ...good(), ends: good().ends.map((e, i) => (i === 1 ? e + 1 : e)) },
      { ...good(), ends: good().ends.map((e, i) => (i === 3 ? e - 1 : e)) },
      { ...good(), frames: good().frames.slice(0, 10) },
      flip(0, 0x43), // not a DELIVER
      flip(17, 200), // sender length runs past the frame
      flip(1 + 8 + 8 + 1 + 5 + 1 + 2 + 3, 9), // body length disagrees with the frame's end
    ];
    for (const b of bad) expect(isFramePage(b)).toBe(false);
    const reply = (frames: unknown) => ({ t: "rows", user: "u", gen: 1, rows: [], frames, more: false });
    expect(isPortMsg(reply(bad[4]))).toBe(false);
    expect(isPortMsg(reply(good()))).toBe(true);
    const deliver = (frames: unknown) => ({ t: "deliver", user: "u", conn: 1, items: [], page: true, frames });
    expect(isPortMsg(deliver(bad[6]))).toBe(false);
    expect(isPortMsg(deliver(good()))).toBe(true);
  });

  test("bundles hold whole frames, each message within its budget, in order", () => {
    const p = framePage(rows);
    for (const max of [1 << 20, 100, 3100, 1]) {
      const msgs = frameBundles(p, max);
      const frames = msgs.flatMap((m) => (m[0] === V1_BUNDLE_SERVER ? splitServerBundle(m) : [m]));
      expect(frames.map((f) => [...f])).toEqual(rows.map((r) => [...deliverFrame(r)]));
      for (const m of msgs) if (m[0] === V1_BUNDLE_SERVER) expect(m.byteLength).toBeLessThanOrEqual(max);
    }
    expect(frameBundles(p, 1 << 20).length).toBe(1);
    expect(joinedBodies(p)).toEqual(concat(rows.map((r) => r.body)));
  });
});

/** A socket that records what was written (and whether inside a cork). */
class Recorder implements Transport {
  writes: Uint8Array[] = [];
  corks = 0;
  refuseAfter = Infinity;
  send(d: string | Uint8Array): number {
    if (this.writes.length >= this.refuseAfter) return 0;
    this.writes.push(typeof d === "string" ? enc.encode(d) : d.slice());
    return 1;
  }
  getBufferedAmount(): number {
    return 0;
  }
  close(): void {}
  pause(): void {}
  resume(): void {}
  /** As Bun's WebSocket: returns what `writes` returned (nothing); a drop shows in a send's 0. */
  cork(writes: () => void): unknown {
    this.corks++;
    return writes();
  }
}

describe("writing a frame page", () => {
  const p = framePage(rows);

  test("v0 over TCP: the raw bodies joined in one write; over WebSocket one message each", () => {
    const written: Uint8Array[] = [];
    const sock = { write: (b: Uint8Array) => (written.push(b.slice()), b.byteLength) };
    const tcp = new TcpTransport(sock as unknown as ConstructorParameters<typeof TcpTransport>[0]);
    expect(writeFramePage(tcp, "v0", false, p)).toBe(true);
    expect(written).toEqual([concat(rows.map((r) => r.body))]);
    const ws = new Recorder();
    expect(writeFramePage(ws, "v0", false, p)).toBe(true);
    expect(ws.writes).toEqual(rows.map((r) => r.body));
    expect(ws.corks).toBe(1);
  });

  test("plain v1: each DELIVER as its own message, inside one cork", () => {
    const t = new Recorder();
    expect(writeFramePage(t, "v1", false, p)).toBe(true);
    expect(t.writes.map((w) => [...w])).toEqual(rows.map((r) => [...deliverFrame(r)]));
    expect(t.corks).toBe(1);
  });

  test("v1 with bundles: one BUNDLE of the frames", () => {
    const t = new Recorder();
    expect(writeFramePage(t, "v1", true, p)).toBe(true);
    expect(t.writes.length).toBe(1);
    expect(splitServerBundle(t.writes[0]!).map((f) => [...f])).toEqual(rows.map((r) => [...deliverFrame(r)]));
  });

  test("JSON: the deliveries encoded as JSON, one message each", () => {
    const t = new Recorder();
    expect(writeFramePage(t, "json", false, p)).toBe(true);
    const want = rows.map((r) =>
      encodeServerFrame({ op: "deliver", seq: r.seq, ts: r.ts, from: r.sender, id: r.msgId, body: r.body }, "json")
    );
    expect(t.writes.map((w) => new TextDecoder().decode(w))).toEqual(want as string[]);
    expect(t.corks).toBe(1);
  });

  test("a refused write reports failure", () => {
    const t = new Recorder();
    t.refuseAfter = 2;
    expect(writeFramePage(t, "v1", false, p)).toBe(false);
    expect(writeFramePage(new Recorder(), "v1", false, framePage([]))).toBe(true);
  });
});
