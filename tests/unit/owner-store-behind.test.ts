// The owner refuses a send it would store while the store is behind its budget (--store-backlog-mb),
// and takes the rest: live deliveries, and v0 sends (whose senders the gateway pauses instead).

import { describe, expect, test } from "bun:test";
import { Owner, type OwnerLimits } from "../../src/router/owner.ts";
import { type PortMsg, refusalsOnly, type RouteMsg, type WriterReq } from "../../src/router/wire.ts";

const limits: OwnerLimits = {
  maxPending: 4,
  pageSize: 3,
  pageBytes: 1 << 20,
  maxFetches: 8,
  pendingSpillMs: 1000,
  seqBlock: 10,
  recentIds: 100,
  holdback: 2,
  slowTimeoutMs: 5000,
  dedupeWindowMs: 60_000,
};

function setup() {
  const toShard: { k: number; m: PortMsg }[] = [];
  const toWriter: WriterReq[] = [];
  const state = { behind: true };
  const o = new Owner({
    self: 0,
    shards: 1,
    toShard: (k, m) => toShard.push({ k, m }),
    toWriter: (m) => toWriter.push(m),
    now: () => 1000,
    underPressure: () => false,
    storeBehind: () => state.behind,
  }, limits);
  const appended = () => toWriter.flatMap((m) => (m.t === "append" ? m.rows.map((r) => r.msgId) : []));
  const refusals = () => toShard.flatMap(({ m }) => (m.t === "sendError" ? [`${m.id}:${m.code}:${m.reason}`] : []));
  return { o, toShard, appended, refusals, state };
}

const route = (to: string, id: string, o = 1): RouteMsg => ({
  t: "route",
  to,
  from: "s",
  id,
  body: new Uint8Array([1]),
  ts: 1000,
  t0: 1000,
  o,
  c: 7,
});

describe("owner: a store behind its budget", () => {
  test("a send to an offline user is refused SERVER_BUSY and not stored; its retry is, once the store caught up", () => {
    const { o, appended, refusals, state } = setup();
    (o as unknown as { box(user: string): void }).box("u"); // as tests/unit/owner.test.ts does
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle(route("u", "m1"));
    expect(appended()).toEqual([]);
    expect(refusals()).toEqual(["m1:SERVER_BUSY:store is behind; retry later"]);
    expect(o.stats.storeBehindRejects).toBe(1);
    // The retry (same id) is a new message, not a duplicate of one never stored.
    state.behind = false;
    o.handle(route("u", "m1"));
    expect(appended()).toEqual(["m1"]);
    expect(refusals()).toHaveLength(1);
  });

  test("a send to a connected, reading user goes out live", () => {
    const { o, toShard, refusals } = setup();
    o.handle({ t: "attach", user: "r", shard: 0, conn: 3, v0: false, resume: 0 });
    o.handle({ t: "loaded", user: "r", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle({ t: "rows", user: "r", gen: 1, rows: [], more: false }); // drain done: live
    o.handle(route("r", "live1"));
    expect(toShard.some((x) => x.m.t === "deliver")).toBe(true);
    expect(refusals()).toEqual([]);
    expect(o.stats.storeBehindRejects).toBe(0);
  });

  test("a v0 send (no id, no ack due) is stored: its sender cannot retry, the gateway pauses it instead", () => {
    const { o, appended, refusals } = setup();
    (o as unknown as { box(user: string): void }).box("u");
    o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 });
    o.handle(route("u", "", refusalsOnly(0)));
    expect(appended()).toEqual([""]);
    expect(refusals()).toEqual([]);
  });
});
