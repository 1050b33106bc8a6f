// god-mode: everything at once. Live traffic, an offline flood and stalled consumers, while
// shards are sniped, connections cut, ports fed garbage, the storage writer killed, oversized
// frames sent, both cores eaten by busy loops, and the whole server SIGKILLed and restarted.

import { CpuHog } from "../faults/cpu-hog.ts";
import { Corruption } from "../faults/corruption.ts";
import { HugeFrames } from "../faults/huge-frames.ts";
import { Monkey } from "../faults/monkey.ts";
import { NonReaders } from "../faults/non-readers.ts";
import { ServerCrasher } from "../faults/server-crasher.ts";
import type { Fault } from "../faults/fault.ts";
import { ShardSniper } from "../faults/sniper.ts";
import { ShardStaller, stallsWanted } from "../faults/stalls.ts";
import { WriterSniper } from "../faults/writer-sniper.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";

const MAX_PAYLOAD = 65536;

const scenario: Scenario = {
  name: "god-mode",
  summary: "every fault at once, with live, offline and stalled-consumer traffic (minutes full, ~11 s short)",
  budgetSeconds: (o) => seconds(o, 180, 11) + 180,
  async run(ctx) {
    const o = ctx.opts;
    const shards = num(o, "shards", 2, 2);
    const secs = seconds(o, 180, 11);
    const server = await ctx.server({
      shards,
      args: ["--slow-consumer-timeout", String(num(o, "slow-timeout-ms", 5000, 3000))],
    });
    const live = await ctx.liveTraffic(server, { prefix: "gml", offlineFraction: 0.2 });
    const flood = await ctx.traffic({
      url: server.url,
      users: num(o, "senders", 50, 20),
      offlineUsers: num(o, "offline", 1000, 200),
      offlineOnly: true,
      intervalMs: 20,
      payloadBytes: 512,
      prefix: "gmf",
    });
    const toStalled = await ctx.traffic({
      url: server.url,
      users: 20,
      offlineUsers: num(o, "stalled", 200, 50),
      offlineOnly: true,
      intervalMs: 50,
      payloadBytes: 2048,
      prefix: "gms",
    });
    const stalled = ctx.fault(new NonReaders(server, toStalled.offlineNames));
    await stalled.open();
    const traffic = [live, flood, toStalled];
    const crasher = ctx.fault(new ServerCrasher(server, num(o, "crash-every-ms", 60_000, 5000), (m) => ctx.log(m)));
    const faults: Fault[] = [
      ctx.fault(new ShardSniper(server, shards, 2000)),
      ctx.fault(new Monkey(() => [...live.clients, ...flood.clients, ...toStalled.clients], 10)),
      ctx.fault(new Corruption(server, { shards, everyMs: 200, shardCount: 500, writerCount: 200 })),
      ctx.fault(new WriterSniper(server, num(o, "writer-every-ms", 10_000, 5000))),
      ctx.fault(new HugeFrames(server, { everyMs: 1000, maxPayload: MAX_PAYLOAD })),
      ctx.fault(new CpuHog(secs + 30, num(o, "hogs", 2, 2))),
      crasher,
      stalled,
    ];
    if (stallsWanted(o.extra)) {
      const every = num(o, "stall-every-ms", 1500, 1500);
      faults.push(
        ctx.fault(new ShardStaller(server, { shards, everyMs: every, maxMs: num(o, "stall-max-ms", 2000, 2000) })),
      );
    }
    for (const t of traffic) t.start();
    for (const f of faults) f.start();
    await ctx.hold(secs, () => `${progress(ctx, traffic)} server_kills=${crasher.kills}`);
    const { outcome, counters } = await conclude(ctx, server, {
      traffic,
      faults,
      settleMs: 120_000,
      restartsBefore: crasher.threadRestartsBefore,
    });
    outcome.extra.garbage_counted = counters?.totals.garbage ?? 0;
    const huge = faults.find((f) => f instanceof HugeFrames) as HugeFrames;
    if (huge.notClosed > 0) outcome.problems.push(`${huge.notClosed} oversized frames were not refused`);
    if (outcome.serverRestarts === 0) outcome.problems.push("nothing was restarted");
    return outcome;
  },
};

export default scenario;
