// sniper: a router shard is killed every 2 s (alternating between the two shards) under traffic.
// Clients on the dead shard reconnect and resume; owners rebuild from the store; senders resend.

import { ShardSniper } from "../faults/sniper.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";

const scenario: Scenario = {
  name: "sniper",
  summary: "kill a router shard every 2 s (alternating, --shards 2) under traffic",
  budgetSeconds: (o) => seconds(o, 60, 6) + 90,
  async run(ctx) {
    const o = ctx.opts;
    const shards = num(o, "shards", 2, 2);
    const server = await ctx.server({ shards });
    const traffic = await ctx.liveTraffic(server, { prefix: "sn" });
    const sniper = ctx.fault(new ShardSniper(server, shards, num(o, "every-ms", 2000, 2000)));
    traffic.start();
    sniper.start();
    await ctx.hold(seconds(o, 60, 6), () => `${progress(ctx, [traffic])} kills=${sniper.kills}`);
    const { outcome, counters } = await conclude(ctx, server, {
      traffic: [traffic],
      faults: [sniper],
      settleMs: 30_000,
    });
    const restarted = counters?.totals.shardRestarts ?? 0;
    // Every kill must have been followed by a restart, or a shard stayed dead.
    if (restarted < sniper.kills) outcome.problems.push(`${sniper.kills} shard kills but ${restarted} restarts`);
    if (sniper.kills === 0) outcome.problems.push("no shard was killed");
    outcome.extra.max_restart_ms = Math.round(counters?.totals.maxRestartMs ?? 0);
    return outcome;
  },
};

export default scenario;
