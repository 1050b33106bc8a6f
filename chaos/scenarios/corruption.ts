// corruption: garbage values into both shards' ports and into the storage writer's port, ten times
// a second, under traffic. Nothing may restart and no client may be disconnected: invalid port
// messages are counted and dropped.

import { Corruption } from "../faults/corruption.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";

const scenario: Scenario = {
  name: "corruption",
  summary: "garbage into the shards' and the storage writer's ports under traffic; no restarts allowed",
  budgetSeconds: (o) => seconds(o, 60, 6) + 90,
  async run(ctx) {
    const o = ctx.opts;
    const shards = num(o, "shards", 2, 2);
    const server = await ctx.server({ shards });
    // Some recipients are offline so the writer path is busy while it is fed garbage.
    const traffic = await ctx.liveTraffic(server, { prefix: "gc", intervalMs: 50, offlineFraction: 0.2 });
    const corruption = ctx.fault(
      new Corruption(server, {
        shards,
        everyMs: num(o, "every-ms", 100, 100),
        shardCount: num(o, "shard-garbage", 500, 500),
        writerCount: num(o, "writer-garbage", 200, 200),
      }),
    );
    traffic.start();
    corruption.start();
    await ctx.hold(seconds(o, 60, 6), () => `${progress(ctx, [traffic])} garbage=${corruption.injected}`);
    const { outcome, counters } = await conclude(ctx, server, {
      traffic: [traffic],
      faults: [corruption],
      settleMs: 30_000,
    });
    const counted = counters?.totals.garbage ?? 0;
    outcome.extra.garbage_counted = counted;
    if (outcome.serverRestarts !== 0) outcome.problems.push(`${outcome.serverRestarts} thread restarts (expected 0)`);
    if (outcome.verdict.reconnects !== 0) {
      outcome.problems.push(`${outcome.verdict.reconnects} client reconnects (expected 0)`);
    }
    if (corruption.injected === 0) outcome.problems.push("no garbage was injected");
    // Every value must be seen and dropped (a value that is silently taken as valid would not be).
    if (counted < corruption.injected) {
      outcome.problems.push(`${corruption.injected} garbage values injected but only ${counted} counted`);
    }
    return outcome;
  },
};

export default scenario;
