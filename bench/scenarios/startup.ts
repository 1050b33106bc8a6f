// `startup`: cold start to ready (spawn → ready line, and spawn → first 200 from /readyz) over
// several runs, then the same with N messages (default 1M) already in offline inboxes: pre-filled
// through the server itself, then restarted on the same data directory.

import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Ctx, Scenario } from "../lib/context.ts";
import { collectClientProblems, noteIris, stopServer } from "../lib/context.ts";
import { int, median, ms, num } from "../lib/format.ts";
import { chunk, LoadGen } from "../lib/loadgen.ts";
import { disturbance, pct, runGroups } from "../lib/phases.ts";
import { metric, tryScrape } from "../lib/prom.ts";
import { freePort, startIris } from "../lib/server.ts";
import { barChart } from "../lib/svg.ts";

export interface StartRun {
  readyLineMs: number;
  readyzMs: number;
  reportedStartupMs: number | null;
  stopMs: number;
}

export interface StartSet {
  runs: StartRun[];
  medianReadyLineMs: number;
  medianReadyzMs: number;
  medianReportedMs: number | null;
  medianStopMs: number;
}

export interface StartupFigures {
  params: { coldRuns: number; warmRuns: number; messages: number; recipients: number; senders: number; window: number };
  cold: StartSet;
  prefill: {
    sent: number;
    stored: number;
    errors: number;
    ms: number;
    msgsPerSec: number;
    dbBytes: number;
    stopMs: number;
  };
  withInbox: StartSet & { inboxRows: number | null };
}

/** Polls GET /readyz from before the spawn until the first 200; ms since `t0`. */
async function pollReadyz(port: number, t0: number, deadlineMs: number): Promise<number> {
  const end = t0 + deadlineMs;
  while (performance.now() < end) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(500) });
      if (r.status === 200) return performance.now() - t0;
    } catch {
      // not listening yet
    }
    await Bun.sleep(2);
  }
  return NaN;
}

async function startOnce(
  ctx: Ctx,
  dataDir: string | undefined,
  label: string,
): Promise<StartRun & { inboxRows: number | null }> {
  const port = freePort();
  const t0 = performance.now();
  const readyz = pollReadyz(port, t0, 60_000);
  const s = await startIris({
    binary: ctx.args.binary ?? undefined,
    port,
    ...(dataDir ? { dataDir } : {}),
    shards: ctx.args.shards?.[0] ?? null,
  });
  const readyzMs = await readyz;
  noteIris(ctx, s);
  const m = await tryScrape(s.http);
  const stop = await stopServer(ctx, s, label);
  if (!Number.isFinite(readyzMs)) ctx.problems.push(`${label}: /readyz never answered 200`);
  return {
    readyLineMs: Math.round(s.readyLineMs * 10) / 10,
    readyzMs: Math.round(readyzMs * 10) / 10,
    reportedStartupMs: s.reportedStartupMs,
    stopMs: Math.round(stop.ms),
    inboxRows: m ? metric(m, "iris_store_inbox_rows") : null,
  };
}

function summarize(runs: StartRun[]): StartSet {
  const rep = runs.map((r) => r.reportedStartupMs).filter((x): x is number => x !== null);
  return {
    runs,
    medianReadyLineMs: median(runs.map((r) => r.readyLineMs)),
    medianReadyzMs: median(runs.map((r) => r.readyzMs)),
    medianReportedMs: rep.length ? median(rep) : null,
    medianStopMs: median(runs.map((r) => r.stopMs)),
  };
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) {
    try {
      n += statSync(join(dir, f)).size;
    } catch {
      // removed meanwhile
    }
  }
  return n;
}

