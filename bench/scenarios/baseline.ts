// `baseline`: the bare Bun relay alone under the throughput workload — what Bun's WebSocket
// server costs with no routing, storage or acks. `throughput` also runs it, for its ratios.

import { latencyBars, rateLines } from "../lib/charts.ts";
import type { Scenario } from "../lib/context.ts";
import { LoadGen } from "../lib/loadgen.ts";
import { startTarget } from "../lib/targets.ts";
import { measureTarget, type PairsParams, pairsParams, type TargetFigures, targetSummary } from "./pairs-load.ts";

export interface BaselineFigures {
  params: PairsParams & { proto: string; workers: number };
  baseline: TargetFigures;
}

export const baseline: Scenario<BaselineFigures> = async (ctx) => {
  const p = pairsParams(ctx);
  const workers = ctx.args.workers ?? 2;
  Object.assign(ctx.params, p, { proto: ctx.args.proto, workers });
  const lg = await LoadGen.spawn(workers);
  let fig: TargetFigures;
  try {
    const b = await startTarget(ctx, "baseline", null);
    try {
      fig = await measureTarget(ctx, lg, b, p, { pacedRates: [], bundles: false });
    } finally {
      await b.stop();
    }
  } finally {
    await lg.close();
  }
  ctx.notes.push(
    "The baseline relay (bench/baseline-relay.ts) is one Bun.serve with native WebSocket handlers and a Map " +
      "user → socket: no storage, no sender acks, no sequencing. All figures are absolute.",
  );
  return {
    figures: { params: { ...p, proto: ctx.args.proto, workers }, baseline: fig },
    charts: [
      {
        name: "latency",
        svg: latencyBars("Baseline relay latency", [
          { name: "saturation", latency: fig.saturation.latency },
          { name: "paced", latency: fig.paced.latency },
        ]),
      },
      {
        name: "throughput",
        svg: rateLines("Baseline relay: delivered messages per second", [
          { name: "saturation", perSecond: fig.saturation.perSecond },
          { name: "paced", perSecond: fig.paced.perSecond },
        ]),
      },
    ],
    summary: targetSummary(fig),
  };
};
