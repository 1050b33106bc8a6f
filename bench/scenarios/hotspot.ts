// `hotspot` (the seed's "Messi"): N messages to one offline user, each acked "stored" by the
// server, then that user logs in and acks as it goes; time until every message arrived.

import type { Scenario } from "../lib/context.ts";
import { collectClientProblems } from "../lib/context.ts";
import { int, ms, num } from "../lib/format.ts";
import { LoadGen } from "../lib/loadgen.ts";
import { disturbance, pct, runGroups } from "../lib/phases.ts";
import { metric, tryScrape } from "../lib/prom.ts";
import { lineChart } from "../lib/svg.ts";
import { startTarget } from "../lib/targets.ts";

export interface HotspotFigures {
  params: { messages: number; senders: number; window: number; payload: number; maxInbox: number };
  fill: { sent: number; stored: number; errors: number; ms: number; msgsPerSec: number; perSecond: number[] };
  drain: {
    loginMs: number;
    firstDeliveryMs: number;
    allDeliveredMs: number;
    delivered: number;
    complete: boolean;
    outOfOrder: number;
    msgsPerSec: number;
    perSecond: number[];
  };
  server: { deliveredStored: number | null; rowsDeleted: number | null; inboxRowsAfter: number | null };
}

const HOT_USER = "messi";

