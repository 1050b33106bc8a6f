// Runs one scenario to its verdict: a watchdog bounds the whole run by the scenario's budget,
// cleanup always happens (pass, fail, throw, timeout, Ctrl-C), and the verdict is one line.

import type { RunOptions } from "./options.ts";
import { Ctx, type Scenario } from "./scenario.ts";
import { emptyVerdict, type Outcome, verdictLine } from "./verdict.ts";

export interface RunResult {
  pass: boolean;
  line: string;
}

function failedOutcome(ctx: Ctx, why: string): Outcome {
  return {
    verdict: emptyVerdict(),
    maxRssMb: ctx.maxRssMb,
    serverRestarts: 0,
    extra: {},
    problems: [why],
  };
}

export async function runScenario(s: Scenario, opts: RunOptions): Promise<RunResult> {
  const ctx = new Ctx(opts, s.name);
  const budgetMs = s.budgetSeconds(opts) * 1000;
  let abort: (why: string) => void = () => {};
  const aborted = new Promise<Outcome>((resolve) => {
    abort = (why) => resolve(failedOutcome(ctx, why));
  });
  const watchdog = setTimeout(() => abort(`watchdog: run exceeded its ${budgetMs / 1000} s budget`), budgetMs);
  const onSignal = (sig: string) => abort(`interrupted by ${sig}`);
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  ctx.log(`start (${opts.short ? "short" : "full"}; budget ${budgetMs / 1000} s; binary ${opts.binary})`);
  let outcome: Outcome;
  try {
    outcome = await Promise.race([
      s.run(ctx).catch((e: unknown) => failedOutcome(ctx, `scenario threw: ${(e as Error)?.stack ?? e}`)),
      aborted,
    ]);
  } finally {
    clearTimeout(watchdog);
    ctx.rss?.sample(); // one last reading before the server goes away
  }
  // The verdict (pass or not) is known before cleanup: cleanup steps then save the stores they
  // remove into a failed run's evidence (evidence.ts).
  ctx.evidence.decide(verdictLine(s.name, outcome).pass, ctx.keepAsked);
  try {
    // Cleanup itself is bounded too: a hung step must not keep the run alive.
    await Promise.race([ctx.cleanup(), Bun.sleep(30_000)]);
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
  outcome.maxRssMb = Math.max(outcome.maxRssMb, ctx.maxRssMb);
  const result = verdictLine(s.name, outcome);
  if (!result.pass) {
    // What the server said about it, for the report (stderr: stdout is the verdict alone).
    for (const srv of ctx.servers) {
      if (srv.unexpectedExits.length) ctx.log(`server exits: ${srv.unexpectedExits.join(", ")}`);
      const errs = srv.errors.slice(-20);
      if (errs.length) ctx.log(`last server warnings and errors:\n${errs.join("\n")}`);
    }
  }
  ctx.evidence.append("verdict.txt", result.line);
  const kept = ctx.evidence.finish();
  if (kept === null) return result;
  ctx.log(`evidence (client files, server logs and stores, run.log) kept in ${kept}`);
  return { ...result, line: result.pass ? result.line : `${result.line} evidence=${kept}` };
}
