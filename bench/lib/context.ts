// What every scenario gets (arguments, where to note problems) and returns (figures, charts,
// summary lines). run.ts turns a scenario's output into a results file.

import type { BenchArgs } from "./args.ts";
import type { LoadGen } from "./loadgen.ts";
import type { Chart } from "./results.ts";
import type { ServerProc } from "./server.ts";

export interface Ctx {
  args: BenchArgs;
  binary: string | undefined;
  params: Record<string, unknown>;
  notes: string[];
  problems: string[];
  serverOutput: string[];
  /** Progress on stderr (stdout carries the summary). */
  log(msg: string): void;
}

export interface ScenarioOutput<F> {
  figures: F;
  charts: Chart[];
  summary: string[];
}

export type Scenario<F = unknown> = (ctx: Ctx) => Promise<ScenarioOutput<F>>;

/** Records how Iris was started (flags, minus per-run port, data dir and shards) in params and notes. */
export function noteIris(ctx: Ctx, s: ServerProc): void {
  const flags: string[] = [];
  for (let i = 1; i < s.args.length; i++) {
    const f = s.args[i]!;
    if (f === "--port" || f === "--data-dir" || f === "--shards") i++; // per run; shards are in the labels
    else flags.push(f);
  }
  const line = flags.join(" ");
  if (ctx.params.irisFlags === undefined) ctx.params.irisFlags = line;
  if (flags.includes("--auto-tune") && !ctx.notes.some((n) => n.startsWith("Iris ran with --auto-tune"))) {
    ctx.notes.push(
      "Iris ran with --auto-tune, as an operator starts it: its plan (heap hint, allocator setting, limits) applied.",
    );
  }
  if (line.includes("--rate-msgs 0") && !ctx.notes.some((n) => n.startsWith("Iris ran with --rate-msgs 0"))) {
    ctx.notes.push(
      "Iris ran with --rate-msgs 0 --rate-frames 0: its per-user message and per-connection frame rate limits " +
        "(defaults 10000 msgs/s per user, 20000 frames/s per connection) are off, so the bench measures capacity, " +
        "not the limiter.",
    );
  }
}

/** Stops a server and keeps whatever it printed at warn level or above for the results. */
export async function stopServer(ctx: Ctx, s: ServerProc, label: string): Promise<{ code: number | null; ms: number }> {
  const r = await s.stop();
  for (const line of s.notable()) if (ctx.serverOutput.length < 50) ctx.serverOutput.push(`[${label}] ${line}`);
  if (s.kind === "iris" && r.code !== 0) ctx.problems.push(`${label}: exited with code ${r.code} on SIGTERM`);
  if (r.killed) ctx.problems.push(`${label}: did not stop within 10 s of SIGTERM and was killed`);
  return r;
}

/** Reports what the load generator saw go wrong: unexpected closes, ERROR frames. */
export async function collectClientProblems(ctx: Ctx, lg: LoadGen, label: string): Promise<void> {
  for (let w = 0; w < lg.size; w++) {
    const s = await lg.stats(w);
    for (const [k, n] of Object.entries(s.unexpectedCloses)) {
      ctx.problems.push(`${label}: ${n} connection(s) closed by the server unexpectedly: ${k}`);
    }
    for (const [k, n] of Object.entries(s.serverErrors)) ctx.problems.push(`${label}: ${n} ERROR frame(s): ${k}`);
    if (s.outOfOrder > 0) ctx.problems.push(`${label}: ${s.outOfOrder} deliveries arrived with a non-increasing seq`);
  }
}

/** Runs `f` with a deadline so a hung server cannot hang the bench. */
export async function bounded<T>(what: string, ms: number, f: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      f(),
      new Promise<never>((
        _,
        rej,
      ) => (timer = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
