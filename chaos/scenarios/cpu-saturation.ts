// cpu-saturation: busy-loop processes eat every core while traffic runs. Nothing may be lost; the
// report gives the ack latency (send() to the server's ack, as the SDK sees it) before and during
// the saturation, so the cost of a starved machine is visible.

import { CpuHog } from "../faults/cpu-hog.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";
import { quantile, round1 } from "../lib/stats.ts";

const scenario: Scenario = {
  name: "cpu-saturation",
  summary: "busy-loop child processes eat both cores under traffic; reports ack latency p99",
  budgetSeconds: (o) => seconds(o, 60, 6) + num(o, "baseline-s", 10, 3) + 90,
  async run(ctx) {
    const o = ctx.opts;
    const server = await ctx.server({ shards: num(o, "shards", 2, 2) });
    const traffic = await ctx.liveTraffic(server, { prefix: "cpu", offlineFraction: 0.1 });
    const secs = seconds(o, 60, 6);
    // Hogs end themselves a little after the run would, even if this process is killed.
    const hog = ctx.fault(new CpuHog(secs + 30, num(o, "hogs", 2, 2)));
    traffic.start();
    await ctx.hold(num(o, "baseline-s", 10, 3), () => progress(ctx, [traffic]));
    const baseline = [...traffic.ackLatencies];
    const mark = traffic.ackLatencies.length;
    hog.start();
    ctx.log(`cpu hogs running: pids ${hog.pids.join(", ")}`);
    await ctx.hold(secs, () => progress(ctx, [traffic]));
    await hog.stop(); // latencies measured only while the hogs ran
    const loaded = traffic.ackLatencies.slice(mark);
    const { outcome } = await conclude(ctx, server, { traffic: [traffic], faults: [hog], settleMs: 60_000 });
    Object.assign(outcome.extra, {
      ack_p50_ms: round1(quantile(loaded, 0.5)),
      ack_p99_ms: round1(quantile(loaded, 0.99)),
      ack_max_ms: round1(quantile(loaded, 1)),
      ack_p99_ms_baseline: round1(quantile(baseline, 0.99)),
      acks_under_load: loaded.length,
    });
    if (loaded.length === 0) outcome.problems.push("no send was acked while the cores were saturated");
    return outcome;
  },
};

export default scenario;
