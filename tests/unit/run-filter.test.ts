// The dedupe runs' Bloom filters (store/run-filter.ts): no false negatives, few false positives;
// a group's filter keyed by the 53-bit hash, and folded in halves at its seal.

import { describe, expect, test } from "bun:test";
import { sentKeyHash } from "../../src/router/sent-filter.ts";
import {
  filterAdd,
  filterHas,
  foldGroupFilter,
  groupFilterAdd,
  groupFilterHas,
  newGroupFilter,
  newRunFilter,
} from "../../src/store/run-filter.ts";
import { keyHashes } from "../../src/store/sent-runs.ts";

const hashOf = (i: number, id = `id-${i}`) => keyHashes(`r${i % 300}`, `s${i % 7}`, id).h;

describe("run filter", () => {
  test("every added key is found; about 1% of other keys are maybes", () => {
    const n = 32_768;
    const bits = newRunFilter(n);
    for (let i = 0; i < n; i++) filterAdd(bits, ...sentKeyHash(`r${i % 300}`, `s${i % 7}`, `id-${i}`));
    for (let i = 0; i < n; i++) {
      expect(filterHas(bits, ...sentKeyHash(`r${i % 300}`, `s${i % 7}`, `id-${i}`))).toBe(true);
    }
    let maybes = 0;
    for (let i = 0; i < 100_000; i++) {
      if (filterHas(bits, ...sentKeyHash(`r${i % 300}`, `s${i % 7}`, `other-${i}`))) maybes++;
    }
    expect(maybes).toBeLessThan(2_000); // 2%: the design is ~1% at 10 bits and 7 hashes
  });

  test("an empty run's filter says no; a filter of no bits always says maybe", () => {
    expect(filterHas(newRunFilter(0), 1, 3)).toBe(false);
    expect(filterHas(new Uint8Array(0), 1, 3)).toBe(true);
  });
});

describe("group filter", () => {
  test("a full group's keys are all found; other keys are maybes about 2-3% of the time (8 bits a key)", () => {
    const n = 64 * 32_768;
    const bits = newGroupFilter();
    expect(bits.length).toBe(2 ** 21);
    for (let i = 0; i < n; i++) groupFilterAdd(bits, hashOf(i));
    for (let i = 0; i < n; i += 17) expect(groupFilterHas(bits, hashOf(i))).toBe(true);
    let maybes = 0;
    for (let i = 0; i < 100_000; i++) if (groupFilterHas(bits, hashOf(i, `other-${i}`))) maybes++;
    expect(maybes).toBeGreaterThan(500); // it is a Bloom filter, not a set: some maybes
    expect(maybes).toBeLessThan(4_000);
    expect(foldGroupFilter(bits, n)).toBe(bits); // full: nothing to fold
  });

  test("folded to its keys, a group's filter still finds every key and stays about as accurate", () => {
    for (const n of [0, 1, 5_000, 100_000]) {
      const bits = newGroupFilter();
      for (let i = 0; i < n; i++) groupFilterAdd(bits, hashOf(i));
      const folded = foldGroupFilter(bits, n);
      // The smallest power of two with 10 bits a key (a 512-bit block at least).
      const want = 2 ** Math.ceil(Math.log2(Math.max(512, n * 10) / 8));
      expect(folded.length).toBe(want);
      for (let i = 0; i < n; i++) {
        if (!groupFilterHas(folded, hashOf(i))) throw new Error(`key ${i} of ${n} lost in the fold`);
      }
      let maybes = 0;
      for (let i = 0; i < 20_000; i++) if (groupFilterHas(folded, hashOf(i, `other-${i}`))) maybes++;
      expect(maybes).toBeLessThan(n === 0 ? 1 : 20_000 * 0.03);
    }
    expect(bitsOf(foldGroupFilter(new Uint8Array(64), 0))).toBe(512);
    expect(groupFilterHas(new Uint8Array(0), 12345)).toBe(true); // let go: always maybe
  });
});

const bitsOf = (f: Uint8Array) => f.length * 8;
