import { describe, expect, test } from "bun:test";
import { ProbeSeries } from "../../src/observe/stage-probe.ts";

describe("ProbeSeries (the paced-p99 diagnostic's per-second buckets)", () => {
  test("quantiles are bucket upper bounds, capped by the largest value seen", () => {
    const s = new ProbeSeries();
    for (let i = 0; i < 98; i++) s.record(0.04); // bucket <= 0.05
    s.record(12); // bucket <= 15
    s.record(40); // bucket <= 50, and the max
    const r = s.summary();
    expect(r.n).toBe(100);
    expect(r.p50).toBe(0.05);
    expect(r.p90).toBe(0.05);
    expect(r.p99).toBe(15);
    expect(r.max).toBe(40);
  });

  test("a summary resets the series", () => {
    const s = new ProbeSeries();
    s.record(3);
    s.summary();
    expect(s.summary()).toEqual({ n: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });

  test("values past the last bound report the max", () => {
    const s = new ProbeSeries();
    s.record(5000);
    expect(s.summary().p99).toBe(5000);
  });
});
