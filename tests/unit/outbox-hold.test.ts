// Issue 14, per-message CPU and paced latency: the outbox's hold (frames queued early in a long
// event-loop turn go out at the next message read once they waited OUTBOX_HOLD_MS, not at the
// turn's end), and the hot-path encoders, checked byte for byte against independent encodings.

import { describe, expect, test } from "bun:test";
import { Outbox } from "../../src/gateway/outbox.ts";
import type { Transport } from "../../src/gateway/transports.ts";
import { Reader } from "../../src/protocol/bytes.ts";
import { encodeDeliver, encodeDeliveries, encodeSent } from "../../src/protocol/v1-bundle.ts";
import { encodeV1Deliver, SENT_STATUS_BYTE } from "../../src/protocol/v1.ts";

/** A socket that records every write (a cork's frames as one group). */
class Recorder implements Transport {
  writes: string[][] = [];
  private group: string[] | null = null;
  send(d: string | Uint8Array): number {
    const f = typeof d === "string" ? d : new TextDecoder().decode(d);
    if (this.group) this.group.push(f);
    else this.writes.push([f]);
    return 1;
  }
  cork(writes: () => void): boolean {
    this.group = [];
    writes();
    this.writes.push(this.group);
    this.group = null;
    return true;
  }
  getBufferedAmount = () => 0;
  close(): void {}
  pause(): void {}
  resume(): void {}
}

const conn = (t: Transport) => ({ t, flags: 0, out: null as (string | Uint8Array)[] | null, outBytes: 0 });
const turnEnd = () => new Promise((r) => setImmediate(r));

describe("outbox hold", () => {
  test("frames wait for the turn's end while the hold lasts", async () => {
    const t = new Recorder();
    const box = new Outbox<ReturnType<typeof conn>>(() => {}, 1 << 20, 0.5);
    const s = conn(t);
    box.tick(100);
    box.push(s, "a");
    box.tick(100.3);
    box.push(s, "b");
    expect(t.writes).toEqual([]);
    await turnEnd();
    expect(t.writes).toEqual([["a", "b"]]);
  });

  test("past the hold, the next read writes what waited first, in order, and later frames wait again", async () => {
    const t = new Recorder();
    const u = new Recorder();
    const box = new Outbox<ReturnType<typeof conn>>(() => {}, 1 << 20, 0.5);
    const s = conn(t);
    const r = conn(u);
    box.tick(10);
    box.push(s, "a1");
    box.push(r, "b1");
    box.tick(10.4);
    box.push(s, "a2");
    expect(t.writes).toEqual([]);
    box.tick(10.6); // a1 waited 0.6 ms: everything queued goes now
    expect(t.writes).toEqual([["a1", "a2"]]);
    expect(u.writes).toEqual([["b1"]]);
    box.push(s, "a3");
    box.tick(10.9); // a3 started waiting at 10.6
    expect(t.writes).toEqual([["a1", "a2"]]);
    await turnEnd();
    expect(t.writes).toEqual([["a1", "a2"], ["a3"]]);
    expect(u.writes).toEqual([["b1"]]);
  });

  test("a tick with nothing queued writes nothing", async () => {
    const t = new Recorder();
    const box = new Outbox<ReturnType<typeof conn>>(() => {}, 1 << 20, 0.5);
    box.tick(0);
    box.tick(50);
    await turnEnd();
    expect(t.writes).toEqual([]);
  });
});

describe("hot-path encoders", () => {
  const enc = new TextEncoder();
  test("one DELIVER is the frame the Writer-based encoder builds, ASCII or not", () => {
    for (
      const d of [
        { seq: 7, ts: 2 ** 41 + 3, from: "alice", id: "m-1", body: new Uint8Array([1, 2, 3]) },
        { seq: 2 ** 40, ts: 5, from: "ália", id: "id-😀", body: new Uint8Array(300).fill(9) },
        { seq: 1, ts: 0, from: "b", id: "", body: new Uint8Array(0) },
      ]
    ) {
      const want = encodeV1Deliver(d.seq, d.ts, enc.encode(d.from), enc.encode(d.id), d.body);
      expect(encodeDeliver(d)).toEqual(want);
      expect(encodeDeliveries([d], 0, 1)).toEqual(want);
    }
  });

  test("SENT is 0x43 | str8 id | u8 status", () => {
    expect(encodeSent("ab", SENT_STATUS_BYTE.delivered)).toEqual(new Uint8Array([0x43, 2, 97, 98, 1]));
    const id = "é😀";
    const bytes = enc.encode(id);
    expect(encodeSent(id, SENT_STATUS_BYTE.duplicate)).toEqual(new Uint8Array([0x43, bytes.length, ...bytes, 3]));
  });

  test("str8 reads ASCII (fast path) and UTF-8 alike, at and past the fast path's length", () => {
    for (const s of ["", "u1", "x".repeat(64), "y".repeat(65), "ália", "a".repeat(63) + "é", "😀"]) {
      const b = enc.encode(s);
      const frame = new Uint8Array([9, b.length, ...b, 7]);
      const r = new Reader(frame, 1);
      expect(r.str8("s")).toBe(s);
      expect(r.u8("tail")).toBe(7);
    }
  });
});
