// `connections`: idle, logged-in connections at cumulative levels (1k, 5k, 10k, 15k). At each
// level: the server's RSS growth per connection and the time to connect the increment. The same
// ramp on the baseline relay shows what Bun's WebSocket alone costs per connection.

import type { Ctx, Scenario } from "../lib/context.ts";
import { collectClientProblems, sleep } from "../lib/context.ts";
import { int, median, num, ratio, table } from "../lib/format.ts";
import { chunk, LoadGen } from "../lib/loadgen.ts";
import { status } from "../lib/procstat.ts";
import { metric, tryScrape } from "../lib/prom.ts";
import { lineChart } from "../lib/svg.ts";
import { externalTarget, isExternal, startTarget, type TargetRun } from "../lib/targets.ts";

/** One worker process per this many sockets (a process may hold < 20k file descriptors). */
const CONNS_PER_WORKER = 5000;
/**
 * After a level's settle time, RSS is read every RSS_LOOK_MS until it holds still: RSS_STILL_LOOKS
 * looks in a row within RSS_STILL_KB of the first of them, at most RSS_SETTLE_MAX_MS. An idle
 * server gives a burst's memory back over a second or two (Iris's idle collection, the allocators'
 * purges), so one reading at a fixed time caught Iris part-way through it: its 10k figure moved by
 * 0.5 KB a connection between identical runs (issue 14). Both targets get the same rule.
 */
const RSS_LOOK_MS = 250;
const RSS_STILL_LOOKS = 4;
const RSS_STILL_KB = 256;
const RSS_SETTLE_MAX_MS = 10_000;

export interface Level {
  connections: number;
  /** Connections the server reports (iris_connections), when it has /metrics. */
  serverConnections: number | null;
  rssKb: number | null;
  perConnKb: number | null;
  /** RSS growth per connection since the previous level (excludes one-off heap growth). */
  marginalKb: number | null;
  /** Time to open and log in this level's increment. */
  connectMs: number;
  /** Time from the end of the settle wait until RSS held still (RSS_STILL_LOOKS), or the cap. */
  stillAfterMs: number | null;
  connsPerSec: number;
  failed: number;
}

export interface RampFigures {
  label: string;
  rssBeforeKb: number | null;
  levels: Level[];
  rssAfterCloseKb: number | null;
  totalConnectMs: number;
}

/** One round's KB per connection at each level (Iris, and the relay when it ran). */
export interface ConnRound {
  target: (number | null)[];
  baseline: (number | null)[] | null;
}

export interface ConnectionsFigures {
  params: { levels: number[]; workers: number; proto: string; settleMs: number; rounds?: number };
  /** The last round's ramps, in full. */
  target: RampFigures;
  baseline: RampFigures | null;
  /** Iris KB per connection ÷ baseline KB per connection, per level (the last round). */
  perConnRatio: (number | null)[];
  /** Every round, in order (absent in results written before --rounds). */
  rounds?: ConnRound[];
}

/** A round's KB per connection at each level, from its ramps. */
function roundOf(target: RampFigures, baseline: RampFigures | null): ConnRound {
  const kb = (r: RampFigures) => r.levels.map((l) => l.perConnKb);
  return { target: kb(target), baseline: baseline ? kb(baseline) : null };
}

