// oom: attempts to exhaust the server's memory. Many clients send max-size payloads to users who
// are offline or logged in but never reading, while other sockets send frames far beyond
// --max-payload. With --spill-mb/--refuse-mb set low, RSS must stay bounded near the refuse
// watermark, the server must stay up, and nothing it acked may be lost.

import { HugeFrames } from "../faults/huge-frames.ts";
import { NonReaders } from "../faults/non-readers.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num, seconds } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";
import { round1, waitUntil } from "../lib/stats.ts";

const MAX_PAYLOAD = 65536;

const scenario: Scenario = {
  name: "oom",
  summary: "max-size payloads to non-readers and offline users plus huge frames; RSS stays bounded",
  budgetSeconds: (o) => seconds(o, 60, 10) + 150,
  async run(ctx) {
    const o = ctx.opts;
    const spillMb = num(o, "spill-mb", 256, 256);
    const refuseMb = num(o, "refuse-mb", 384, 384);
    // The bound we hold the server to: the refuse watermark plus 25% for what is in flight
    // between two memory samples (the server samples RSS every 250 ms, as we do).
    const limitMb = Math.round(refuseMb * num(o, "rss-slack", 1.25, 1.25));
    const slowTimeoutMs = num(o, "slow-timeout-ms", 5000, 3000);
    const server = await ctx.server({
      shards: num(o, "shards", 2, 2),
      args: [
        "--spill-mb",
        String(spillMb),
        "--refuse-mb",
        String(refuseMb),
        "--max-payload",
        String(MAX_PAYLOAD),
        "--slow-consumer-timeout",
        String(slowTimeoutMs),
      ],
    });
    const total = num(o, "messages", 20_000, 3_000);
    const traffic = await ctx.traffic({
      url: server.url,
      users: num(o, "senders", 40, 20),
      offlineUsers: num(o, "recipients", 100, 40),
      offlineOnly: true,
      maxMessages: total,
      intervalMs: num(o, "interval-ms", 50, 50),
      payloadBytes: MAX_PAYLOAD, // bodies end up a few bytes under the limit (see Traffic's padding)
      prefix: "om",
    });
    // Half the recipients are logged in and stalled, half are simply offline.
    const names = traffic.offlineNames;
    const stalledFraction = num(o, "stalled-fraction", 0.5, 0.5);
    const stalled = ctx.fault(new NonReaders(server, names.slice(0, Math.floor(names.length * stalledFraction))));
    await stalled.open();
    const huge = ctx.fault(
      new HugeFrames(server, { everyMs: num(o, "huge-every-ms", 500, 500), maxPayload: MAX_PAYLOAD }),
    );
    ctx.rss?.phase("flood");
    traffic.start();
    huge.start();
    const t0 = performance.now();
    const secs = seconds(o, 60, 10);
    await waitUntil(() => {
      if (performance.now() - t0 > secs * 1000) return true;
      return traffic.sentCount >= total;
    }, secs * 1000 + 1000);
    ctx.log(`flood done in ${round1((performance.now() - t0) / 1000)} s (${progress(ctx, [traffic])})`);
    await huge.stop();
    // Stalled consumers are cut after the slow-consumer timeout; then their messages are stored.
    await waitUntil(() => traffic.unacked === 0, slowTimeoutMs + (o.short ? 8_000 : 20_000));
    await stalled.stop();
    const { outcome, counters } = await conclude(ctx, server, {
      traffic: [traffic],
      faults: [stalled, huge],
      settleMs: 120_000,
    });
    Object.assign(outcome.extra, {
      spill_mb: spillMb,
      refuse_mb: refuseMb,
      rss_limit_mb: limitMb,
      max_rss_mb_flood: ctx.rss?.phaseMaxMb("flood") ?? 0,
      max_rss_mb_settle: ctx.rss?.phaseMaxMb("settle") ?? 0,
      payload_bytes: MAX_PAYLOAD,
      shed: counters?.totals.shedConnections ?? 0,
      refused_upgrades: counters?.totals.rejectedUpgrades ?? 0,
      slow_disconnects: counters?.totals.slowDisconnects ?? 0,
    });
    const p = outcome.problems;
    if (outcome.maxRssMb > limitMb) {
      p.push(`server RSS ${outcome.maxRssMb} MiB exceeded ${limitMb} MiB (--refuse-mb ${refuseMb} + slack)`);
    }
    if (huge.notClosed > 0) p.push(`${huge.notClosed} oversized frames did not get their connection closed`);
    if (huge.sent === 0) p.push("no oversized frame could be sent");
    return outcome;
  },
};

export default scenario;
