// The load generator's lean codec must produce and read exactly what the real codecs do.

import { describe, expect, test } from "bun:test";
import { decodeV0Frame } from "../../src/protocol/v0.ts";
import { decodeV1Client, encodeV1Server } from "../../src/protocol/v1.ts";
import { isLoopbackHost, parseArgs } from "../../bench/lib/args.ts";
import { othersDeltaMicros, parseStat, parseStatus } from "../../bench/lib/procstat.ts";
import { parseProm } from "../../bench/lib/prom.ts";
import {
  AckFrame,
  parseDeliver,
  parseDeliverAt,
  parseSent,
  readId,
  readIdAt,
  readStamp,
  sendTemplate,
  stamp,
  writeId,
} from "../../bench/lib/wire.ts";

describe("bench wire", () => {
  test("a patched v1 SEND template decodes with the server's decoder", () => {
    const t = sendTemplate("v1", "bob", 32);
    const f = stamp(t, 123456, 42.5, 7, 99);
    const d = decodeV1Client(f, 1 << 20);
    if (d.op !== "send") throw new Error("not a send");
    expect(d.to).toBe("bob");
    expect(readId(new TextEncoder().encode(d.id), 0, d.id.length)).toBe(123456);
    expect(d.body.byteLength).toBe(32);
    const st = { sentAt: 0, sender: 0, tag: 0 };
    expect(readStamp(new DataView(d.body.buffer, d.body.byteOffset), 0, 32, st)).toBe(true);
    expect(st).toEqual({ sentAt: 42.5, sender: 7, tag: 99 });
  });

  test("a patched v0 send decodes with the server's v0 decoder", () => {
    const f = stamp(sendTemplate("v0", "carol", 16), 1, 3.25, 2, 5);
    const [d] = decodeV0Frame(f, 1 << 16);
    expect(d?.op).toBe("send");
    if (d?.op === "send") expect(d.body.byteLength).toBe(16);
  });

  test("DELIVER and SENT frames from the server's encoder parse in place", () => {
    const body = new Uint8Array(20).fill(1);
    const f = encodeV1Server({ op: "deliver", seq: 2 ** 40 + 5, ts: 1, from: "alice", id: "x1", body });
    const out = { seq: 0, idOff: 0, idLen: 0, bodyOff: 0, bodyLen: 0 };
    expect(parseDeliver(new DataView(f.buffer), out)).toBe(true);
    expect(out.seq).toBe(2 ** 40 + 5);
    expect(new TextDecoder().decode(f.subarray(out.idOff, out.idOff + out.idLen))).toBe("x1");
    expect(out.bodyLen).toBe(20);
    expect(f.byteLength - out.bodyOff).toBe(20);
    const s = encodeV1Server({ op: "sent", id: "abc", status: "stored" });
    expect(parseSent(s)).toEqual({ status: 2, idOff: 2, idLen: 3 });
  });

  test("DELIVER frames inside a bundle parse in place, offsets in the bundle's view", () => {
    const frames = [3, 4].map((seq) => {
      const id = new Uint8Array(8);
      writeId(id, 0, seq * 1000);
      const body = new Uint8Array(16 + seq).fill(seq);
      return encodeV1Server({ op: "deliver", seq, ts: 1, from: "s" + seq, id: new TextDecoder().decode(id), body });
    });
    const bundle = new Uint8Array(1 + frames[0]!.byteLength + frames[1]!.byteLength);
    bundle.set(frames[0]!, 1);
    bundle.set(frames[1]!, 1 + frames[0]!.byteLength);
    const v = new DataView(bundle.buffer);
    const out = { seq: 0, idOff: 0, idLen: 0, bodyOff: 0, bodyLen: 0 };
    let at = 1;
    for (const [i, f] of frames.entries()) {
      expect(parseDeliverAt(v, at, f.byteLength, out)).toBe(true);
      expect(out.seq).toBe(i + 3);
      expect(readIdAt(v, out.idOff, out.idLen)).toBe((i + 3) * 1000);
      expect([...bundle.subarray(out.bodyOff, out.bodyOff + out.bodyLen)]).toEqual(Array(19 + i).fill(i + 3));
      expect(out.bodyOff + out.bodyLen).toBe(at + f.byteLength);
      at += f.byteLength;
    }
    expect(parseDeliverAt(v, 1, frames[0]!.byteLength - 1, out)).toBe(false); // cut short
    expect(parseDeliverAt(v, at - 10, frames[1]!.byteLength, out)).toBe(false); // past the view
  });

  test("ids round-trip and ACK frames carry the seq", () => {
    const b = new Uint8Array(8);
    for (const n of [0, 35, 36, 1e9, 36 ** 8 - 1]) {
      writeId(b, 0, n);
      expect(readId(b, 0, 8)).toBe(n);
    }
    expect(readId(new TextEncoder().encode("ABCDEFGH"), 0, 8)).toBeNaN();
    const d = decodeV1Client(new AckFrame().set(2 ** 35 + 1), 1);
    expect(d).toEqual({ op: "ack", seq: 2 ** 35 + 1 });
  });
});

