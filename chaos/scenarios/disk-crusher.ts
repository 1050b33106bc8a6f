// disk-crusher: an offline flood. Many senders write to many users who are not connected, so every
// message goes through the storage writer into SQLite; at the end the recipients log in and must
// receive everything exactly once. Reports the stored throughput and the drain time.

import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";
import { round1 } from "../lib/stats.ts";

const scenario: Scenario = {
  name: "disk-crusher",
  summary: "offline flood: many senders to many offline users, who read everything at the end",
  budgetSeconds: (o) => seconds(o, 60, 6) + 200,
  async run(ctx) {
    const o = ctx.opts;
    const server = await ctx.server({ shards: num(o, "shards", 2, 2) });
    const traffic = await ctx.traffic({
      url: server.url,
      users: num(o, "senders", 100, 50),
      offlineUsers: num(o, "offline", 2000, 500),
      offlineOnly: true,
      intervalMs: num(o, "interval-ms", 5, 5),
      payloadBytes: num(o, "payload", 256, 256),
      prefix: "dc",
    });
    const secs = seconds(o, 60, 6);
    traffic.start();
    const t0 = performance.now();
    await ctx.hold(secs, () => `${progress(ctx, [traffic])} stored=${traffic.statuses.stored}`);
    traffic.stop();
    // Wait for the tail of the flood to be committed, so the rate covers every stored message.
    const end = performance.now() + 60_000;
    while (traffic.unacked > 0 && performance.now() < end) await Bun.sleep(50);
    const floodS = (performance.now() - t0) / 1000;
    const stored = traffic.statuses.stored;
    const before = await server.api.counters();
    const { outcome, counters } = await conclude(ctx, server, { traffic: [traffic], faults: [], settleMs: 120_000 });
    // Everything was delivered and acked, so the acked rows should leave the store shortly.
    let rowsLeft = counters?.totals.inboxRows ?? 0;
    const deadline = performance.now() + 15_000;
    while (rowsLeft > 0 && performance.now() < deadline) {
      await Bun.sleep(250);
      rowsLeft = (await server.api.counters())?.totals.inboxRows ?? rowsLeft;
    }
    Object.assign(outcome.extra, {
      stored,
      stored_msgs_per_s: Math.round(stored / floodS),
      flood_s: round1(floodS),
      inbox_rows_peak: before?.totals.inboxRows ?? 0,
      inbox_rows_after_read: counters?.totals.inboxRows ?? 0,
      inbox_rows_15s_later: rowsLeft,
      offline_users: traffic.offlineNames.length,
    });
    if (stored === 0) outcome.problems.push("nothing was stored");
    if (outcome.verdict.delivered < outcome.verdict.acked) {
      outcome.problems.push("offline users did not receive their inboxes");
    }
    return outcome;
  },
};

export default scenario;
