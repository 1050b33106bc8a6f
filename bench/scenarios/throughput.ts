// `throughput`: pairs of users messaging through Iris (once per --shards value), then the same
// load through the bare baseline relay in the same run; Iris is reported as a ratio of it.

import { latencyBars, rateLines } from "../lib/charts.ts";
import type { Ctx, Scenario } from "../lib/context.ts";
import { num, ratio } from "../lib/format.ts";
import { LoadGen } from "../lib/loadgen.ts";
import { externalTarget, isExternal, startTarget } from "../lib/targets.ts";
import { measureTarget, type PairsParams, pairsParams, type TargetFigures, targetSummary } from "./pairs-load.ts";

export interface Ratios {
  label: string;
  /** The Iris side logged in with bundles (the SDK's default v1 login). */
  bundles: boolean;
  /** Iris msgs/s at saturation ÷ baseline msgs/s at saturation. */
  saturationThroughput: number | null;
  /** Server CPU per message, Iris ÷ baseline (at saturation). */
  cpuPerMessage: number | null;
  /** Latency at the same paced rate, Iris ÷ baseline. */
  pacedP50: number | null;
  pacedP99: number | null;
  saturationP99: number | null;
}

export interface ThroughputFigures {
  params: PairsParams & { proto: string; workers: number; bundles?: boolean; logins?: Login[] };
  targets: TargetFigures[];
  baseline: TargetFigures | null;
  ratios: Ratios[];
}

/** How Iris's v1 load connections log in: plain, or with the bundle flag as the SDK does. */
export type Login = "plain" | "bundled";

/** The logins to measure Iris with: both under --both-logins (v1, Iris started here), else the one asked. */
export function loginsOf(a: { proto: string; bundles: boolean; bothLogins: boolean }, external: boolean): Login[] {
  if (a.bothLogins && a.proto === "v1" && !external) return ["plain", "bundled"];
  return [a.bundles ? "bundled" : "plain"];
}

/** The baseline's paced phase at `t`'s paced rate (the relay is paced once per distinct Iris rate). */
function pacedAtSameRate(t: TargetFigures, b: TargetFigures) {
  return [b.paced, ...b.pacedMore].find((r) => r.targetRate === t.paced.targetRate) ?? b.paced;
}

export function ratiosOf(t: TargetFigures, b: TargetFigures): Ratios {
  const bp = pacedAtSameRate(t, b);
  return {
    label: `${t.label} / baseline`,
    bundles: t.bundles,
    saturationThroughput: ratio(t.saturation.msgsPerSec, b.saturation.msgsPerSec),
    cpuPerMessage: ratio(t.saturation.cpu.serverUsPerMsg ?? NaN, b.saturation.cpu.serverUsPerMsg ?? 0),
    pacedP50: ratio(t.paced.latency.p50Ms, bp.latency.p50Ms),
    pacedP99: ratio(t.paced.latency.p99Ms, bp.latency.p99Ms),
    saturationP99: ratio(t.saturation.latency.p99Ms, b.saturation.latency.p99Ms),
  };
}

export function ratioLines(r: Ratios): string[] {
  const f = (v: number | null) => (v === null ? "n/a" : `${num(v, 2)}x`);
  return [
    `${r.label}: throughput ${f(r.saturationThroughput)}, server CPU/msg ${f(r.cpuPerMessage)}, ` +
    `p99 at saturation ${f(r.saturationP99)}, paced p50 ${f(r.pacedP50)}, paced p99 ${f(r.pacedP99)}`,
  ];
}

/** One Iris server (fresh for each login kind, so neither inherits the other's warm state). */
async function measureIris(
  ctx: Ctx,
  lg: LoadGen,
  p: PairsParams,
  shards: number | null,
  login: Login,
): Promise<TargetFigures> {
  const t = await startTarget(ctx, "iris", shards);
  try {
    const run = { ...t, label: login === "bundled" ? `${t.label} bundled` : t.label };
    return await measureTarget(ctx, lg, run, p, { pacedRates: [], bundles: login === "bundled" });
  } finally {
    await t.stop();
  }
}

export const throughput: Scenario<ThroughputFigures> = async (ctx) => {
  const p = pairsParams(ctx);
  const workers = ctx.args.workers ?? 2;
  const logins = loginsOf(ctx.args, isExternal(ctx));
  Object.assign(ctx.params, p, {
    proto: ctx.args.proto,
    bundles: ctx.args.bundles,
    logins,
    workers,
    shards: ctx.args.shards ?? "default",
  });
  const lg = await LoadGen.spawn(workers);
  const targets: TargetFigures[] = [];
  let baseline: TargetFigures | null = null;
  try {
    if (isExternal(ctx)) {
      targets.push(await measureTarget(ctx, lg, externalTarget(ctx), p, { pacedRates: [], bundles: ctx.args.bundles }));
    } else {
      for (const shards of ctx.args.shards ?? [null]) {
        for (const login of logins) targets.push(await measureIris(ctx, lg, p, shards, login));
      }
    }
    if (ctx.args.baseline) {
      const b = await startTarget(ctx, "baseline", null);
      try {
        // Paced once at each Iris run's paced rate: each latency ratio then compares equal offered load.
        const pacedRates = [...new Set(targets.map((t) => t.paced.targetRate).filter((r) => r !== null))];
        baseline = await measureTarget(ctx, lg, b, p, { pacedRates, bundles: false });
      } finally {
        await b.stop();
      }
    }
  } finally {
    await lg.close();
  }
  const ratios = baseline ? targets.map((t) => ratiosOf(t, baseline!)) : [];
  ctx.notes.push(
    `Saturation = closed loop: every connection keeps at most ${p.window} messages in flight to its partner ` +
      `(a message leaves the window when its partner receives it). Latency at saturation is mostly queueing ` +
      `(Little's law: in-flight ÷ throughput), so compare it only between targets.`,
    "Paced = open loop at a fixed total rate; the baseline is paced once at each Iris run's paced rate (plain and bundled logins) so every latency ratio compares equal load.",
    "Latency = send → delivery, measured in the load-generator process that holds both ends of a pair.",
    "Ratios (Iris ÷ baseline relay) come from the same run on the same machine; msgs/s, µs and ms are absolute.",
  );
  const all = baseline ? [...targets, baseline] : targets;
  return {
    figures: {
      params: { ...p, proto: ctx.args.proto, bundles: ctx.args.bundles, logins, workers },
      targets,
      baseline,
      ratios,
    },
    charts: [
      {
        name: "latency",
        svg: latencyBars(
          `Latency (${ctx.args.proto}, ${p.conns} conns)`,
          all.flatMap((t) => [
            { name: `${t.label} sat`, latency: t.saturation.latency },
            { name: `${t.label} paced`, latency: t.paced.latency },
          ]),
        ),
      },
      {
        name: "throughput",
        svg: rateLines(
          "Delivered messages per second",
          all.flatMap((t) => [
            { name: `${t.label} sat`, perSecond: t.saturation.perSecond },
            { name: `${t.label} paced`, perSecond: t.paced.perSecond },
          ]),
        ),
      },
    ],
    summary: [...all.flatMap(targetSummary), ...ratios.flatMap(ratioLines)],
  };
};