describe("bench args and /proc parsing", () => {
  test("only loopback targets are accepted", () => {
    expect(isLoopbackHost("127.0.0.1")).toBe(true);
    expect(isLoopbackHost("127.3.2.1")).toBe(true);
    expect(isLoopbackHost("localhost")).toBe(true);
    expect(isLoopbackHost("[::1]")).toBe(true);
    expect(isLoopbackHost("10.0.0.1")).toBe(false);
    expect(isLoopbackHost("example.com")).toBe(false);
    expect(() => parseArgs(["throughput", "--url", "ws://192.168.1.2:80/ws"])).toThrow(/loopback/);
    expect(() => parseArgs(["throughput", "--tcp", "8.8.8.8:1"])).toThrow(/loopback/);
    // A scenario that starts its own server refuses a running one instead of leaving it idle.
    expect(() => parseArgs(["offline-flood", "--url", "ws://127.0.0.1:9000/ws"])).toThrow(/starts its own server/);
    expect(() => parseArgs(["drain", "--tcp", "127.0.0.1:9000"])).toThrow(/starts its own server/);
    expect(parseArgs(["connections", "--url", "ws://127.0.0.1:9000/ws"]).url).toBe("ws://127.0.0.1:9000/ws");
    expect(parseArgs(["offline-flood", "--flood-rate", "150000"]).floodRate).toBe(150_000);
    expect(parseArgs(["offline-flood"]).floodRate).toBeNull();
    expect(() => parseArgs(["offline-flood", "--flood-rate", "0"])).toThrow(/flood-rate/);
    const a = parseArgs(["throughput", "--shards", "1,2", "--tcp", "127.0.0.1:9000", "--smoke"]);
    expect(a.shards).toEqual([1, 2]);
    expect(a.proto).toBe("v0");
    expect(a.smoke).toBe(true);
    expect(() => parseArgs(["nope"])).toThrow(/unknown scenario/);
  });

  test("/proc/<pid>/stat with spaces and parens in the name", () => {
    const line = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 9 0 100 0 0";
    expect(parseStat(line)).toEqual({ ppid: 1, utimeTicks: 150, stimeTicks: 25, threads: 9 });
    expect(parseStatus("Name:\tiris\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t10\n")).toEqual({
      vmRssKb: 1024,
      vmHwmKb: 2048,
      threads: 10,
    });
  });

  test("other processes' CPU counts new processes from zero and ignores exited ones", () => {
    const before = new Map([[10, 100], [11, 50]]);
    const after = new Map([[10, 130], [12, 20]]);
    expect(othersDeltaMicros(before, after, 100)).toBe(500_000);
  });

  test("Prometheus text parses with and without labels", () => {
    const m = parseProm('# HELP x\niris_connections 12\niris_lat_bucket{le="0.1"} 3\nbad line\n');
    expect(m.get("iris_connections")).toBe(12);
    expect(m.get('iris_lat_bucket{le="0.1"}')).toBe(3);
  });
});
