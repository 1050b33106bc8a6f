// The dedupe runs' Bloom filter (store/run-filter.ts): no false negatives, few false positives.

import { describe, expect, test } from "bun:test";
import { sentKeyHash } from "../../src/router/sent-filter.ts";
import { filterAdd, filterHas, newRunFilter } from "../../src/store/run-filter.ts";

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
