// Every chaos scenario in its short mode (≤ ~15 s of chaos each) against the built binary, one
// after another: each must print a PASS verdict. Each runs in its own process (`bun chaos/run.ts
// <scenario> --short`) so scenarios share nothing: not sockets, timers, memory, or a server.

import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseOptions } from "../../chaos/lib/options.ts";
import { DEFAULT_BINARY } from "../../chaos/lib/server.ts";
import { scenarios } from "../../chaos/scenarios/index.ts";

const RUN = resolve(import.meta.dir, "../../chaos/run.ts");

/**
 * Scenarios that do not pass yet, left out of the smoke run and named here so that nobody counts
 * them as passing. Their figures are in docs/CLUSTER.md ("Cluster chaos").
 */
const NOT_PASSING_YET = new Map([
  ["node-sniper", "a few acked messages reach their connected recipient only at its next login (1 of 5 short runs)"],
  ["split-brain", "acked messages lost across repeated cut/heal cycles (owner hand-over)"],
  ["cluster-god-mode", "includes split-brain"],
]);

async function runShort(name: string, budgetMs: number): Promise<{ code: number; line: string; log: string }> {
  const proc = Bun.spawn([process.execPath, RUN, name, "--short"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    // Backstop only: the runner's own watchdog ends the run first and cleans up; SIGTERM lets it.
    timeout: budgetMs + 20_000,
    killSignal: "SIGTERM",
  });
  const [out, log, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, line: out.trim().split("\n").pop() ?? "", log };
}

describe("chaos smoke (short scenarios)", () => {
  test("the binary is built", () => {
    expect(existsSync(DEFAULT_BINARY)).toBe(true);
  });

  test("the scenarios left out exist", () => {
    for (const name of NOT_PASSING_YET.keys()) expect(scenarios.some((s) => s.name === name)).toBe(true);
  });

  for (const s of scenarios.filter((x) => !NOT_PASSING_YET.has(x.name))) {
    const budgetMs = s.budgetSeconds(parseOptions([s.name, "--short"]).opts) * 1000;
    test(s.name, async () => {
      const r = await runShort(s.name, budgetMs);
      console.log(r.line);
      if (!r.line.startsWith("PASS")) console.error(r.log.slice(-4000));
      expect(r.line).toStartWith(`PASS ${s.name} `);
      expect(r.line).toContain(" lost=0 ");
      expect(r.line).toContain(" duplicated=0 ");
      expect(r.code).toBe(0);
    }, budgetMs + 30_000);
  }
});
