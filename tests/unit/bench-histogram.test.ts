// The bench's log-linear histogram: bucket layout, precision, percentiles, merging, JSON.

import { describe, expect, test } from "bun:test";
import { bucketHigh, bucketIndex, bucketLow, BUCKETS, Histogram, MAX_US, mergeAll } from "../../bench/lib/histogram.ts";

describe("bench histogram buckets", () => {
  test("every value lands in a bucket whose bounds contain it", () => {
    for (let v = 0; v <= MAX_US; v = v < 2000 ? v + 1 : Math.ceil(v * 1.003)) {
      const i = bucketIndex(v);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(BUCKETS);
      if (bucketLow(i) > v || bucketHigh(i) <= v) throw new Error(`value ${v} outside bucket ${i}`);
    }
  });

  test("buckets are contiguous and at most 1/128 wide relative to their values", () => {
    for (let i = 1; i < BUCKETS; i++) {
      expect(bucketLow(i)).toBe(bucketHigh(i - 1));
      if (i >= 128) expect((bucketHigh(i) - bucketLow(i)) / bucketLow(i)).toBeLessThanOrEqual(1 / 128);
    }
  });

  test("values past 60 s and below 0 are clamped", () => {
    expect(bucketIndex(1e12)).toBe(bucketIndex(MAX_US));
    expect(bucketIndex(-5)).toBe(0);
  });
});

describe("bench histogram percentiles", () => {
  test("a uniform 1..100000 µs distribution reports percentiles within 1%", () => {
    const h = new Histogram();
    for (let v = 1; v <= 100_000; v++) h.record(v);
    for (const p of [50, 90, 99, 99.9]) {
      const want = p * 1000;
      expect(Math.abs(h.percentile(p) - want) / want).toBeLessThan(0.01);
    }
    expect(h.percentile(100)).toBe(100_000);
    const s = h.summary();
    expect(s.count).toBe(100_000);
    expect(s.minMs).toBe(0.001);
    expect(s.maxMs).toBe(100);
    expect(s.meanMs).toBeCloseTo(50.0005, 3);
  });

  test("percentiles never exceed the max nor fall below the min", () => {
    const h = new Histogram();
    h.record(1234.5);
    expect(h.percentile(0)).toBe(1234.5);
    expect(h.percentile(50)).toBe(1234.5);
    expect(h.percentile(100)).toBe(1234.5);
  });

  test("an empty histogram summarizes to zeros and ignores NaN and negatives", () => {
    const h = new Histogram();
    h.record(NaN);
    h.record(-1);
    expect(h.count).toBe(0);
    expect(h.summary()).toEqual({ count: 0, minMs: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 });
  });

  test("percentiles are ordered", () => {
    const h = new Histogram();
    let x = 7;
    for (let i = 0; i < 10_000; i++) {
      x = (x * 48271) % 2147483647;
      h.record((x % 1_000_000) + 1);
    }
    const s = h.summary();
    expect(s.minMs).toBeLessThanOrEqual(s.p50Ms);
    expect(s.p50Ms).toBeLessThanOrEqual(s.p90Ms);
    expect(s.p90Ms).toBeLessThanOrEqual(s.p99Ms);
    expect(s.p99Ms).toBeLessThanOrEqual(s.p999Ms);
    expect(s.p999Ms).toBeLessThanOrEqual(s.maxMs);
  });
});

describe("bench histogram merging and JSON", () => {
  test("merging equals recording everything in one histogram", () => {
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let v = 1; v < 5000; v += 3) {
      (v % 2 ? a : b).record(v * 7.3);
      all.record(v * 7.3);
    }
    const m = new Histogram().merge(a).merge(b);
    expect(m.summary()).toEqual(all.summary());
    expect(Array.from(m.counts)).toEqual(Array.from(all.counts));
  });

  test("JSON round trip (as workers send it) keeps every figure", () => {
    const h = new Histogram();
    for (let v = 10; v < 90_000; v *= 1.1) h.record(v);
    const j = JSON.parse(JSON.stringify(h.toJSON()));
    expect(Histogram.fromJSON(j).summary()).toEqual(h.summary());
    expect(mergeAll([j, j]).count).toBe(2 * h.count);
    expect(mergeAll([]).summary().count).toBe(0);
  });
});
