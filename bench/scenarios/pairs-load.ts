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
  connections: number;
  connectMs: number;
  saturation: PhaseResult;
  paced: PhaseResult;
}

/** Saturation then paced on one target; `pacedRate` null = 50% of this target's saturation. */
export async function measureTarget(
  ctx: Ctx,
  lg: LoadGen,
  t: TargetRun,
  p: PairsParams,
  pacedRate: number | null,
): Promise<TargetFigures> {
  const bundles = ctx.args.bundles && t.kind !== "baseline"; // the relay knows no login flags
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
  const rate = ctx.args.rate ?? pacedRate ?? Math.max(1, Math.round(saturation.msgsPerSec / 2));
  ctx.log(`${t.label}: ${int(saturation.msgsPerSec)} msgs/s at saturation; pacing at ${int(rate)} msgs/s`);
  const paced = await runPairsPhase(lg, pairs, { name: "paced", mode: "paced", window: 0, rate, ...timing }, t.pid);
  await collectClientProblems(ctx, lg, t.label);
  for (const r of [saturation, paced]) ctx.problems.push(...phaseProblems(t.label, r));
  for (let w = 0; w < lg.size; w++) await lg.closeConns(w);
  return {
    label: t.label,
    kind: t.kind,
    shards: t.shards,
    connections: opened,
    connectMs: pairs.openMs,
    saturation,
    paced,
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
    `${f.label}: ${int(f.connections)} connections (${int(f.connections / 2)} pairs) in ${int(f.connectMs)} ms`,
    ...line(f.saturation),
    ...line(f.paced),
  ];
}
