// A dedupe run's keys as slices (store/run-slices.ts): cut in order, every id under a hash found
// ascending, across slice ends, and nothing for a hash the run lacks.

import { describe, expect, test } from "bun:test";
import { idsInSlice, RUN_SLICE_KEYS, slicePairs, sliceRun } from "../../src/store/run-slices.ts";

/** Ids found under `h` across the slices in order, as the store's probe reads them. */
function idsUnder(slices: Float64Array[], h: number): number[] {
  const ids: number[] = [];
  for (const s of slices) {
    const last = s[s.length - 2]!;
    if (last < h) continue; // the probe starts at the first slice whose last hash is >= h
    if (!idsInSlice(s, h, ids)) break;
  }
  return ids;
}

describe("run slices", () => {
  // 1,000 pairs sorted by (h, id): hashes 0, 2, 4, ...; hash 500 held by 300 ids (collisions).
  const pairs: [number, number][] = [];
  for (let i = 0; i < 700; i++) pairs.push([2 * i, 10_000 + i]);
  for (let i = 0; i < 300; i++) pairs.push([501, 20_000 + i]);
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const slices = sliceRun(pairs.length, (i) => pairs[i]![0], (i) => pairs[i]![1]);

  test("cut into slices of RUN_SLICE_KEYS pairs in order, each keyed by its last pair", () => {
    expect(slices.map((s) => s.pairs.length / 2)).toEqual([240, 240, 240, 240, 40]);
    const flat = slices.flatMap((s) => [...s.pairs]);
    expect(flat).toEqual(pairs.flat());
    for (const s of slices) expect([s.lastH, s.lastId]).toEqual([s.pairs.at(-2)!, s.pairs.at(-1)!]);
    expect(RUN_SLICE_KEYS * 16).toBeLessThanOrEqual(4086 - 40); // a row stays within a 16 KiB page's local payload
  });

  test("every id under a hash, ascending, across slice ends; none for an absent hash", () => {
    const all = slices.map((s) => s.pairs);
    expect(idsUnder(all, 501)).toEqual(Array.from({ length: 300 }, (_, i) => 20_000 + i));
    expect(idsUnder(all, 0)).toEqual([10_000]);
    expect(idsUnder(all, 1398)).toEqual([10_699]);
    expect(idsUnder(all, 3)).toEqual([]);
    expect(idsUnder(all, 99_999)).toEqual([]);
  });

  test("a stored blob reads back at any offset; a damaged one is a clear error", () => {
    const bytes = new Uint8Array(slices[0]!.pairs.buffer);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect([...slicePairs(shifted.subarray(3))]).toEqual([...slices[0]!.pairs]);
    expect(() => slicePairs(bytes.subarray(0, 15))).toThrow("a slice of 15 bytes");
  });
});
