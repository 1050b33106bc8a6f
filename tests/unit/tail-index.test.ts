// The dedupe tail's index (store/tail-index.ts): the first position of each hash, through growth,
// slot collisions and clears, against a Map model, over real tail columns.
import { describe, expect, test } from "bun:test";
import { foldHash, KeyColumns } from "../../src/store/key-columns.ts";
import { TailIndex } from "../../src/store/tail-index.ts";

/** A small deterministic PRNG (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Appends a record of hashes (h1, h2) to the columns and indexes it, as the dedupe tail does. */
function push(c: KeyColumns, t: TailIndex, h1: number, h2: number): void {
  c.push(c.n + 1, h1, h2, c.n + 1, 0);
  t.add(c.n - 1);
}

describe("TailIndex", () => {
  test("keeps the first position of a hash; later records of it change nothing", () => {
    const c = new KeyColumns();
    const t = new TailIndex(c);
    push(c, t, 12345, 7);
    push(c, t, 99, 3);
    push(c, t, 12345, 7);
    expect(t.first(foldHash(12345, 7))).toBe(0);
    expect(t.first(foldHash(99, 3))).toBe(1);
    expect(t.first(foldHash(100, 3))).toBe(-1);
    expect(t.size).toBe(2);
  });

  test("hashes sharing slot bits stay apart, through the columns' and the index's growth, against a Map model", () => {
    const next = rng(42);
    const c = new KeyColumns();
    const t = new TailIndex(c);
    const model = new Map<number, number>();
    // Only 16 distinct slot bits for 3,000 keys (h1's low 11 bits all 0, h2 below 16): long probe
    // runs; keys repeated.
    const keys = Array.from(
      { length: 3000 },
      () => [Math.floor(next() * 2 ** 21) * 2 ** 11, Math.floor(next() * 16)] as const,
    );
    for (let pos = 0; pos < 20_000; pos++) {
      const [h1, h2] = keys[Math.floor(next() * keys.length)]!;
      push(c, t, h1, h2);
      const h = foldHash(h1, h2);
      if (!model.has(h)) model.set(h, pos);
    }
    expect(t.size).toBe(model.size);
    for (const [h1, h2] of keys) {
      const h = foldHash(h1, h2);
      expect(t.first(h)).toBe(model.get(h) ?? -1);
    }
    for (let k = 0; k < 1000; k++) {
      const h1 = Math.floor(next() * 2 ** 32), h2 = Math.floor(next() * 16);
      if (!model.has(foldHash(h1, h2))) expect(t.first(foldHash(h1, h2))).toBe(-1);
    }
  });

  test("second hashes given unsigned or signed find the same record", () => {
    const c = new KeyColumns();
    const t = new TailIndex(c);
    for (let i = 0; i < 5000; i++) push(c, t, i * 7919, 0xffffffff - i); // stored as int32 (negative)
    for (let i = 0; i < 5000; i++) {
      const h = foldHash(i * 7919, 0xffffffff - i);
      expect(t.first(h)).toBe(i);
      expect(t.first(foldHash(i * 7919, (0xffffffff - i) | 0))).toBe(i);
    }
  });

  test("records whose second hashes differ only above the 53-bit hash's bits are one hash, first record first", () => {
    const c = new KeyColumns();
    const t = new TailIndex(c);
    // Past 2^20 hashes the index has 2^22 entries: a slot taken from h2 alone would use bits the hash does not have.
    for (let i = 0; i < 2 ** 20 + 10; i++) push(c, t, 5000 + i, i);
    push(c, t, 77, 0x00012345);
    push(c, t, 77, 0x7fe12345); // the same foldHash: h2's bits above the low 21 are not in it
    const h = foldHash(77, 0x00012345);
    expect(foldHash(77, 0x7fe12345)).toBe(h);
    expect(t.first(h)).toBe(2 ** 20 + 10);
    expect(t.first(foldHash(77, 0x7fe12345))).toBe(2 ** 20 + 10);
  });

  test("clear forgets every hash and the index works again after", () => {
    const c = new KeyColumns();
    const t = new TailIndex(c);
    for (let i = 0; i < 4000; i++) push(c, t, 1_000_000 + i, i);
    c.clear();
    t.clear();
    expect(t.size).toBe(0);
    for (let i = 0; i < 4000; i++) expect(t.first(foldHash(1_000_000 + i, i))).toBe(-1);
    push(c, t, 1_000_003, 3);
    expect(t.first(foldHash(1_000_003, 3))).toBe(0);
  });
});
