// `offline-flood` (the seed's "Disk Crusher"): many senders flood many recipients who never log
// in, so every message goes to the store; stored msgs/s is what the server acks "stored". A small
// online pair runs at a fixed rate throughout, first alone (quiet) and then during the flood, to
// show what the flood does to live traffic.
//
// The yardstick (unless --no-baseline): the same flood, per login kind, against the bare relay run
// with --ack-offline, which answers each send "stored" at once and stores nothing. Its rows/s is
// what this load generator and one Bun WebSocket server reach on this machine when a server does
// no work for a message at all: the ceiling any server's flood figure sits under here.

import { latencyBars, rateLines } from "../lib/charts.ts";
import type { Ctx, Scenario, ScenarioOutput } from "../lib/context.ts";
import { collectClientProblems } from "../lib/context.ts";
import { Histogram, type LatencySummary } from "../lib/histogram.ts";
import { int, latencyLine, num } from "../lib/format.ts";
import { chunk, LoadGen } from "../lib/loadgen.ts";
import type { GroupSpec } from "../lib/loadgen-protocol.ts";
import { disturbance, type Merged, pct, runGroups } from "../lib/phases.ts";
import { metric, type Samples, tryScrape } from "../lib/prom.ts";
import { startTarget } from "../lib/targets.ts";
import { type Login, loginsOf } from "./throughput.ts";

/** Who answered the flood: Iris, or the relay that stores nothing (bench/baseline-relay.ts --ack-offline). */
export type FloodServer = "iris" | "relay";

/** One flood: its senders and the pair logged in plain (no login flag) or bundled (the SDK's default). */
export interface FloodRun {
  login: Login;
  server: FloodServer;
  params: {
    floodSenders: number;
    recipients: number;
    window: number;
    /** --flood-rate: the flood paced at this many msgs/s in total (null: a window per sender). */
    floodRate: number | null;
    pairRate: number;
    payload: number;
    quietMs: number;
    floodMs: number;
    workers: number;
  };
  flood: {
    sent: number;
    stored: number;
    errors: number;
    unanswered: number;
    storedPerSec: number;
    /** Every stored ack, from the first send to the last ack (wholeFlood). */
    whole: WholeFlood;
    /** send → "stored" ack. */
    ackLatency: LatencySummary;
    perSecond: number[];
    serverCpuPct: number | null;
    /** Other processes on the machine during the flood, % of a core. */
    otherCpuPct: number;
    serverUsPerMsg: number | null;
  };
  pairQuiet: PairFigures;
  pairDuringFlood: PairFigures;
  store: { rowsAppended: number | null; commits: number | null; avgCommitMs: number | null; inboxRows: number | null };
}

/** Every flood of the run, plain first; each on a server of its own, started fresh. */
export interface FloodFigures {
  /** Iris's floods. */
  runs: FloodRun[];
  /** The same floods against the relay that stores nothing; empty with --no-baseline. */
  relay: FloodRun[];
}

export interface PairFigures {
  sent: number;
  delivered: number;
  msgsPerSec: number;
  latency: LatencySummary;
  perSecond: number[];
}

/** Stored acks from the flood's first send to its last ack: how long they took, and their rate. */
export interface WholeFlood {
  seconds: number;
  storedPerSec: number;
}

/**
 * The flood's stored acks over the whole run, from the acks of each second since the first send.
 * A flood paced past what a server stores (--flood-rate) leaves it storing after the measured
 * window; storedPerSec, counted inside the window, does not see that part. Pure.
 */
export function wholeFlood(ackedPerSecond: readonly (number | undefined)[]): WholeFlood {
  let total = 0;
  let last = -1;
  for (let i = 0; i < ackedPerSecond.length; i++) {
    const n = ackedPerSecond[i] ?? 0;
    total += n;
    if (n > 0) last = i;
  }
  const seconds = last + 1;
  return { seconds, storedPerSec: seconds > 0 ? Math.round(total / seconds) : 0 };
}

