// The issue-14 target table printed by `npm run bench -- all`: each row judged against its target,
// and rows without a figure say why instead of showing a number.

import { expect, test } from "bun:test";
import { issueTargetLines, type RunFigures } from "../../bench/lib/issue-targets.ts";

const drainCase = (proto: "v0" | "v1", messages: number, lastMs: number) => ({
  proto,
  messages,
  fillMs: 1,
  stored: messages,
  loginMs: 1,
  firstMs: 2,
  lastMs,
  delivered: messages,
  complete: true,
  outOfOrder: 0,
  msgsPerSec: 1,
  serverUsPerMsg: 3,
  serverPct: 50,
  targetMs: null,
});

test("rows are judged against their targets; missing figures are never invented", () => {
  const f = {
    drain: { params: {}, cases: [drainCase("v0", 50_000, 59), drainCase("v1", 200_000, 300)] },
  } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const row = (start: string) => lines.find((l) => l.startsWith(start))!;
  expect(row("50k stored")).toContain("59.0 ms");
  expect(row("50k stored")).toMatch(/met$/);
  expect(row("50k stored")).not.toContain("NOT met");
  expect(row("200k stored")).toContain("NOT met");
  for (const r of ["v1 saturation", "v1 server CPU", "v1 p99", "offline flood", "idle logged-in"]) {
    expect(row(r)).toContain("not measured");
  }
  expect(lines.slice(3)).toHaveLength(7); // title, header, rule, then one line per row
});