/** A level's KB per connection over the rounds: median, lowest, highest and how many rounds had it. */
export interface PerConnSpread {
  median: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * KB per connection at `conns` over every round, for Iris or the relay; null when no round has it.
 * Identical runs of one binary moved by up to 0.45 KB a connection at 10k (session 40), as much as
 * the row's margin, so with --rounds the issue-14 row is judged on the median.
 */
export function perConnSpread(f: ConnectionsFigures, conns: number, who: "target" | "baseline"): PerConnSpread | null {
  const at = f.params.levels.indexOf(conns);
  if (at < 0) return null;
  const rounds = f.rounds ?? [roundOf(f.target, f.baseline)]; // results written before --rounds
  const vs = rounds.map((r) => r[who]?.[at]).filter((v): v is number => typeof v === "number");
  if (vs.length === 0) return null;
  return { median: median(vs), lo: Math.min(...vs), hi: Math.max(...vs), n: vs.length };
}

function rss(pid: number | null): number | null {
  if (!pid) return null;
  try {
    return status(pid).vmRssKb;
  } catch {
    return null;
  }
}

/** RSS once it holds still (see RSS_STILL_LOOKS), and how long that took; null without a pid. */
async function stillRss(pid: number | null, looks: number): Promise<{ kb: number | null; ms: number | null }> {
  const first = rss(pid);
  if (first === null) return { kb: null, ms: null };
  const t0 = performance.now();
  let anchor = first;
  let still = 0;
  let kb = first;
  while (still < looks && performance.now() - t0 < RSS_SETTLE_MAX_MS) {
    await sleep(RSS_LOOK_MS);
    kb = rss(pid) ?? kb;
    if (Math.abs(kb - anchor) <= RSS_STILL_KB) still++;
    else (anchor = kb, still = 0);
  }
  return { kb, ms: Math.round(performance.now() - t0) };
}

async function ramp(ctx: Ctx, lg: LoadGen, t: TargetRun, levels: number[], settleMs: number): Promise<RampFigures> {
  const looks = ctx.args.smoke ? 1 : RSS_STILL_LOOKS; // a smoke run checks the scenario, not the figure
  await sleep(settleMs);
  const before = (await stillRss(t.pid, looks)).kb; // the same rule as each level's reading
  const out: Level[] = [];
  let have = 0;
  let prevRss = before;
  let prevOpened = 0;
  for (const level of levels) {
    const users = Array.from({ length: Math.max(0, level - have) }, (_, i) => `idle-${have + i}`);
    const parts = chunk(users, lg.size);
    const t0 = performance.now();
    const r = await Promise.all(
      parts.map((u, w) =>
        u.length
          ? lg.open(w, {
            target: t.target,
            proto: ctx.args.proto,
            users: u,
            concurrency: 100,
            timeoutMs: 30_000,
            payload: ctx.args.payload,
            bundles: ctx.args.bundles && t.kind !== "baseline",
          })
          : Promise.resolve({ opened: 0, failed: 0, errors: [] as string[], ms: 0, firstIndex: 0 })
      ),
    );
    const connectMs = performance.now() - t0;
    const failed = r.reduce((n, x) => n + x.failed, 0);
    for (const e of r.flatMap((x) => x.errors)) ctx.problems.push(`${t.label} at ${level}: ${e}`);
    have = level;
    // Wait for the server to count them all, then let allocations settle before reading RSS.
    let serverConns: number | null = null;
    const until = performance.now() + 10_000;
    for (;;) {
      const m = t.kind === "baseline" ? null : await tryScrape(t.http);
      serverConns = m?.has("iris_connections") ? metric(m, "iris_connections") : null;
      if (serverConns === null || serverConns >= level - failed || performance.now() > until) break;
      await sleep(100);
    }
    await sleep(settleMs);
    const { kb: now, ms: stillAfterMs } = await stillRss(t.pid, looks);
    const opened = level - failed;
    out.push({
      connections: level,
      serverConnections: t.kind === "baseline" ? null : serverConns,
      rssKb: now,
      perConnKb: now !== null && before !== null && opened > 0
        ? Math.round(((now - before) / opened) * 100) / 100
        : null,
      marginalKb: now !== null && prevRss !== null && opened > prevOpened
        ? Math.round(((now - prevRss) / (opened - prevOpened)) * 100) / 100
        : null,
      connectMs: Math.round(connectMs),
      stillAfterMs,
      connsPerSec: Math.round((users.length * 1000) / connectMs),
      failed,
    });
    prevRss = now;
    prevOpened = opened;
    ctx.log(
      `${t.label}: ${int(level)} connections (+${int(users.length)} in ${int(connectMs)} ms)` +
        (now !== null && before !== null
          ? `, RSS ${num(now / 1024, 1)} MiB (${num((now - before) / Math.max(1, opened), 2)} KB/conn, still after ` +
            `${int(stillAfterMs ?? 0)} ms)`
          : ""),
    );
  }
  await collectClientProblems(ctx, lg, t.label);
  for (let w = 0; w < lg.size; w++) await lg.closeConns(w);
  await sleep(settleMs);
  return {
    label: t.label,
    rssBeforeKb: before,
    levels: out,
    rssAfterCloseKb: rss(t.pid),
    totalConnectMs: out.reduce((n, l) => n + l.connectMs, 0),
  };
}

export const connections: Scenario<ConnectionsFigures> = async (ctx) => {
  // Smoke levels big enough that RSS growth (~3 KB a connection) outweighs the allocator giving pages
  // back meanwhile: at 20 connections the growth was -10.6 KB a connection once (CI of 341f0f7).
  const levels = ctx.args.levels ?? (ctx.args.smoke ? [200, 400] : [1000, 5000, 10_000, 15_000]);
  const max = Math.max(...levels);
  const workers = ctx.args.workers ?? Math.max(1, Math.ceil(max / CONNS_PER_WORKER));
  const settleMs = ctx.args.smoke ? 300 : 1500;
  // An external server is one process: its ramp cannot start again from a fresh start.
  const roundsWanted = isExternal(ctx) ? 1 : ctx.args.rounds;
  const params = { levels, workers, proto: ctx.args.proto, settleMs, rounds: roundsWanted };
  Object.assign(ctx.params, params);
  const lg = await LoadGen.spawn(workers);
  let target: RampFigures | null = null;
  let baseline: RampFigures | null = null;
  const rounds: ConnRound[] = [];
  try {
    for (let r = 1; r <= roundsWanted; r++) {
      if (roundsWanted > 1) ctx.log(`round ${r} of ${roundsWanted}`);
      const t = isExternal(ctx) ? externalTarget(ctx) : await startTarget(ctx, "iris", ctx.args.shards?.[0] ?? null);
      try {
        target = await ramp(ctx, lg, t, levels, settleMs);
      } finally {
        await t.stop();
      }
      if (ctx.args.baseline) {
        const b = await startTarget(ctx, "baseline", null);
        try {
          baseline = await ramp(ctx, lg, b, levels, settleMs);
        } finally {
          await b.stop();
        }
      }
      rounds.push(roundOf(target, baseline));
    }
  } finally {
    await lg.close();
  }
  if (target === null) throw new Error("connections: no round ran");
  const perConnRatio = target.levels.map((l, i) => ratio(l.perConnKb ?? NaN, baseline?.levels[i]?.perConnKb ?? 0));
  ctx.notes.push(
    "KB/conn = (server VmRSS after the level − VmRSS before any connection) ÷ connections, from /proc/<pid>/status; " +
      "marginal KB/conn = RSS growth since the previous level ÷ the connections added. " +
      `Each RSS (before and at each level) is read ${settleMs} ms after the level is counted, then every ` +
      `${RSS_LOOK_MS} ms until ${RSS_STILL_LOOKS} looks in a row stay within ${RSS_STILL_KB} KB ("still after ms": ` +
      `how long that took past the ${settleMs} ms; at most ${RSS_SETTLE_MAX_MS} ms), for both servers alike. ` +
      "Kernel socket buffers are not in RSS. Absolute figures; the Iris/baseline KB ratio compares the same ramp in the same run.",
    `Connections are logged in (v1 LOGIN) and idle; ${workers} load-generator process(es), one loopback destination ` +
      "(127.0.0.1). Beyond ~28k connections per destination address the ephemeral port range would need more " +
      "destination addresses (127.0.0.2, …) or source addresses.",
  );
  const series = [target, ...(baseline ? [baseline] : [])];
  const rows = (r: RampFigures) =>
    r.levels.map((l) => [
      `${r.label} ${int(l.connections)}`,
      l.rssKb === null ? "n/a" : num(l.rssKb / 1024, 1),
      l.perConnKb === null ? "n/a" : num(l.perConnKb, 2),
      l.marginalKb === null ? "n/a" : num(l.marginalKb, 2),
      l.stillAfterMs === null ? "n/a" : int(l.stillAfterMs),
      int(l.connectMs),
      int(l.connsPerSec),
      String(l.failed),
    ]);
  const figures: ConnectionsFigures = { params, target, baseline, perConnRatio, rounds };
  return {
    figures,
    charts: [
      {
        name: "memory",
        svg: lineChart({
          title: "Server RSS vs idle connections",
          xLabel: "connections",
          yLabel: "RSS (MiB)",
          series: series.map((r) => ({
            name: r.label,
            points: [
              [0, (r.rssBeforeKb ?? 0) / 1024] as [number, number],
              ...r.levels.map((l) => [l.connections, (l.rssKb ?? 0) / 1024] as [number, number]),
            ],
          })),
        }),
      },
      {
        name: "per-conn",
        svg: lineChart({
          title: "RSS growth per connection",
          xLabel: "connections",
          yLabel: "KB per connection",
          series: series.map((r) => ({
            name: r.label,
            points: r.levels.map((l) => [l.connections, l.perConnKb ?? 0] as [number, number]),
          })),
        }),
      },
    ],
    summary: [
      table(
        ["level", "RSS MiB", "KB/conn", "marginal KB/conn", "still after ms", "connect ms", "conns/s", "failed"],
        series.flatMap(rows),
      ),
      ...series.map((r) =>
        `${r.label}: RSS before ${r.rssBeforeKb === null ? "n/a" : num(r.rssBeforeKb / 1024, 1) + " MiB"}, ` +
        `after closing all ${r.rssAfterCloseKb === null ? "n/a" : num(r.rssAfterCloseKb / 1024, 1) + " MiB"}; ` +
        `total connect time ${int(r.totalConnectMs)} ms`
      ),
      ...(baseline
        ? [
          `Iris KB/conn ÷ baseline KB/conn per level: ${
            perConnRatio.map((r) => (r === null ? "n/a" : `${num(r, 2)}x`)).join(", ")
          }`,
        ]
        : []),
      ...roundLines(figures),
    ],
  };
};

/** With more than one round: each level's KB per connection over the rounds (the table shows the last). */
export function roundLines(f: ConnectionsFigures): string[] {
  if ((f.rounds?.length ?? 0) <= 1) return [];
  const spread = (who: "target" | "baseline") =>
    f.params.levels.map((c) => {
      const s = perConnSpread(f, c, who);
      return s === null ? `${int(c)} n/a` : `${int(c)} ${num(s.median, 2)} (${num(s.lo, 2)}–${num(s.hi, 2)})`;
    }).join(", ");
  const head = `KB/conn, median of ${f.rounds!.length} rounds (range); the table above is the last round`;
  return [
    `${head}:`,
    `  ${f.target.label}: ${spread("target")}`,
    ...(f.baseline ? [`  ${f.baseline.label}: ${spread("baseline")}`] : []),
  ];
}
