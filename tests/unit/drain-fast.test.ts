// Issue 14's drain speed-ups, each against its guarantee: growing backlog pages keep order and the
// first page small; a corked TCP write is byte-exact (the seed's stream of raw bodies) and reports
// a dead socket.

import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { defaultOwnerLimits, type OwnerLimits } from "../../src/limits.ts";
import { pageBudget, TIGHT_PAGE_DIVISOR } from "../../src/router/drain-page.ts";
import { recordingOwner } from "../helpers/owner-harness.ts";
import type { StoredRow, WriterReq } from "../../src/router/wire.ts";
import { TcpTransport } from "../../src/gateway/transports.ts";
import { isPackedPage, packRows, pageDeliveries, unpackRows } from "../../src/router/packed-page.ts";
import { isPortMsg } from "../../src/router/wire.ts";

describe("backlog page budget", () => {
  const base: OwnerLimits = {
    ...defaultOwnerLimits,
    pageSize: 500,
    pageBytes: 1000,
    pageMaxRows: 4000,
    pageMaxBytes: 3000,
  };

  test("starts at the base page, doubles per page, stops at the caps", () => {
    expect(pageBudget(base, 0, false)).toEqual({ limit: 500, maxBytes: 1000 });
    expect(pageBudget(base, 1, false)).toEqual({ limit: 1000, maxBytes: 2000 });
    expect(pageBudget(base, 2, false)).toEqual({ limit: 2000, maxBytes: 3000 });
    expect(pageBudget(base, 3, false)).toEqual({ limit: 4000, maxBytes: 3000 });
    expect(pageBudget(base, 1e9, false)).toEqual({ limit: 4000, maxBytes: 3000 });
  });

  test("under memory pressure pages stay small; without caps they never grow", () => {
    expect(pageBudget(base, 5, true)).toEqual({ limit: 500, maxBytes: 1000 / TIGHT_PAGE_DIVISOR });
    const noCaps = { ...base, pageMaxRows: undefined, pageMaxBytes: undefined };
    expect(pageBudget(noCaps, 7, false)).toEqual({ limit: 500, maxBytes: 1000 });
  });

  test("the default caps stay within what the writer accepts for one fetch", () => {
    expect(pageBudget(defaultOwnerLimits, 100, false).limit).toBeLessThanOrEqual(10_000);
  });

  test("the owner asks for growing pages and delivers every row once, in order", () => {
    const { o, toShard, toWriter } = recordingOwner({ ...base, maxPending: 4, seqBlock: 100, holdback: 2 });
    o.handle({ t: "attach", user: "u", shard: 0, conn: 1, v0: true, resume: 0 });
    o.handle({ t: "loaded", user: "u", seqBase: 1000, seqLimit: 1100, lastSeen: 0 });
    const row = (seq: number): StoredRow => ({
      recipient: "u",
      seq,
      sender: "s",
      msgId: `m${seq}`,
      ts: 1,
      body: new Uint8Array(),
    });
    const limits: number[] = [];
    let next = 1;
    for (let page = 0; page < 4; page++) {
      const f = toWriter.filter((m) => m.t === "fetch").at(-1) as Extract<WriterReq, { t: "fetch" }>;
      expect(f.after).toBe(next - 1);
      limits.push(f.limit);
      const rows = Array.from({ length: f.limit }, (_, i) => row(next + i));
      next += f.limit;
      o.handle({ t: "rows", user: "u", gen: f.gen, rows, more: page < 3 });
      o.handle({ t: "flow", user: "u", shard: 0, conn: 1, ready: true });
    }
    expect(limits).toEqual([500, 1000, 2000, 4000]);
    const seqs = toShard.flatMap((m) => (m.t === "deliver" ? m.items.map((d) => d.seq) : []));
    expect(seqs).toEqual(Array.from({ length: next - 1 }, (_, i) => i + 1));
  });
});

/** A fake Bun socket: records writes, takes at most `room` bytes per write, or fails. */
function fakeSocket(room = Infinity) {
  const writes: Uint8Array[] = [];
  const sock = {
    dead: false,
    write(b: Uint8Array) {
      if (sock.dead) return -1;
      const n = Math.min(room, b.byteLength);
      writes.push(b.slice(0, n));
      return n;
    },
    end() {},
    pause() {},
    resume() {},
  };
  return { sock, writes, t: new TcpTransport(sock as unknown as Socket<unknown>) };
}

