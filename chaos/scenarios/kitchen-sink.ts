// kitchen-sink: several faults at once. Shards are sniped every 2 s, client connections are cut
// 10/s, garbage goes into every port, and an offline flood keeps the storage writer busy, all
// under mixed live traffic.

import { Corruption } from "../faults/corruption.ts";
import { Monkey } from "../faults/monkey.ts";
import { ShardSniper } from "../faults/sniper.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";

const scenario: Scenario = {
  name: "kitchen-sink",
  summary: "sniper + monkey + corruption + disk-crusher flood at once",
  budgetSeconds: (o) => seconds(o, 60, 8) + 150,
  async run(ctx) {
    const o = ctx.opts;
    const shards = num(o, "shards", 2, 2);
    const server = await ctx.server({ shards });
    const live = await ctx.liveTraffic(server, { prefix: "ksl", offlineFraction: 0.2 });
    const flood = await ctx.traffic({
      url: server.url,
      users: num(o, "senders", 50, 25),
      offlineUsers: num(o, "offline", 1000, 250),
      offlineOnly: true,
      intervalMs: num(o, "flood-interval-ms", 20, 20),
      payloadBytes: 256,
      prefix: "ksf",
    });
    const traffic = [live, flood];
    const faults = [
      ctx.fault(new ShardSniper(server, shards, 2000)),
      ctx.fault(new Monkey(() => [...live.clients, ...flood.clients], 10)),
      ctx.fault(new Corruption(server, { shards, everyMs: 200, shardCount: 500, writerCount: 200 })),
    ];
    for (const t of traffic) t.start();
    for (const f of faults) f.start();
    await ctx.hold(seconds(o, 60, 8), () => progress(ctx, traffic));
    const { outcome, counters } = await conclude(ctx, server, { traffic, faults, settleMs: 90_000 });
    outcome.extra.garbage_counted = counters?.totals.garbage ?? 0;
    if (outcome.serverRestarts === 0) outcome.problems.push("no shard was restarted");
    return outcome;
  },
};

export default scenario;
