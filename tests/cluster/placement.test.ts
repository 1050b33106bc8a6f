// Owner placement over live nodes (pure): deterministic, weighted by shards, minimal movement.

import { describe, expect, test } from "bun:test";
import { type Member, Placement } from "../../src/cluster/placement.ts";
import { ownerOf } from "../../src/router/hash.ts";
import { deriveView, ownerCandidates, parseNodeRecord } from "../../src/cluster/membership.ts";

const users = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
const nodes = (n: number, shards = 2): Member[] => Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, shards }));

function owners(p: Placement): string[] {
  return users.map((u) => p.ownerOf(u)!.node);
}

describe("placement", () => {
  test("same answer on every node whatever the order of the member list", () => {
    const a = new Placement(nodes(5));
    const b = new Placement(nodes(5).reverse());
    expect(owners(a)).toEqual(owners(b));
  });

  test("no live node: no owner", () => {
    expect(new Placement([]).ownerOf("u")).toBeNull();
  });

  test("spreads users evenly, and in proportion to shard count", () => {
    const count = (p: Placement) => {
      const c = new Map<string, number>();
      for (const o of owners(p)) c.set(o, (c.get(o) ?? 0) + 1);
      return c;
    };
    const even = count(new Placement(nodes(4)));
    for (const v of even.values()) expect(Math.abs(v - 5000)).toBeLessThan(400);
    const weighted = count(new Placement([{ id: "big", shards: 3 }, { id: "small", shards: 1 }]));
    expect(Math.abs(weighted.get("big")! / users.length - 0.75)).toBeLessThan(0.02);
  });

  test("a joining node takes about 1/N of the users, all from others to itself", () => {
    const before = owners(new Placement(nodes(3)));
    const after = owners(new Placement(nodes(4)));
    let moved = 0;
    for (let i = 0; i < users.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        expect(after[i]).toBe("n4");
      }
    }
    expect(Math.abs(moved / users.length - 0.25)).toBeLessThan(0.02);
  });

  test("a leaving node's users move; nobody else's does", () => {
    const before = owners(new Placement(nodes(4)));
    const after = owners(new Placement(nodes(4).filter((n) => n.id !== "n2")));
    for (let i = 0; i < users.length; i++) {
      if (before[i] !== "n2") expect(after[i]).toBe(before[i]!);
      else expect(after[i]).not.toBe("n2");
    }
  });

  test("inside the node the single-node shard rule applies", () => {
    const p = new Placement([{ id: "a", shards: 4 }]);
    for (const u of users.slice(0, 100)) expect(p.ownerOf(u)!.shard).toBe(ownerOf(u, 4));
  });
});

describe("member records and states", () => {
  const rec = { id: "n1", state: "up", shards: 2, conns: 0, startedAt: 1, http: "http://127.0.0.1:1" };
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

  test("garbage and mismatched keys are rejected", () => {
    expect(parseNodeRecord("n1", enc(rec))).toEqual(rec as never);
    expect(parseNodeRecord("n2", enc(rec))).toBeNull();
    expect(parseNodeRecord("n1", new Uint8Array([0xff, 0x00]))).toBeNull();
    expect(parseNodeRecord("n1", enc({ ...rec, shards: 0 }))).toBeNull();
    expect(parseNodeRecord("n1", enc({ ...rec, state: "down" }))).toBeNull();
    expect(parseNodeRecord("n1", enc({ ...rec, extra: 1 }))).toBeNull();
  });

  test("silence beyond down-after is down; draining and down nodes own nobody", () => {
    const view = deriveView(
      [
        { record: { ...rec, id: "a" } as never, seenAt: 1000 },
        { record: { ...rec, id: "b", state: "draining" } as never, seenAt: 1000 },
        { record: { ...rec, id: "c" } as never, seenAt: 0 },
      ],
      1500,
      900,
    );
    expect(view.map((v) => v.observed)).toEqual(["up", "draining", "down"]);
    expect(ownerCandidates(view)).toEqual([{ id: "a", shards: 2 }]);
  });
});