describe("corked TCP writes", () => {
  const bytes = (...xs: number[]) => new Uint8Array(xs);

  test("many sends become one write of the same bytes", () => {
    const { writes, t } = fakeSocket();
    expect(t.cork(() => {
      t.send(bytes(1, 2));
      t.send(bytes(3));
      t.send(bytes(4, 5, 6));
    })).toBe(true);
    expect(writes).toEqual([bytes(1, 2, 3, 4, 5, 6)]);
  });

  test("what the kernel does not take is queued and written on drain, in order", () => {
    const { writes, t } = fakeSocket(4);
    t.cork(() => {
      t.send(bytes(1, 2, 3));
      t.send(bytes(4, 5, 6));
    });
    expect(t.getBufferedAmount()).toBe(2);
    t.send(bytes(7)); // queued behind the rest, never ahead of it
    t.flush();
    t.flush();
    expect(Buffer.concat(writes)).toEqual(Buffer.from(bytes(1, 2, 3, 4, 5, 6, 7)));
  });

  test("what is queued is a copy: the sender may fill its buffer again once send returns", () => {
    const { writes, t } = fakeSocket(2);
    const buf = bytes(1, 2, 3, 4);
    expect(t.send(buf)).toBe(-1); // 2 bytes taken, 2 queued
    const next = bytes(5, 6);
    expect(t.send(next)).toBe(-1); // queued whole behind them
    buf.fill(9); // the owner builds its next page in the same buffer (router/hot-backlog.ts)
    next.fill(9);
    for (let i = 0; i < 3; i++) t.flush();
    expect(Buffer.concat(writes)).toEqual(Buffer.from(bytes(1, 2, 3, 4, 5, 6)));
  });

  test("a dead socket is reported, and a closed transport refuses to cork", () => {
    const { sock, t } = fakeSocket();
    sock.dead = true;
    expect(t.cork(() => t.send(bytes(1)))).toBe(false);
    t.close(1000, "bye");
    expect(t.cork(() => {})).toBe(false);
  });
});

describe("packed backlog pages", () => {
  const enc = new TextEncoder();
  const rows: StoredRow[] = [1, 2, 5].map((seq) => ({
    recipient: "u",
    seq,
    sender: `s${seq}`,
    msgId: seq === 2 ? "" : `m${seq}`,
    ts: 1000 + seq,
    body: enc.encode("x".repeat(seq)),
  }));

  test("round-trips every field and survives a port's structured clone", () => {
    const p = structuredClone(packRows(rows));
    expect(isPackedPage(p)).toBe(true);
    expect(unpackRows(p, "u")).toEqual(rows);
  });

  test("deliveries start above the cursor, bodies are the right bytes", () => {
    const d = pageDeliveries(packRows(rows), 1);
    expect(d.map((x) => [x.seq, x.from, x.id, x.ts, new TextDecoder().decode(x.body), x.t0])).toEqual([
      [2, "s2", "", 1002, "xx", 0],
      [5, "s5", "m5", 1005, "xxxxx", 0],
    ]);
    expect(pageDeliveries(packRows([]), 0)).toEqual([]);
  });

  test("malformed pages are refused by the port guard", () => {
    const good = () => packRows(rows);
    const bad: unknown[] = [
      null,
      { ...good(), seqs: [1, 2, 5] },
      { ...good(), seqs: new Float64Array([1, 5, 2]) },
      { ...good(), seqs: new Float64Array([0.5, 2, 5]) },
      { ...good(), ids: ["a", "b"] },
      { ...good(), senders: ["a", 1, "c"] },
      { ...good(), ends: new Uint32Array([1, 3, 99]) },
      { ...good(), ends: new Uint32Array([3, 1, 8]) },
      { ...good(), tss: new Float64Array([1, 2]) },
    ];
    for (const b of bad) expect(isPackedPage(b)).toBe(false);
    expect(isPortMsg({ t: "rows", user: "u", gen: 1, rows: [], packed: bad[2], more: false })).toBe(false);
    expect(isPortMsg({ t: "rows", user: "u", gen: 1, rows: [], packed: good(), more: false })).toBe(true);
  });
});
