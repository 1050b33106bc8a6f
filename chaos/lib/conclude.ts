// The common end of a scenario: stop the faults, stop sending, let every send be acked and every
// offline inbox be read, then measure. Scenarios add their own fields and conditions to the result.

import type { Fault } from "../faults/fault.ts";
import type { Counters } from "./chaos-api.ts";
import { type Ctx, serverProblems, serverRestarts } from "./scenario.ts";
import type { ChaosServer } from "./server.ts";
import type { Traffic } from "./traffic.ts";
import { mergeVerdicts, type Outcome } from "./verdict.ts";

export interface ConcludeOptions {
  traffic: Traffic[];
  faults: Fault[];
  settleMs: number;
  /** Thread restarts of server incarnations that were killed (see ServerCrasher). */
  restartsBefore?: number;
}

/** One line of progress for the log. */
export function progress(ctx: Ctx, traffic: Traffic[]): string {
  const v = mergeVerdicts(traffic.map((t) => t.verdict()));
  return `sent=${v.sent} acked=${v.acked} unacked=${v.unackedAtEnd} reconnects=${v.reconnects} rss_mb=${
    Math.round((ctx.rss?.lastBytes ?? 0) / 1048576)
  }`;
}

export async function conclude(
  ctx: Ctx,
  server: ChaosServer,
  o: ConcludeOptions,
): Promise<{ outcome: Outcome; counters: Counters | null }> {
  for (const f of o.faults) await f.stop();
  for (const t of o.traffic) t.stop();
  ctx.log(`chaos over; settling (${progress(ctx, o.traffic)})`);
  ctx.rss?.phase("settle");
  const t0 = performance.now();
  await Promise.all(o.traffic.map((t) => t.settle(o.settleMs)));
  const settleS = (performance.now() - t0) / 1000;
  for (const t of o.traffic) for (const line of t.unansweredReport()) ctx.log(`unanswered ${line}`);
  for (const t of o.traffic) for (const line of t.lostReport()) ctx.log(`lost ${line}`);
  for (const t of o.traffic) for (const line of t.order.examples) ctx.log(`reordered ${line}`);
  const verdict = mergeVerdicts(o.traffic.map((t) => t.verdict()));
  const counters = await server.api.counters();
  const extra: Record<string, number | string> = { settle_s: Math.round(settleS * 10) / 10 };
  for (const f of o.faults) Object.assign(extra, f.report());
  const outcome: Outcome = {
    verdict,
    maxRssMb: ctx.maxRssMb,
    serverRestarts: await serverRestarts(server, o.restartsBefore ?? 0),
    extra,
    problems: await serverProblems(server),
  };
  return { outcome, counters };
}
