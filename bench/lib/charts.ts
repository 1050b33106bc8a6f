// The chart shapes the scenarios share, built on svg.ts.

import type { LatencySummary } from "./histogram.ts";
import { barChart, lineChart } from "./svg.ts";

/** p50 … max per phase, log scale (a p99.9 of 100 ms next to a p50 of 1 ms must stay readable). */
export function latencyBars(title: string, phases: { name: string; latency: LatencySummary }[]): string {
  return barChart({
    title,
    categories: ["p50", "p90", "p99", "p99.9", "max"],
    series: phases.map((p) => ({
      name: p.name,
      values: [p.latency.p50Ms, p.latency.p90Ms, p.latency.p99Ms, p.latency.p999Ms, p.latency.maxMs],
    })),
    yLabel: "latency (ms, log scale)",
    log: true,
  });
}

/** Messages per second over time, one line per phase. */
export function rateLines(
  title: string,
  phases: { name: string; perSecond: number[] }[],
  yLabel = "messages / s",
): string {
  return lineChart({
    title,
    xLabel: "seconds since the phase started",
    yLabel,
    series: phases.map((p) => ({ name: p.name, points: p.perSecond.map((v, i) => [i + 1, v] as [number, number]) })),
  });
}
