// The box's compact memory of recent (sender, id) keys (src/router/recent-ids.ts): exact keys
// despite hash collisions, Map-like insertion-order eviction, removal, growth and compaction,
// checked against a plain Map model.

import { describe, expect, test } from "bun:test";
import { RECENT_EVICT_BATCH, RecentIds } from "../../src/router/recent-ids.ts";

/** A seq per key, read back through find (-1 → undefined). */
function seqOf(r: RecentIds, h: number, from: string, id: string): number | undefined {
  const s = r.find(h, from, id);
  return s < 0 ? undefined : r.seqAt(s);
}

describe("RecentIds", () => {
  test("keys with the same hash stay distinct: a collision never reads as a hit", () => {
    const r = new RecentIds(100);
    r.add(7, "alice", "m1", 1, 1000);
    r.add(7, "alice", "m2", 2, 1000);
    r.add(7, "alic", "em1", 3, 1000); // same characters in a row, split differently
    expect(seqOf(r, 7, "alice", "m1")).toBe(1);
    expect(seqOf(r, 7, "alice", "m2")).toBe(2);
    expect(seqOf(r, 7, "alic", "em1")).toBe(3);
    expect(seqOf(r, 7, "alice", "m3")).toBeUndefined();
    expect(seqOf(r, 8, "alice", "m1")).toBeUndefined(); // another hash is another key
    r.remove(r.find(7, "alice", "m1"));
    expect(seqOf(r, 7, "alice", "m1")).toBeUndefined();
    expect(seqOf(r, 7, "alice", "m2")).toBe(2);
    expect(seqOf(r, 7, "alic", "em1")).toBe(3);
  });

  test("past limit + batch the oldest are forgotten down to the limit, in insertion order", () => {
    const limit = 10;
    const r = new RecentIds(limit);
    for (let i = 1; i <= limit + RECENT_EVICT_BATCH; i++) r.add(i * 31, "s", `m${i}`, i, i);
    expect(r.size).toBe(limit + RECENT_EVICT_BATCH);
    r.add(9999, "s", "next", 1000, 1000);
    expect(r.size).toBe(limit);
    const kept = [];
    for (let i = 1; i <= limit + RECENT_EVICT_BATCH; i++) {
      if (seqOf(r, i * 31, "s", `m${i}`) !== undefined) kept.push(i);
    }
    // The newest limit-1 of the first run and the new key.
    expect(kept).toEqual(Array.from({ length: limit - 1 }, (_, k) => RECENT_EVICT_BATCH + 2 + k));
    expect(seqOf(r, 9999, "s", "next")).toBe(1000);
  });

  test("pinned keys (keepFrom) are never forgotten: the memory grows past its limit, then shrinks back", () => {
    const limit = 10;
    const r = new RecentIds(limit);
    const n = 5 * (limit + RECENT_EVICT_BATCH); // far past every size the limit allows
    for (let i = 1; i <= n; i++) r.add(i, "s", `m${i}`, i, 1000, 3); // seqs from 3 on are pinned
    const pinnedPeak = r.bytes;
    expect(seqOf(r, 1, "s", "m1")).toBeUndefined(); // unpinned: forgotten
    expect(seqOf(r, 2, "s", "m2")).toBeUndefined();
    for (let i = 3; i <= n; i++) expect(seqOf(r, i, "s", `m${i}`)).toBe(i);
    expect(r.size).toBe(n - 2);
    // Unpinned (acked): the next add forgets down to the limit, oldest first.
    r.add(n + 1, "s", `m${n + 1}`, n + 1, 1000);
    expect(r.size).toBe(limit);
    for (let i = n + 1 - limit + 1; i <= n + 1; i++) expect(seqOf(r, i, "s", `m${i}`)).toBe(i);
    expect(seqOf(r, n + 1 - limit, "s", `m${n + 1 - limit}`)).toBeUndefined();
    // And it keeps working at its usual size.
    for (let i = n + 2; i <= n + 3 * (limit + RECENT_EVICT_BATCH); i++) r.add(i, "s", `m${i}`, i, 1000);
    expect(r.size).toBeLessThanOrEqual(limit + RECENT_EVICT_BATCH);
    // Back to the limit's arrays, not the pinned peak's: no larger than a box that never held a pinned key.
    const fresh = new RecentIds(limit);
    for (let i = 1; i <= 4 * (limit + RECENT_EVICT_BATCH); i++) fresh.add(i, "s", `m${n + i}`, i, 1000);
    expect(r.bytes).toBeLessThanOrEqual(fresh.bytes);
    expect(r.bytes).toBeLessThan(pinnedPeak / 4);
  });

  test("adding a key it holds overwrites it in place (its age in the order is kept)", () => {
    const limit = 1;
    const r = new RecentIds(limit);
    r.add(1, "a", "x", 1, 10);
    r.add(2, "a", "y", 2, 10);
    r.add(1, "a", "x", 9, 20); // overwritten: still the oldest
    const s = r.find(1, "a", "x");
    expect([r.size, r.seqAt(s), r.tsAt(s)]).toEqual([2, 9, 20]);
    for (let i = 0; i < RECENT_EVICT_BATCH - 1; i++) r.add(100 + i, "b", `z${i}`, 10 + i, 10);
    expect(r.size).toBe(limit + RECENT_EVICT_BATCH); // not past it yet
    r.add(99, "b", "last", 99, 10); // past: down to the newest one
    expect([r.size, seqOf(r, 1, "a", "x"), seqOf(r, 2, "a", "y"), seqOf(r, 99, "b", "last")]).toEqual([
      1,
      undefined,
      undefined,
      99,
    ]);
  });

  test("a ring that wrapped grows its arena for a long key and keeps every key", () => {
    const limit = 8;
    const r = new RecentIds(limit);
    let seq = 0;
    for (let i = 0; i < 3 * (limit + RECENT_EVICT_BATCH); i++) r.add(i, "s", `m${i}`, ++seq, 0); // wraps, evicts
    const kept = [];
    for (let i = 0; i < 3 * (limit + RECENT_EVICT_BATCH); i++) if (r.find(i, "s", `m${i}`) >= 0) kept.push(i);
    const long = "L".repeat(5000); // more than the arena holds: rebuilt around the wrapped keys
    r.add(-1, "s", long, ++seq, 0);
    for (const i of kept) expect(seqOf(r, i, "s", `m${i}`)).toBe(i + 1);
    expect(seqOf(r, -1, "s", long)).toBe(seq);
    expect(r.size).toBe(kept.length + 1);
  });

  test("removeSeqs forgets exactly the keys with those seqs", () => {
    const r = new RecentIds(100);
    for (let i = 1; i <= 20; i++) r.add(i, "s", `m${i}`, i, 0);
    r.removeSeqs(new Set([3, 4, 17, 99]));
    expect(r.size).toBe(17);
    for (let i = 1; i <= 20; i++) expect(seqOf(r, i, "s", `m${i}`)).toBe([3, 4, 17].includes(i) ? undefined : i);
  });

  test("non-Latin-1 characters switch the arena to two bytes a character and keep earlier keys", () => {
    const r = new RecentIds(100);
    r.add(1, "bob", "m1", 1, 0);
    r.add(2, "b\u00f6b", "m2", 2, 0); // one byte still
    r.add(3, "\u{1f600}", "\u4e2d", 3, 0);
    expect(seqOf(r, 1, "bob", "m1")).toBe(1);
    expect(seqOf(r, 2, "b\u00f6b", "m2")).toBe(2);
    expect(seqOf(r, 3, "\u{1f600}", "\u4e2d")).toBe(3);
    expect(seqOf(r, 3, "\u{1f601}", "\u4e2d")).toBeUndefined();
  });

  // 40: every grow copies its rings element by element; 400: a grown box's rings (up to ~1,000
  // numbers) are copied as subarray views, so both ways of copyRun keep every key in order.
  test.each([40, 400])(
    "random adds, removes and evictions agree with a Map model (few hashes: many collisions; limit %d)",
    (limit) => {
      let seed = 12345;
      const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
      const r = new RecentIds(limit);
      const model = new Map<string, number>(); // "from\0id" → seq, insertion ordered
      const hashOf = (k: string) => k.length % 5; // 5 hashes for everything
      let seq = 0;
      for (let step = 0; step < 20_000; step++) {
        const from = rnd(500) === 0 ? `\u4e2d${rnd(3)}` : `u${rnd(6)}`; // rarely one the one-byte arena cannot hold
        const id = rnd(50) === 0 ? "x".repeat(200 + rnd(60)) + rnd(9) : `m${rnd(10 * limit)}`; // some long ids
        const k = `${from}\0${id}`;
        const op = rnd(10);
        if (op < 6) {
          r.add(hashOf(k), from, id, ++seq, step);
          if (model.has(k)) model.set(k, seq);
          else {
            model.set(k, seq);
            if (model.size > limit + RECENT_EVICT_BATCH) {
              for (const old of model.keys()) {
                if (model.size === limit) break;
                model.delete(old);
              }
            }
          }
        } else if (op < 8) {
          const s = r.find(hashOf(k), from, id);
          expect(s >= 0).toBe(model.has(k));
          if (s >= 0) (r.remove(s), model.delete(k));
        } else expect(seqOf(r, hashOf(k), from, id)).toBe(model.get(k));
        expect(r.size).toBe(model.size);
      }
      for (const [k, v] of model) {
        const [from, id] = k.split("\0") as [string, string];
        expect(seqOf(r, hashOf(k), from, id)).toBe(v);
      }
    },
  );
});