function pairFigures(g: Merged | undefined): PairFigures {
  if (!g) return { sent: 0, delivered: 0, msgsPerSec: 0, latency: new Histogram().summary(), perSecond: [] };
  return {
    sent: g.sent,
    delivered: g.delivered,
    msgsPerSec: Math.round((g.measured.delivered * 1000) / Math.max(1, g.measured.ms)),
    latency: g.hist.summary(),
    perSecond: g.perSec.delivered,
  };
}

function delta(a: Samples | null, b: Samples | null, name: string): number | null {
  return a && b ? metric(b, name) - metric(a, name) : null;
}

/**
 * The flood once per login kind asked for: plain v1 and bundled v1 under --both-logins (as `all`
 * runs it), else the one --bundles says.
 */
export const offlineFlood: Scenario<FloodFigures> = async (ctx) => {
  const runs: FloodRun[] = [];
  const relay: FloodRun[] = [];
  const charts: ScenarioOutput<FloodFigures>["charts"] = [];
  const summary: string[] = [];
  for (const login of loginsOf(ctx.args, false)) {
    const one = await floodOnce(ctx, login, "iris");
    runs.push(one.figures);
    // Plain keeps the charts' old names (their files under bench/results/latest).
    charts.push(...one.charts.map((c) => (login === "plain" ? c : { ...c, name: `${login}-${c.name}` })));
    summary.push(...one.summary.map((l, i) => (i === 0 ? `[${login} v1] ${l}` : l)));
    if (!ctx.args.baseline) continue;
    const floor = await floodOnce(ctx, login, "relay");
    relay.push(floor.figures);
    summary.push(...floor.summary.map((l, i) => (i === 0 ? `[${login} v1, relay storing nothing] ${l}` : l)));
    summary.push(`[${login} v1] Iris / relay: ${ratioLine(one.figures, floor.figures)}`);
  }
  const params = runs[0]!.params;
  ctx.notes.push(
    `Flood: ${params.floodSenders} senders, ${
      params.floodRate
        ? `paced at ${params.floodRate} msgs/s in total (open loop)`
        : `each with at most ${params.window} sends awaiting the server's "stored" ack`
    }, round-robin over their share of ${params.recipients} users who never log in.`,
    `Pair: two online users paced at ${params.pairRate} msgs/s in total, alone (quiet) and during the flood. Absolute figures.`,
    'stored msgs/s counts sends the server acked "stored" (committed to SQLite) inside the measured window.',
    "plain v1 logs in without flags; bundled v1 asks for bundles (docs/PROTOCOL.md), as the SDK does.",
  );
  if (relay.length > 0) {
    ctx.notes.push(
      'relay storing nothing: bench/baseline-relay.ts --ack-offline answers each send "stored" at once; ' +
        "its rows/s is this machine's ceiling for the flood with this load generator.",
    );
  }
  return { figures: { runs, relay }, charts, summary };
};

/** Iris's flood against the relay's in one line: rows/s as a ratio, and the pair's p99 in both. */
export function ratioLine(iris: FloodRun, relay: FloodRun): string {
  const rows = relay.flood.storedPerSec > 0 ? iris.flood.storedPerSec / relay.flood.storedPerSec : 0;
  return `${num(rows, 2)}x the relay's stored rows/s (${int(iris.flood.storedPerSec)} against ` +
    `${int(relay.flood.storedPerSec)}); pair p99 during the flood ${num(iris.pairDuringFlood.latency.p99Ms, 2)} ` +
    `against ${num(relay.pairDuringFlood.latency.p99Ms, 2)} ms`;
}

