// crash-restart: the whole server is SIGKILLed under load and started again on the same port and
// data dir. Clients keep their state (unacked sends, last sequence) and reconnect on their own.
// Everything the server acked was committed or received, so all of it must arrive exactly once.

import { ServerCrasher } from "../faults/server-crasher.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";

const scenario: Scenario = {
  name: "crash-restart",
  summary: "SIGKILL the whole server under load, restart it on the same data dir and port",
  budgetSeconds: (o) => seconds(o, 60, 8) + 120,
  async run(ctx) {
    const o = ctx.opts;
    const server = await ctx.server({ shards: num(o, "shards", 2, 2) });
    // Some recipients are offline: their messages exist only in the store across the crashes.
    const traffic = await ctx.liveTraffic(server, { prefix: "cr", offlineFraction: 0.25 });
    const crasher = ctx.fault(new ServerCrasher(server, num(o, "every-ms", 5000, 3000), (m) => ctx.log(m)));
    traffic.start();
    crasher.start();
    await ctx.hold(seconds(o, 60, 8), () => `${progress(ctx, [traffic])} kills=${crasher.kills}`);
    const { outcome } = await conclude(ctx, server, {
      traffic: [traffic],
      faults: [crasher],
      settleMs: 60_000,
      restartsBefore: crasher.threadRestartsBefore,
    });
    if (crasher.kills === 0) outcome.problems.push("the server was never killed");
    return outcome;
  },
};

export default scenario;
