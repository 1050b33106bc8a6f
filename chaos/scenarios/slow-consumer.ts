// slow-consumer: thousands of consumers log in and never read (raw sockets paused after login),
// while other clients send them 100,000 messages. The server must not hold those messages in RAM
// (RSS stays below --spill-mb) and must commit them to the store, which is what lets it ack the
// senders. Then the consumers come back with the SDK and must get every acked message exactly once.

import { NonReaders } from "../faults/non-readers.ts";
import { conclude, progress } from "../lib/conclude.ts";
import { num } from "../lib/options.ts";
import type { Scenario } from "../lib/scenario.ts";
import { round1, waitUntil } from "../lib/stats.ts";

const scenario: Scenario = {
  name: "slow-consumer",
  summary: "thousands of logged-in clients that never read receive 100,000 messages; RSS stays under --spill-mb",
  budgetSeconds: (o) => (o.short ? 90 : 300),
  async run(ctx) {
    const o = ctx.opts;
    const spillMb = num(o, "spill-mb", 512, 512);
    const timeoutMs = num(o, "slow-timeout-ms", 5000, 2000);
    const slowBytes = num(o, "slow-bytes", 65536, 65536);
    const server = await ctx.server({
      shards: num(o, "shards", 2, 2),
      args: [
        "--slow-consumer-bytes",
        String(slowBytes),
        "--slow-consumer-timeout",
        String(timeoutMs),
        "--spill-mb",
        String(spillMb),
      ],
    });
    const total = num(o, "messages", 100_000, 10_000);
    const traffic = await ctx.traffic({
      url: server.url,
      users: num(o, "senders", 100, 30),
      offlineUsers: num(o, "consumers", 2000, 300),
      offlineOnly: true,
      maxMessages: total,
      intervalMs: num(o, "interval-ms", 10, 10),
      payloadBytes: num(o, "payload", 1024, 1024),
      prefix: "sc",
    });
    // The recipients are "offline" to the traffic generator (they read only at settle time), but
    // they are logged in right now, on sockets that never read.
    const stalled = ctx.fault(new NonReaders(server, traffic.offlineNames));
    await stalled.open();
    ctx.log(`${stalled.opened} consumers logged in and stopped reading`);
    traffic.start();
    const t0 = performance.now();
    const sentAll = await waitUntil(() => traffic.sentCount >= total, 120_000);
    const sendS = (performance.now() - t0) / 1000;
    ctx.log(`sent ${traffic.sentCount} in ${round1(sendS)} s; waiting for acks (${progress(ctx, [traffic])})`);
    // Acks can only come from the store (nobody reads), at the latest after the slow-consumer
    // timeout has cut the stalled sockets and their in-flight messages were committed.
    const ackWait = timeoutMs + (o.short ? 8_000 : 20_000);
    const allAcked = await waitUntil(() => traffic.unacked === 0, ackWait);
    const ackedBeforeRead = traffic.ackedCount;
    const before = await server.api.counters();
    ctx.log(`before reading: ${progress(ctx, [traffic])} statuses=${JSON.stringify(traffic.statuses)}`);
    const rssBeforeRead = ctx.maxRssMb;
    await stalled.stop();
    const { outcome, counters } = await conclude(ctx, server, {
      traffic: [traffic],
      faults: [stalled],
      settleMs: 120_000,
    });
    Object.assign(outcome.extra, {
      spill_mb: spillMb,
      slow_consumer_bytes: slowBytes,
      slow_consumer_timeout_ms: timeoutMs,
      send_s: round1(sendS),
      acked_before_read: ackedBeforeRead,
      stored_acks: traffic.statuses.stored,
      inbox_rows_before_read: before?.totals.inboxRows ?? 0,
      slow_disconnects: counters?.totals.slowDisconnects ?? 0,
      max_rss_mb_stalled: rssBeforeRead,
    });
    const p = outcome.problems;
    if (!sentAll) p.push(`only ${traffic.sentCount} of ${total} messages were sent in time`);
    if (stalled.failed > 0) p.push(`${stalled.failed} consumers could not log in`);
    if (outcome.maxRssMb >= spillMb) p.push(`server RSS ${outcome.maxRssMb} MiB reached --spill-mb ${spillMb}`);
    if (!allAcked) {
      p.push(
        `${traffic.sentCount - ackedBeforeRead} sends to non-reading consumers still unacked ` +
          `${Math.round(ackWait / 1000)} s after sending (slow-consumer timeout ${timeoutMs} ms)`,
      );
    }
    if ((before?.totals.inboxRows ?? 0) < ackedBeforeRead) {
      p.push(`${ackedBeforeRead} acked before reading but only ${before?.totals.inboxRows ?? 0} rows stored`);
    }
    return outcome;
  },
};

export default scenario;
