// Every chaos scenario in its short mode (6–11 s of chaos each; the cluster ones 8) against the built binary, one
// after another: each must print a PASS verdict. Each runs in its own process (`bun chaos/run.ts
// <scenario> --short`) so scenarios share nothing: not sockets, timers, memory, or a server.

import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { runDirPrefix } from "../../chaos/lib/evidence.ts";
import { parseOptions } from "../../chaos/lib/options.ts";
import { DEFAULT_BINARY } from "../../chaos/lib/server.ts";
import { scenarios } from "../../chaos/scenarios/index.ts";

const RUN = resolve(import.meta.dir, "../../chaos/run.ts");

/**
 * Scenarios left out of the smoke run, named here with the reason (figures in docs/CLUSTER.md,
 * "Cluster chaos"). None now: cluster-god-mode (node kills, NATS restarts and splits drawn from a
 * random seed, ~17-20 s) joined after branch cl-godloss2, whose final code passed every short run
 * (docs/CLUSTER.md has the counts; the one unexplained failure before, 1 in 52, is the seed 84184
 * shape, fixed by a candidate that is not confirmed). A failure here names its seed: replay it
 * with `--seed N --keep 1`.
 */
const LEFT_OUT = new Map<string, string>();

/**
 * Cluster scenarios whose short runs must keep per-sender order (reordered=0). Since session 14 a
 * send is numbered only after its connection's previous unanswered send to the same recipient
 * (gateway/send-chain.ts, Owner.prevTaken), so NATS restarts no longer invert either: 11 of 11
 * short runs each of nats-restart and cluster-god-mode under the order trace, and 5 of 5 full-size
 * nats-restart runs, kept order (docs/CLUSTER.md, "Per-sender order as a checked link").
 */
const ORDERED = new Set(["node-sniper", "split-brain", "nats-restart", "cluster-god-mode"]);
/**
 * Scenarios run under the order trace: the ordered ones, and god-mode, whose rare loss in CI (5 of
 * 22,469 acked, session 46's submission) left no trace to read; traced, a run takes ~25 s, not ~14.
 */
const TRACED = new Set([...ORDERED, "god-mode"]);

/**
 * Extra flags per scenario. exactly-once also runs its stall faults (shards starved at random, and
 * logins read late: issue 10's single-node losses under load, docs/ARCHITECTURE.md), with 7 s of
 * chaos instead of 12 so that the whole CI run stays within its ten minutes.
 */
const EXTRA = new Map<string, string[]>([
  ["exactly-once", ["--stalls", "1", "--seconds", "7"]],
  // An inversion fails these runs in the runner itself, so that a failing run keeps its evidence.
  ...[...ORDERED].map((name): [string, string[]] => [name, ["--require-order", "1"]]),
]);

async function runShort(
  name: string,
  budgetMs: number,
): Promise<{ code: number; line: string; log: string; pid: number }> {
  const proc = Bun.spawn([process.execPath, RUN, name, "--short", ...(EXTRA.get(name) ?? [])], {
    // Traced scenarios' servers log every order decision (src/observe/order-trace.ts): a failing
    // run's kept evidence then says why a recipient saw a sender's sends out of order, or lost one.
    env: TRACED.has(name) ? { ...process.env, IRIS_ORDER_TRACE: "1" } : process.env,
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
  return { code, line: out.trim().split("\n").pop() ?? "", log, pid: proc.pid };
}

describe("chaos smoke (short scenarios)", () => {
  test("the binary is built", () => {
    expect(existsSync(DEFAULT_BINARY)).toBe(true);
  });

  test("the scenarios left out exist", () => {
    for (const name of LEFT_OUT.keys()) expect(scenarios.some((s) => s.name === name)).toBe(true);
  });

  for (const s of scenarios.filter((x) => !LEFT_OUT.has(x.name))) {
    const budgetMs = s.budgetSeconds(parseOptions([s.name, "--short", ...(EXTRA.get(s.name) ?? [])]).opts) * 1000;
    test(s.name, async () => {
      const r = await runShort(s.name, budgetMs);
      console.log(r.line);
      if (!r.line.startsWith("PASS")) {
        console.error(r.log.slice(-4000));
        // chaos/lib/evidence.ts: a failed run keeps its client files, server logs and stores.
        console.error(`evidence kept in ${r.line.match(/ evidence=(\S+)$/)?.[1] ?? "(none named)"}`);
      } else {
        // A passing run removes its evidence directory.
        const prefix = runDirPrefix(s.name, r.pid);
        expect(readdirSync(tmpdir()).filter((f) => f.startsWith(prefix))).toEqual([]);
      }
      expect(r.line).toStartWith(`PASS ${s.name} `);
      expect(r.line).toContain(" lost=0 ");
      expect(r.line).toContain(" duplicated=0 ");
      if (ORDERED.has(s.name)) expect(r.line).toContain(" reordered=0 ");
      expect(r.code).toBe(0);
    }, budgetMs + 30_000);
  }
});
