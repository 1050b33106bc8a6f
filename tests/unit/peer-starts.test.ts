// A node that came back: sends to its shards wait for their start announcement (cluster/peer-starts.ts),
// and what reaches a starting shard before its host exists is kept in order (cluster/early-inbox.ts).

import { describe, expect, test } from "bun:test";
import { PeerStarts, START_WAIT_MS } from "../../src/cluster/peer-starts.ts";
import { EARLY_MAX, EarlyInbox } from "../../src/cluster/early-inbox.ts";
import { globalShard } from "../../src/cluster/address.ts";
import type { PortMsg } from "../../src/router/wire.ts";

const a0 = globalShard(2, 0), a1 = globalShard(2, 1), other = globalShard(3, 0);

describe("PeerStarts", () => {
  test("a node never seen leaving is routable; nothing is tracked", () => {
    const p = new PeerStarts();
    expect(p.routable(a0, 0)).toBe(true);
    expect(p.size).toBe(0);
  });

  test("back in the view: each shard waits for its own announcement", () => {
    const p = new PeerStarts();
    p.left(2);
    expect(p.routable(a0, 10)).toBe(true); // down: nothing routes there anyway
    p.back(2, 100);
    expect(p.routable(a0, 101)).toBe(false);
    expect(p.routable(a1, 101)).toBe(false);
    expect(p.routable(other, 101)).toBe(true);
    p.started(a1);
    expect(p.routable(a1, 102)).toBe(true);
    expect(p.routable(a0, 102)).toBe(false);
  });

  test("an announcement heard before the view has the node back counts; one from before it left does not", () => {
    const p = new PeerStarts();
    p.left(2);
    p.started(a0); // the restarted shard announced; our view still misses its heartbeat
    p.back(2, 100);
    expect(p.routable(a0, 101)).toBe(true);
    p.left(2); // it dies again: that announcement is old now
    p.back(2, 200);
    expect(p.routable(a0, 201)).toBe(false);
  });

  test("an announcement lost: sends go after START_WAIT_MS, and the node is forgotten", () => {
    const p = new PeerStarts();
    p.left(2);
    p.back(2, 100);
    expect(p.routable(a0, 100 + START_WAIT_MS - 1)).toBe(false);
    expect(p.routable(a0, 100 + START_WAIT_MS)).toBe(true);
    expect(p.size).toBe(0);
    p.left(2);
    p.back(2, 1000);
    p.sweep(1000 + START_WAIT_MS - 1);
    expect(p.size).toBe(1);
    p.sweep(1000 + START_WAIT_MS);
    expect(p.size).toBe(0);
  });
});

describe("EarlyInbox", () => {
  test("keeps messages in arrival order until taken; over the cap they are counted as dropped", () => {
    const e = new EarlyInbox();
    const m = (n: number): PortMsg => ({ t: "routesResumed", shard: n });
    e.push([m(1), m(2)]);
    e.push([m(3)]);
    expect(e.take()).toEqual([m(1), m(2), m(3)]);
    expect(e.take()).toEqual([]);
    e.push(Array.from({ length: EARLY_MAX + 2 }, (_, i) => m(i)));
    expect(e.take().length).toBe(EARLY_MAX);
    expect(e.dropped).toBe(2);
  });
});
