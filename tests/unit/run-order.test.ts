// The order a dedupe run is built in (store/key-columns.ts byHashOrder): by (hash, id) exactly as a
// comparator sort gives it, with keys recorded twice, and with 32-bit hashes that collide (the
// native sort orders those only by position; their group is put in order by the full hash).

import { describe, expect, test } from "bun:test";
import { byHashOrder, foldHash, KeyColumns } from "../../src/store/key-columns.ts";
import { sentKeyHash } from "../../src/router/sent-filter.ts";

/** The positions in (h, id) order by a plain comparator sort: what byHashOrder must equal. */
function reference(c: KeyColumns): number[] {
  return Array.from({ length: c.n }, (_, i) => i).sort((a, b) => c.h[a]! - c.h[b]! || c.id[a]! - c.id[b]!);
}

describe("run order", () => {
  test("real keys, some recorded twice, in id order: the same order as the comparator sort", () => {
    const c = new KeyColumns();
    for (let i = 0; i < 5000; i++) {
      c.push(100 + i, ...sentKeyHash(`u${i % 97}`, `s${i % 13}`, `m${i % 4000}`), i + 1, i);
    }
    expect(c.n).toBe(5000); // past the columns' first capacity: they grew
    expect([...byHashOrder(c)]).toEqual(reference(c));
    expect(c.id[0]).toBe(100); // the columns keep their order
    expect(c.seq[4999]).toBe(5000);
  });

  test("equal 32-bit hashes with different full hashes and ids are ordered by (h, id)", () => {
    const c = new KeyColumns();
    // In id order; h1 = 7 for four of them, whose low bits run against their ids; two share h entirely.
    const keys: [number, number, number][] = [[1, 9, 5], [2, 7, 40], [3, 7, 3], [4, 2 ** 32 - 1, 1], [5, 7, 40], [
      6,
      7,
      0,
    ], [
      7,
      0,
      9,
    ]];
    for (const [id, h1, low] of keys) c.push(id, h1, low, id, 0);
    expect(c.h[3]).toBe(foldHash(2 ** 32 - 1, 1));
    const order = [...byHashOrder(c)];
    expect(order.map((i) => c.id[i])).toEqual([7, 6, 3, 2, 5, 1, 4]);
    expect(order).toEqual(reference(c));
  });

  test("empty and single runs; cleared columns start over", () => {
    const c = new KeyColumns();
    expect([...byHashOrder(c)]).toEqual([]);
    c.push(1, 5, 6, 1, 0);
    expect([...byHashOrder(c)]).toEqual([0]);
    c.clear();
    expect(c.n).toBe(0);
    expect([...byHashOrder(c)]).toEqual([]);
  });
});