export const startup: Scenario<StartupFigures> = async (ctx) => {
  const a = ctx.args;
  const coldRuns = a.smoke ? 2 : 5;
  const warmRuns = a.smoke ? 1 : 3;
  const recipients = a.smoke ? 10 : 1000;
  const senders = a.smoke ? 2 : 20;
  const window = a.window ?? 64;
  const messages = Math.floor((a.messages ?? (a.smoke ? 1000 : 1_000_000)) / senders) * senders;
  const params = { coldRuns, warmRuns, messages, recipients, senders, window };
  Object.assign(ctx.params, params);

  const cold: StartRun[] = [];
  for (let i = 0; i < coldRuns; i++) {
    const r = await startOnce(ctx, undefined, `iris cold #${i + 1}`);
    cold.push(r);
    ctx.log(`cold start #${i + 1}: ready line ${ms(r.readyLineMs)}, /readyz ${ms(r.readyzMs)}`);
  }

  const dataDir = mkdtempSync(join(tmpdir(), "iris-bench-startup-"));
  try {
    // Pre-fill through the server: offline users, each send acked "stored".
    const s = await startIris({ binary: a.binary ?? undefined, dataDir, shards: a.shards?.[0] ?? null });
    const lg = await LoadGen.spawn(2);
    let prefill: StartupFigures["prefill"];
    try {
      const names = Array.from({ length: senders }, (_, i) => `prefill-${i}`);
      const perWorker = chunk(names, 2);
      const targets = chunk(Array.from({ length: recipients }, (_, i) => `inbox-${i}`), senders);
      for (let w = 0; w < 2; w++) {
        const o = await lg.open(w, {
          target: { kind: "ws", url: s.url },
          proto: "v1",
          users: perWorker[w]!,
          concurrency: 32,
          timeoutMs: 20_000,
          payload: a.payload,
        });
        if (o.failed) throw new Error(`prefill senders failed: ${o.errors.join("; ")}`);
      }
      ctx.log(`pre-filling ${int(messages)} messages into ${recipients} offline inboxes`);
      const { groups, cpu } = await runGroups(
        lg,
        (w) => [{
          name: "prefill",
          senders: perWorker[w]!.map((_, i) => ({
            c: i,
            to: targets[perWorker.slice(0, w).reduce((n, p) => n + p.length, 0) + i]!,
          })),
          mode: { kind: "window", window, ackOn: "sent" },
          quota: messages / senders,
        }],
        { warmupMs: 0, measureMs: a.smoke ? 60_000 : 300_000, drainMs: 30_000, payload: a.payload },
        s.pid,
      );
      const g = groups.get("prefill")!;
      const disturbed = disturbance("startup prefill", pct(cpu.otherUs, cpu.wallMs));
      if (disturbed) ctx.problems.push(disturbed);
      await collectClientProblems(ctx, lg, "startup prefill");
      if (g.acks.stored !== messages) {
        ctx.problems.push(
          `prefill: ${g.acks.stored} of ${messages} acked "stored" (${g.errors} errors, ${g.inflightLeft} unanswered)`,
        );
      }
      const stop = await stopServer(ctx, s, "iris prefill");
      const elapsed = g.elapsedMs || g.measured.ms;
      prefill = {
        sent: g.sent,
        stored: g.acks.stored,
        errors: g.errors,
        ms: Math.round(elapsed),
        msgsPerSec: Math.round((g.acks.stored * 1000) / Math.max(1, elapsed)),
        dbBytes: dirBytes(dataDir),
        stopMs: Math.round(stop.ms),
      };
      ctx.log(`stored ${int(prefill.stored)} in ${ms(prefill.ms)}; database ${num(prefill.dbBytes / 2 ** 20, 1)} MiB`);
    } finally {
      await lg.close();
      await s.stop();
    }

    const warm: (StartRun & { inboxRows: number | null })[] = [];
    for (let i = 0; i < warmRuns; i++) {
      const r = await startOnce(ctx, dataDir, `iris with inbox #${i + 1}`);
      warm.push(r);
      ctx.log(
        `start with ${int(messages)} stored: ready line ${ms(r.readyLineMs)}, /readyz ${
          ms(r.readyzMs)
        }, inbox rows ${r.inboxRows}`,
      );
    }
    const inboxRows = warm[warm.length - 1]?.inboxRows ?? null;
    if (inboxRows !== null && inboxRows !== prefill.stored) {
      ctx.problems.push(`after restart iris_store_inbox_rows = ${inboxRows}, expected ${prefill.stored}`);
    }
    const c = summarize(cold);
    const wi = { ...summarize(warm.map(({ inboxRows: _, ...r }) => r)), inboxRows };
    ctx.notes.push(
      'ready line = spawn → the server prints "iris … ready on …"; /readyz = spawn → first HTTP 200 from /readyz, ' +
        "polled every 2 ms from before the spawn. Medians; absolute figures.",
      `The inbox was pre-filled through the server (${senders} senders, ${recipients} offline users), then the server ` +
        "was stopped with SIGTERM and restarted on the same --data-dir.",
    );
    return {
      figures: { params, cold: c, prefill, withInbox: wi },
      charts: [{
        name: "startup",
        svg: barChart({
          title: "Start to ready (median)",
          categories: ["ready line", "/readyz 200"],
          series: [
            { name: "empty data dir", values: [c.medianReadyLineMs, c.medianReadyzMs] },
            { name: `${int(messages)} stored`, values: [wi.medianReadyLineMs, wi.medianReadyzMs] },
          ],
          yLabel: "ms",
        }),
      }],
      summary: [
        `cold start (${coldRuns} runs): ready line ${ms(c.medianReadyLineMs)}, /readyz ${ms(c.medianReadyzMs)}, ` +
        `server-reported ${c.medianReportedMs ?? "n/a"} ms, graceful stop ${ms(c.medianStopMs)} (medians)`,
        `prefill: ${int(prefill.stored)} of ${int(messages)} stored in ${ms(prefill.ms)} = ${
          int(prefill.msgsPerSec)
        } msgs/s; ` +
        `data dir ${num(prefill.dbBytes / 2 ** 20, 1)} MiB; stop took ${ms(prefill.stopMs)}`,
        `start with ${int(messages)} stored (${warmRuns} runs): ready line ${ms(wi.medianReadyLineMs)}, /readyz ` +
        `${ms(wi.medianReadyzMs)}, server-reported ${wi.medianReportedMs ?? "n/a"} ms; inbox rows seen ${
          inboxRows ?? "n/a"
        }`,
      ],
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
};
