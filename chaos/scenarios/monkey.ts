// monkey: random client connections are cut, 10 per second, under traffic. Each victim reconnects,
// resumes from its last processed sequence and resends its unacked sends with the same ids.

import { Monkey } from "../faults/monkey.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";

const scenario: Scenario = {
  name: "monkey",
  summary: "drop random client connections 10/s under traffic",
  budgetSeconds: (o) => seconds(o, 60, 6) + 90,
  async run(ctx) {
    const o = ctx.opts;
    const server = await ctx.server({ shards: num(o, "shards", 2, 2) });
    const traffic = await ctx.liveTraffic(server, { prefix: "mk" });
    const monkey = ctx.fault(new Monkey(() => traffic.clients, num(o, "drops-per-s", 10, 10)));
    traffic.start();
    monkey.start();
    await ctx.hold(seconds(o, 60, 6), () => `${progress(ctx, [traffic])} drops=${monkey.drops}`);
    const { outcome } = await conclude(ctx, server, { traffic: [traffic], faults: [monkey], settleMs: 30_000 });
    if (monkey.drops === 0) outcome.problems.push("no connection was dropped");
    // Every drop must have been followed by a reconnect (the SDK counts them).
    if (outcome.verdict.reconnects < monkey.drops) {
      outcome.problems.push(`${monkey.drops} drops but only ${outcome.verdict.reconnects} reconnects`);
    }
    return outcome;
  },
};

export default scenario;
