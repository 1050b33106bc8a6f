// The pairs workload shared by `throughput` and `baseline`: open N connections as pairs, saturate
// (every sender keeps W messages in flight to its partner), then pace at a fixed rate (default
// 50% of the measured saturation) to see latency below saturation.

import type { Ctx } from "../lib/context.ts";
import { collectClientProblems } from "../lib/context.ts";
import { int, latencyLine, num } from "../lib/format.ts";
import type { LoadGen } from "../lib/loadgen.ts";
import { openPairs, phaseProblems, type PhaseResult, runPairsPhase } from "../lib/phases.ts";
import type { TargetRun } from "../lib/targets.ts";

export interface PairsParams {
  conns: number;
  window: number;
  payload: number;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
}

export function pairsParams(ctx: Ctx): PairsParams {
  const a = ctx.args;
  return {
    conns: a.conns ?? (a.smoke ? 20 : 1000),
    window: a.window ?? 8,
    payload: a.payload,
    warmupMs: a.smoke ? 300 : 1000,
    measureMs: (a.duration ?? (a.smoke ? 1 : 8)) * 1000,
    drainMs: a.smoke ? 3000 : 10_000,
  };
}

export interface TargetFigures {
  label: string;
  kind: "iris" | "baseline" | "external";
  shards: number | null;
  /** v1 logins asked for bundles (the SDK's default login). */
  bundles: boolean;
  connections: number;
  connectMs: number;
  saturation: PhaseResult;
  paced: PhaseResult;
  /** Further paced phases, one per extra rate asked for (the relay, paced at each Iris login's rate). */
  pacedMore: PhaseResult[];
}

export interface MeasureOpts {
  /** Paced rates in order; empty = one paced phase at 50% of this target's saturation. */
  pacedRates: number[];
  /** v1 logins ask for bundles (never for the relay, which knows no login flags). */
  bundles: boolean;
}

/** Saturation then paced (once per rate) on one target. */
export async function measureTarget(
  ctx: Ctx,
  lg: LoadGen,
  t: TargetRun,
  p: PairsParams,
  opts: MeasureOpts,
): Promise<TargetFigures> {
  const bundles = opts.bundles && t.kind !== "baseline";
  const pairs = await openPairs(lg, t.target, ctx.args.proto, p.conns, `${t.kind}-u`, p.payload, bundles);
  const opened = pairs.users.reduce((n, u) => n + u.length, 0) - pairs.failed;
  if (pairs.failed > 0) {
    throw new Error(`${t.label}: ${pairs.failed} of ${p.conns} connections failed: ${pairs.errors.join("; ")}`);
  }
  ctx.log(
    `${t.label}: ${opened} connections logged in in ${Math.round(pairs.openMs)} ms; saturating (window ${p.window})`,
  );
  const timing = { warmupMs: p.warmupMs, measureMs: p.measureMs, drainMs: p.drainMs, payload: p.payload };
  const saturation = await runPairsPhase(
    lg,
    pairs,
    { name: "saturation", mode: "saturate", window: p.window, rate: 0, ...timing },
    t.pid,
  );
  const rates = ctx.args.rate !== null
    ? [ctx.args.rate]
    : opts.pacedRates.length
    ? opts.pacedRates
    : [Math.max(1, Math.round(saturation.msgsPerSec / 2))];
  ctx.log(
    `${t.label}: ${int(saturation.msgsPerSec)} msgs/s at saturation; pacing at ${rates.map(int).join(", ")} msgs/s`,
  );
  const pacedAll: PhaseResult[] = [];
  for (const rate of rates) {
    pacedAll.push(await runPairsPhase(lg, pairs, { name: "paced", mode: "paced", window: 0, rate, ...timing }, t.pid));
  }
  const [paced, ...pacedMore] = pacedAll as [PhaseResult, ...PhaseResult[]];
  await collectClientProblems(ctx, lg, t.label);
  for (const r of [saturation, ...pacedAll]) ctx.problems.push(...phaseProblems(t.label, r));
  for (let w = 0; w < lg.size; w++) await lg.closeConns(w);
  return {
    label: t.label,
    kind: t.kind,
    shards: t.shards,
    bundles,
    connections: opened,
    connectMs: pairs.openMs,
    saturation,
    paced,
    pacedMore,
  };
}

export function targetSummary(f: TargetFigures): string[] {
  const line = (r: PhaseResult) => {
    const cpu = r.cpu.serverUsPerMsg !== null
      ? `  server CPU ${num(r.cpu.serverUsPerMsg, 1)} µs/msg (${num(r.cpu.serverPct ?? 0, 0)}% of a core)`
      : "";
    return [
      `  ${r.name.padEnd(10)} ${int(r.msgsPerSec)} msgs/s${r.targetRate ? ` (target ${int(r.targetRate)})` : ""}, ` +
      `sent ${int(r.sent)}, delivered ${int(r.delivered)}${cpu}, load generator ${num(r.cpu.loadgenPct, 0)}%, ` +
      `other processes ${num(r.cpu.otherPct, 0)}%`,
      `  ${"".padEnd(10)} ${latencyLine(r.latency)}`,
    ];
  };
  return [
    `${f.label}${f.bundles ? " (bundled v1 logins)" : ""}: ${int(f.connections)} connections (${
      int(f.connections / 2)
    } pairs) in ${int(f.connectMs)} ms`,
    ...line(f.saturation),
    ...line(f.paced),
    ...f.pacedMore.flatMap(line),
  ];
}
