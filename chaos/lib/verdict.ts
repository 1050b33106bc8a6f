// The one verdict line a scenario prints:
//   PASS|FAIL <scenario> sent=… acked=… delivered=… lost=… duplicated=… reordered=… max_rss_mb=… (+ extras)
// PASS needs lost = 0, duplicated = 0, reordered = 0, every send acked and none refused, the server never
// dying on its own, and the scenario's own conditions; each unmet condition is named in `why=` so a FAIL
// explains itself.

import type { Verdict } from "./traffic.ts";

export interface Outcome {
  verdict: Verdict;
  maxRssMb: number;
  /** Whole-process restarts plus shard and storage-writer restarts. */
  serverRestarts: number;
  extra: Record<string, number | string>;
  /** Scenario conditions that were not met (empty when they all hold). */
  problems: string[];
}

/** A verdict of nothing sent (a run that never got to its traffic; the sum's start). */
export function emptyVerdict(): Verdict {
  return {
    sent: 0,
    acked: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    failed: 0,
    reconnects: 0,
    unackedAtEnd: 0,
  };
}

/** Sums the verdicts of several traffic generators in one run. */
export function mergeVerdicts(vs: Verdict[]): Verdict {
  const out = emptyVerdict();
  for (const v of vs) for (const k of Object.keys(out) as (keyof Verdict)[]) out[k] += v[k];
  return out;
}

/** Every condition the run broke: the universal ones, then the scenario's. */
export function problemsOf(o: Outcome): string[] {
  const p: string[] = [];
  const v = o.verdict;
  if (v.lost > 0) p.push(`${v.lost} acked messages never delivered`);
  if (v.duplicated > 0) p.push(`${v.duplicated} messages delivered twice to the application`);
  if (v.reordered > 0) p.push(`${v.reordered} deliveries out of per-sender order`);
  if (v.unackedAtEnd > 0) p.push(`${v.unackedAtEnd} sends never acked`);
  // No scenario sends anything the server may rightly refuse (sizes and rates are within limits).
  if (v.failed > 0) p.push(`${v.failed} sends refused with an error`);
  if (v.sent === 0) p.push("no traffic was sent");
  return [...p, ...o.problems];
}

export function verdictLine(name: string, o: Outcome): { pass: boolean; line: string } {
  const problems = problemsOf(o);
  const pass = problems.length === 0;
  const v = o.verdict;
  const fields: Record<string, number | string> = {
    sent: v.sent,
    acked: v.acked,
    delivered: v.delivered,
    lost: v.lost,
    duplicated: v.duplicated,
    reordered: v.reordered,
    max_rss_mb: o.maxRssMb,
    server_restarts: o.serverRestarts,
    unacked: v.unackedAtEnd,
    failed: v.failed,
    reconnects: v.reconnects,
    ...o.extra,
  };
  if (!pass) fields.why = JSON.stringify(problems.join("; "));
  const body = Object.entries(fields).map(([k, x]) => `${k}=${x}`).join(" ");
  return { pass, line: `${pass ? "PASS" : "FAIL"} ${name} ${body}` };
}
