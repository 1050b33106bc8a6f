// bench/lib/results.ts: replacing one scenario's latest copy leaves other scenarios' files alone,
// even when one scenario's name is a prefix of another's ("cluster" and "cluster-scale").

import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchResult, writeResults } from "../../bench/lib/results.ts";

function result(scenario: string, startedAt: string): BenchResult<unknown> {
  return {
    scenario,
    smoke: false,
    startedAt,
    durationS: 1,
    command: `npm run bench -- ${scenario}`,
    machine: {} as BenchResult["machine"],
    params: {},
    otherCpuPct: 0,
    figures: {},
    notes: [],
    problems: [],
    serverOutput: [],
    files: { json: "", txt: "", svgs: [] },
  };
}

test("a run of 'cluster' replaces its own latest charts and keeps 'cluster-scale''s", () => {
  const dir = mkdtempSync(join(tmpdir(), "iris-results-"));
  try {
    const svg = "<svg xmlns='http://www.w3.org/2000/svg'/>";
    writeResults(result("cluster-scale", "2026-01-01T00:00:00.000Z"), "scale", [{ name: "rate", svg }], {
      dir,
      latest: true,
    });
    writeResults(result("cluster", "2026-01-01T00:01:00.000Z"), "one", [{ name: "old", svg }], { dir, latest: true });
    writeResults(result("cluster", "2026-01-01T00:02:00.000Z"), "two", [{ name: "new", svg }], { dir, latest: true });
    const ld = join(dir, "latest");
    expect(existsSync(join(ld, "cluster-scale-rate.svg"))).toBe(true);
    expect(existsSync(join(ld, "cluster-scale.json"))).toBe(true);
    expect(existsSync(join(ld, "cluster-old.svg"))).toBe(false);
    expect(existsSync(join(ld, "cluster-new.svg"))).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