async function floodOnce(ctx: Ctx, login: Login, server: FloodServer): Promise<ScenarioOutput<FloodRun>> {
  const a = ctx.args;
  const bundles = login === "bundled";
  const workers = a.workers ?? 2;
  const floodSenders = a.conns ?? (a.smoke ? 4 : 50);
  const recipients = a.smoke ? 100 : 10_000;
  const window = a.window ?? 32;
  const pairRate = a.rate ?? (a.smoke ? 100 : 200);
  const quietMs = (a.smoke ? 1 : 3) * 1000;
  const floodMs = (a.duration ?? (a.smoke ? 2 : 10)) * 1000;
  const floodRate = a.floodRate;
  const params = {
    floodSenders,
    recipients,
    window,
    floodRate,
    pairRate,
    payload: a.payload,
    quietMs,
    floodMs,
    workers,
  };
  Object.assign(ctx.params, params, { logins: loginsOf(a, false) });
  const lg = await LoadGen.spawn(workers);
  const t = server === "iris"
    ? await startTarget(ctx, "iris", a.shards?.[0] ?? null)
    : await startTarget(ctx, "baseline", null, ["--ack-offline"]);
  // The relay has no metrics endpoint.
  const scrape = () => (server === "iris" ? tryScrape(t.http) : Promise.resolve(null));
  try {
    // Worker 0 holds the online pair first (connections 0 and 1), then its flood senders. With 3
    // or more workers it holds the pair alone: its timings then do not wait behind the flood's own
    // sends and acks in the same load generator thread (a part of the pair's p99 at 2 workers).
    const pair = ["probe-a", "probe-b"];
    const senderNames = Array.from({ length: floodSenders }, (_, i) => `flood-${i}`);
    const perWorker = workers >= 3 ? [[], ...chunk(senderNames, workers - 1)] : chunk(senderNames, workers);
    const targets = Array.from({ length: recipients }, (_, i) => `offline-${i}`);
    const slices = chunk(targets, floodSenders);
    for (let w = 0; w < workers; w++) {
      const users = w === 0 ? [...pair, ...perWorker[w]!] : perWorker[w]!;
      if (users.length === 0) continue;
      const o = await lg.open(w, {
        target: t.target,
        proto: "v1",
        users,
        concurrency: 64,
        timeoutMs: 20_000,
        payload: a.payload,
        bundles,
      });
      if (o.failed) throw new Error(`flood connections failed: ${o.errors.join("; ")}`);
    }
    const pairGroup: GroupSpec = {
      name: "pair",
      senders: [{ c: 0, to: [pair[1]!] }, { c: 1, to: [pair[0]!] }],
      mode: { kind: "pace", rate: pairRate },
      quota: null,
    };
    ctx.log(`pair alone at ${pairRate} msgs/s for ${quietMs / 1000} s`);
    const quiet = await runGroups(lg, (w) => (w === 0 ? [pairGroup] : []), {
      warmupMs: 500,
      measureMs: quietMs,
      drainMs: 5000,
      payload: a.payload,
    }, t.pid);
    const m0 = await scrape();
    const floodFor = (w: number): GroupSpec => {
      const base = w === 0 ? 2 : 0;
      const first = perWorker.slice(0, w).reduce((n, p) => n + p.length, 0);
      return {
        name: "flood",
        senders: perWorker[w]!.map((_, i) => ({ c: base + i, to: slices[first + i]! })),
        // Paced: this worker's share of --flood-rate, by its share of the senders.
        mode: a.floodRate
          ? { kind: "pace", rate: (a.floodRate * perWorker[w]!.length) / floodSenders, ackOn: "sent" }
          : { kind: "window", window, ackOn: "sent" },
        quota: null,
      };
    };
    ctx.log(
      `flooding ${recipients} offline users (${login} v1, ${t.label}) from ${floodSenders} senders for ${
        floodMs / 1000
      } s`,
    );
    const flood = await runGroups(
      lg,
      (w) => [...(w === 0 ? [pairGroup] : []), ...(perWorker[w]!.length ? [floodFor(w)] : [])],
      { warmupMs: 1000, measureMs: floodMs, drainMs: 30_000, payload: a.payload },
      t.pid,
    );
    const m1 = await scrape();
    await collectClientProblems(ctx, lg, "offline-flood");
    const f = flood.groups.get("flood")!;
    const pq = pairFigures(quiet.groups.get("pair"));
    const pf = pairFigures(flood.groups.get("pair"));
    const unanswered = f.inflightLeft;
    if (f.acks.stored + f.errors + unanswered !== f.sent || unanswered > 0) {
      ctx.problems.push(
        `flood (${login}, ${server}): sent ${f.sent}, acked stored ${f.acks.stored}, errors ${f.errors}, unanswered ${unanswered}`,
      );
    }
    if (f.acks.delivered > 0) {
      ctx.problems.push(
        `flood (${login}, ${server}): ${f.acks.delivered} sends to never-online users were acked "delivered"`,
      );
    }
    for (const [label, p] of [["quiet", pq], ["during flood", pf]] as const) {
      if (p.sent !== p.delivered) {
        ctx.problems.push(`pair ${label} (${login}, ${server}): sent ${p.sent}, delivered ${p.delivered}`);
      }
    }
    for (
      const [label, c] of [[`offline-flood quiet (${login}, ${server})`, quiet.cpu], [
        `offline-flood flood (${login}, ${server})`,
        flood.cpu,
      ]] as const
    ) {
      const d = disturbance(label, pct(c.otherUs, c.wallMs));
      if (d) ctx.problems.push(d);
    }
    const commits = delta(m0, m1, "iris_store_commits_total");
    const commitMs = delta(m0, m1, "iris_store_commit_ms_total");
    const figures: FloodRun = {
      login,
      server,
      params,
      flood: {
        sent: f.sent,
        stored: f.acks.stored,
        errors: f.errors,
        unanswered,
        storedPerSec: Math.round((f.measured.acked * 1000) / Math.max(1, f.measured.ms)),
        whole: wholeFlood(f.perSec.acked),
        ackLatency: f.hist.summary(),
        perSecond: f.perSec.acked,
        serverCpuPct: flood.cpu.serverUs !== null ? pct(flood.cpu.serverUs, flood.cpu.wallMs) : null,
        otherCpuPct: pct(flood.cpu.otherUs, flood.cpu.wallMs),
        serverUsPerMsg: flood.cpu.serverUs !== null && f.measured.acked > 0
          ? Math.round((flood.cpu.serverUs / f.measured.acked) * 100) / 100
          : null,
      },
      pairQuiet: pq,
      pairDuringFlood: pf,
      store: {
        rowsAppended: delta(m0, m1, "iris_store_rows_appended_total"),
        commits,
        avgCommitMs: commits && commitMs !== null ? Math.round((commitMs / commits) * 100) / 100 : null,
        inboxRows: m1 ? metric(m1, "iris_store_inbox_rows") : null,
      },
    };
    return {
      figures,
      charts: [
        {
          name: "latency",
          svg: latencyBars("Online pair latency: quiet vs during the flood", [
            { name: "pair quiet", latency: pq.latency },
            { name: "pair during flood", latency: pf.latency },
            { name: "flood send → stored ack", latency: figures.flood.ackLatency },
          ]),
        },
        {
          name: "throughput",
          svg: rateLines("Offline flood: stored acks per second", [{
            name: "stored",
            perSecond: figures.flood.perSecond,
          }], "acks / s"),
        },
      ],
      summary: [
        `flood: ${int(figures.flood.storedPerSec)} stored msgs/s (sent ${int(f.sent)}, stored ${int(f.acks.stored)}, ` +
        `errors ${f.errors}); server CPU ${num(figures.flood.serverCpuPct ?? 0, 0)}% of a core, ` +
        `${num(figures.flood.serverUsPerMsg ?? 0, 1)} µs/msg`,
        `       send → stored ack: ${latencyLine(figures.flood.ackLatency)}`,
        `       every stored ack within ${figures.flood.whole.seconds} s of the first send: ` +
        `${int(figures.flood.whole.storedPerSec)} stored msgs/s over the whole flood`,
        `store: ${figures.store.rowsAppended ?? "n/a"} rows appended in ${figures.store.commits ?? "n/a"} commits ` +
        `(avg ${figures.store.avgCommitMs ?? "n/a"} ms per commit); inbox rows at the end ${
          figures.store.inboxRows ?? "n/a"
        }`,
        `pair quiet:        ${latencyLine(pq.latency)} (${int(pq.delivered)}/${int(pq.sent)} delivered)`,
        `pair during flood: ${latencyLine(pf.latency)} (${int(pf.delivered)}/${int(pf.sent)} delivered)`,
      ],
    };
  } finally {
    await lg.close();
    await t.stop();
  }
}