export const hotspot: Scenario<HotspotFigures> = async (ctx) => {
  const a = ctx.args;
  const senders = a.smoke ? 2 : 4;
  const messages = Math.floor((a.messages ?? (a.smoke ? 2000 : 200_000)) / senders) * senders;
  const window = a.window ?? 128;
  // The default per-user inbox cap (100,000) would refuse half of the seed's 200k test.
  const maxInbox = Math.max(100_000, messages);
  const timeoutMs = a.smoke ? 60_000 : 300_000;
  const params = { messages, senders, window, payload: a.payload, maxInbox };
  Object.assign(ctx.params, params);
  const lg = await LoadGen.spawn(1);
  const t = await startTarget(ctx, "iris", a.shards?.[0] ?? null, ["--max-inbox", String(maxInbox)]);
  try {
    const users = Array.from({ length: senders }, (_, i) => `hot-sender-${i}`);
    const o = await lg.open(0, {
      target: t.target,
      proto: "v1",
      users,
      concurrency: senders,
      timeoutMs: 20_000,
      payload: a.payload,
    });
    if (o.failed) throw new Error(`senders could not log in: ${o.errors.join("; ")}`);
    ctx.log(`filling ${int(messages)} messages for offline user "${HOT_USER}"`);
    const { groups, cpu } = await runGroups(
      lg,
      () => [{
        name: "fill",
        senders: users.map((_, i) => ({ c: i, to: [HOT_USER] })),
        mode: { kind: "window", window, ackOn: "sent" },
        quota: messages / senders,
      }],
      { warmupMs: 0, measureMs: timeoutMs, drainMs: 30_000, payload: a.payload },
      t.pid,
    );
    const fill = groups.get("fill")!;
    const disturbed = disturbance("hotspot fill", pct(cpu.otherUs, cpu.wallMs));
    if (disturbed) ctx.problems.push(disturbed);
    const fillMs = fill.elapsedMs || fill.measured.ms;
    if (fill.acks.stored !== messages) {
      ctx.problems.push(
        `fill: ${fill.acks.stored} of ${messages} sends acked "stored" (${fill.errors} errors, ` +
          `${fill.acks.delivered} delivered, ${fill.acks.duplicate} duplicate, ${fill.inflightLeft} unanswered)`,
      );
    }
    ctx.log(`stored ${int(fill.acks.stored)} in ${int(fillMs)} ms; logging "${HOT_USER}" in`);
    const d = await lg.drain(0, {
      target: t.target,
      proto: "v1",
      users: [HOT_USER],
      expect: messages,
      timeoutMs,
      payload: a.payload,
    });
    if (!d.complete) {
      ctx.problems.push(`drain: only ${d.delivered} of ${messages} messages arrived within ${timeoutMs / 1000} s`);
    }
    if (d.delivered > messages) {
      ctx.problems.push(`drain: ${d.delivered - messages} messages more than were sent (duplicates)`);
    }
    if (d.outOfOrder > 0) ctx.problems.push(`drain: ${d.outOfOrder} deliveries out of sequence order`);
    await collectClientProblems(ctx, lg, "hotspot");
    // Acks reach the store asynchronously; give the deletes a moment before reading counters.
    await Bun.sleep(a.smoke ? 300 : 1000);
    const m = await tryScrape(t.http);
    const figures: HotspotFigures = {
      params,
      fill: {
        sent: fill.sent,
        stored: fill.acks.stored,
        errors: fill.errors,
        ms: Math.round(fillMs),
        msgsPerSec: Math.round((fill.acks.stored * 1000) / Math.max(1, fillMs)),
        perSecond: fill.perSec.acked,
      },
      drain: {
        loginMs: Math.round(d.loginMs * 10) / 10,
        firstDeliveryMs: Math.round(d.firstMs * 10) / 10,
        allDeliveredMs: Math.round(d.doneMs),
        delivered: d.delivered,
        complete: d.complete,
        outOfOrder: d.outOfOrder,
        msgsPerSec: Math.round((d.delivered * 1000) / Math.max(1, d.doneMs)),
        perSecond: d.perSec,
      },
      server: {
        deliveredStored: m ? metric(m, "iris_messages_delivered_stored_total") : null,
        rowsDeleted: m ? metric(m, "iris_store_rows_deleted_total") : null,
        inboxRowsAfter: m ? metric(m, "iris_store_inbox_rows") : null,
      },
    };
    ctx.notes.push(
      `Iris was started with --max-inbox ${maxInbox}: its default cap of 100,000 stored messages per user ` +
        "would refuse the rest of a 200k hotspot with INBOX_FULL.",
      `Fill: ${senders} senders, at most ${window} unacknowledged sends each; a send counts when the server acks it "stored".`,
      "Drain: time from the recipient's LOGIN until every message arrived; it acks cumulatively as it goes. Absolute figures.",
    );
    return {
      figures,
      charts: [{
        name: "rate",
        svg: lineChart({
          title: `Hotspot: ${int(messages)} messages to one user`,
          xLabel: "seconds since the phase started",
          yLabel: "messages / s",
          series: [
            { name: "stored (fill)", points: figures.fill.perSecond.map((v, i) => [i + 1, v] as [number, number]) },
            {
              name: "delivered (drain)",
              points: figures.drain.perSecond.map((v, i) => [i + 1, v] as [number, number]),
            },
          ],
        }),
      }],
      summary: [
        `fill:  ${int(figures.fill.stored)} of ${int(messages)} stored in ${ms(figures.fill.ms)} = ${
          int(figures.fill.msgsPerSec)
        } msgs/s`,
        `drain: ${int(d.delivered)} delivered${d.complete ? "" : " (INCOMPLETE)"} in ${
          ms(figures.drain.allDeliveredMs)
        } after login = ` +
        `${int(figures.drain.msgsPerSec)} msgs/s (login ${ms(d.loginMs)}, first message ${ms(d.firstMs)})`,
        `server: delivered from store ${figures.server.deliveredStored ?? "n/a"}, rows deleted ${
          figures.server.rowsDeleted ?? "n/a"
        }, ` +
        `inbox rows left ${figures.server.inboxRowsAfter ?? "n/a"}; out-of-order ${d.outOfOrder}; ` +
        `${
          num(messages / Math.max(0.001, (figures.fill.ms + figures.drain.allDeliveredMs) / 1000), 0)
        } msgs/s end to end`,
      ],
    };
  } finally {
    await lg.close();
    await t.stop();
  }
};
