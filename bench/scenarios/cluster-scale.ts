// `cluster-scale [--nodes 10] [--conns USERS] [--rate R] [--duration S]`: the scale run. N Iris
// nodes + one nats-server on this machine hold USERS logged-in users in total (even over the
// nodes; every user's socket is on another node than its owner), then a steady paced cross-node
// load runs: connect time, RSS per node and per connection, msgs/s, p50/p99, CPU per message, and
// every message delivered exactly once (the ledger). Sizes are checked against the open-files
// hard limit first (a node and a load-generator process each hold < 20,000 sockets). Bounded: a
// deadline of its own, workers with a maximum lifetime, every process stopped by PID.

import { readdirSync } from "node:fs";
import { getNoFileLimit } from "../../tune/rlimit.ts";
import { rateLines } from "../lib/charts.ts";
import { type ClusterPhase, clusterPhaseProblems, openPlaced, pairsPhase, placePairs } from "../lib/cluster-load.ts";
import { type ClusterRun, rssOf, startCluster } from "../lib/cluster-nodes.ts";
import { explainMissing } from "../lib/cluster-diag.ts";
import { bounded, collectClientProblems, type Ctx, type Scenario, sleep } from "../lib/context.ts";
import { type FdPlan, planFds } from "../lib/fd-plan.ts";
import { int, ms, num, table } from "../lib/format.ts";
import { LoadGen } from "../lib/loadgen.ts";
import { metric, tryScrape } from "../lib/prom.ts";

/** The whole run stops by itself after this, whatever hangs. */
const DEADLINE_MS = 14 * 60_000;
/**
 * Login attempts in flight over all load-generator processes. 12 processes × 100 starved the
 * shared 2 cores (load average 33) until logins took over a minute; at 12 × 25 and 12 × 10 the
 * nodes starved past 143k / 84k users (their own heartbeats went unstored, so each cut itself off
 * and closed its clients); 6 × 10 held 100k on 10 nodes. The total is what matters, not per process.
 */
const CONNECT_IN_FLIGHT = 60;
/** One login (upgrade + LOGIN_OK) may take this long on the loaded machine. */
const LOGIN_TIMEOUT_MS = 30_000;

export interface NodeFigures {
  id: string;
  conns: number | null;
  rssIdleKb: number | null;
  rssConnectedKb: number | null;
  rssAfterLoadKb: number | null;
  kbPerConn: number | null;
  fds: number | null;
  /** Upgrades the node answered 503 (not ready, memory, capacity) and its NATS reconnects, whole run. */
  rejectedUpgrades: number | null;
  natsReconnects: number | null;
}

export interface ScaleFigures {
  plan: FdPlan & { hardLimit: number; nodeIdleFds: number; nodeMaxConns: number };
  rate: number;
  connect: { ms: number; opened: number; failed: number; firstAttemptFailed: number; perSec: number };
  nodes: NodeFigures[];
  natsRssKb: number | null;
  totals: { rssKb: number; kbPerConn: number | null };
  load: ClusterPhase;
  monitor: Monitor;
}

function fdCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Counters of each node's /metrics (null when it does not answer). */
async function counters(c: ClusterRun, names: string[]): Promise<(number | null)[][]> {
  return await Promise.all(c.nodes.map(async (n) => {
    const m = await tryScrape(n.http);
    return names.map((k) => (m ? metric(m, k) : null));
  }));
}

/** What the nodes reported during the run, sampled every MONITOR_MS. */
export interface Monitor {
  samples: number;
  /** Fewest members any node saw up (a node seen down means re-placement churn). */
  minNodesUp: number | null;
  /** Samples in which some node did not answer /metrics within 2 s. */
  silentSamples: number;
  /** Most connections the nodes held together in one sample. */
  peakConns: number;
}

const MONITOR_MS = 15_000;

/** Samples every node's connections, 503s and members up; logs one line per sample. */
function monitor(ctx: Ctx, c: ClusterRun): { stop(): Monitor } {
  const m: Monitor = { samples: 0, minNodesUp: null, silentSamples: 0, peakConns: 0 };
  let busy = false;
  const t0 = performance.now();
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    const k = await counters(c, ["iris_connections", "iris_rejected_upgrades_total", "iris_cluster_nodes_up"]);
    busy = false;
    m.samples++;
    if (k.some((x) => x[0] === null)) m.silentSamples++;
    const up = k.map((x) => x[2]).filter((x): x is number => x !== null);
    if (up.length) m.minNodesUp = Math.min(m.minNodesUp ?? Infinity, ...up);
    const sum = (i: number) => k.reduce((n, x) => n + (x[i] ?? 0), 0);
    m.peakConns = Math.max(m.peakConns, sum(0));
    ctx.log(
      `t+${Math.round((performance.now() - t0) / 1000)} s: nodes hold ${int(sum(0))} connections, ` +
        `503s ${sum(1)}, members up per node ${k.map((x) => x[2] ?? "?").join(",")}`,
    );
  }, MONITOR_MS);
  return {
    stop: () => (clearInterval(timer), m),
  };
}

/** Waits (bounded) until every node reports its share of connections; returns each count. */
async function serverConns(c: ClusterRun, want: number[]): Promise<(number | null)[]> {
  const until = performance.now() + 30_000;
  for (;;) {
    const got = await Promise.all(c.nodes.map(async (n) => {
      const m = await tryScrape(n.http);
      return m?.has("iris_connections") ? metric(m, "iris_connections") : null;
    }));
    if (got.every((g, i) => g !== null && g >= want[i]!) || performance.now() > until) return got;
    await sleep(500);
  }
}

function scaleParams(ctx: Ctx) {
  const a = ctx.args;
  const nodes = a.nodes ?? (a.smoke ? 3 : 10);
  return {
    nodes,
    shards: a.shards?.[0] ?? 1,
    users: a.conns ?? (a.smoke ? 60 : nodes * 19_000),
    rate: a.rate ?? (a.smoke ? 100 : 1000),
    measureMs: (a.duration ?? (a.smoke ? 2 : 30)) * 1000,
  };
}

async function plan(ctx: Ctx, c: ClusterRun, users: number): Promise<ScaleFigures["plan"]> {
  const hardLimit = getNoFileLimit()?.hard ?? Infinity;
  const nodeIdleFds = Math.max(...c.nodes.map((n) => fdCount(n.pid) ?? 0));
  const nodeMaxConns = Math.min(...c.nodes.map((n) => n.maxConns ?? Infinity));
  const p = planFds(users, c.nodes.length, hardLimit, nodeIdleFds, nodeMaxConns);
  ctx.log(
    `fd plan: ${int(p.perNode)} sockets per node (node idle fds ${nodeIdleFds}, node cap ${nodeMaxConns}, ` +
      `hard limit ${hardLimit}); ${p.loadgenProcesses} load-generator processes of ≤ ${int(p.perLoadgen)} sockets`,
  );
  if (p.problems.length) throw new Error(`cluster-scale does not fit this machine:\n  ${p.problems.join("\n  ")}`);
  return { ...p, hardLimit, nodeIdleFds, nodeMaxConns };
}

async function scaleRun(ctx: Ctx, c: ClusterRun, s: ReturnType<typeof scaleParams>) {
  const fp = await plan(ctx, c, s.users);
  const rssIdle = c.rssKb();
  const lg = await LoadGen.spawn(fp.loadgenProcesses, DEADLINE_MS);
  const mon = monitor(ctx, c);
  try {
    const pairs = placePairs("cross", Math.floor(s.users / 2), s.nodes, lg.size, c.ownerIndex, "u");
    const users = pairs.flatMap((p) => [p.a, p.b]);
    let last = 0;
    const o = await openPlaced(lg, users, c.nodes.map((n) => n.url), ctx.args.proto, ctx.args.payload, {
      concurrency: Math.max(2, Math.round(CONNECT_IN_FLIGHT / lg.size)),
      timeoutMs: LOGIN_TIMEOUT_MS,
      onProgress: (n) => n - last >= 20_000 && (ctx.log(`${int(last = n)} users logged in`), 0),
    });
    ctx.log(`${int(o.opened)} of ${int(users.length)} users logged in in ${int(o.ms)} ms (${o.failed} failed)`);
    for (const e of o.errors.slice(0, 10)) ctx.problems.push(`connect: ${e}`);
    const perNode = c.nodes.map((_, i) => users.filter((u) => u.node === i && u.conn >= 0).length);
    const conns = await serverConns(c, perNode);
    await sleep(2000); // allocations settle before RSS is read
    const rssConnected = c.rssKb();
    const fds = c.nodes.map((n) => fdCount(n.pid));
    ctx.log(`steady cross-node load: ${s.rate} msgs/s for ${s.measureMs / 1000} s`);
    const load = await pairsPhase(lg, "steady cross-node", pairs, { mode: "paced", rate: s.rate }, {
      warmupMs: 2000,
      measureMs: s.measureMs,
      drainMs: 30_000,
      settleMs: 3000,
      payload: ctx.args.payload,
    }, c.serverPids());
    ctx.problems.push(...clusterPhaseProblems(load.name, load));
    if (load.ledger.missing > load.errors) ctx.problems.push(...await explainMissing(c));
    await collectClientProblems(ctx, lg, "cluster-scale");
    const rssAfter = c.rssKb();
    const cnt = await counters(c, ["iris_rejected_upgrades_total", "iris_cluster_nats_reconnects_total"]);
    const nodes: NodeFigures[] = c.ids.map((id, i) => {
      const grown = rssConnected[i] !== null && rssIdle[i] !== null ? rssConnected[i]! - rssIdle[i]! : null;
      return {
        id,
        conns: conns[i] ?? null,
        rssIdleKb: rssIdle[i] ?? null,
        rssConnectedKb: rssConnected[i] ?? null,
        rssAfterLoadKb: rssAfter[i] ?? null,
        kbPerConn: grown !== null && perNode[i]! > 0 ? Math.round((grown / perNode[i]!) * 100) / 100 : null,
        fds: fds[i] ?? null,
        rejectedUpgrades: cnt[i]![0] ?? null,
        natsReconnects: cnt[i]![1] ?? null,
      };
    });
    return { fp, o, nodes, load, mon: mon.stop() };
  } finally {
    mon.stop();
    await lg.close(); // the workers exit: the kernel closes their sockets
  }
}

export const clusterScale: Scenario<ScaleFigures> = async (ctx) => {
  const s = scaleParams(ctx);
  Object.assign(ctx.params, s);
  const c = await startCluster(ctx, s.nodes, s.shards);
  let r: Awaited<ReturnType<typeof scaleRun>>;
  let natsRssKb: number | null;
  try {
    r = await bounded("cluster-scale", DEADLINE_MS, () => scaleRun(ctx, c, s));
    natsRssKb = rssOf(c.natsPid());
  } finally {
    await c.stop();
  }
  const rssKb = r.nodes.reduce((n, x) => n + (x.rssConnectedKb ?? 0), 0);
  const grown = r.nodes.reduce((n, x) => n + ((x.rssConnectedKb ?? 0) - (x.rssIdleKb ?? 0)), 0);
  const f: ScaleFigures = {
    plan: r.fp,
    rate: s.rate,
    connect: {
      ms: Math.round(r.o.ms),
      opened: r.o.opened,
      failed: r.o.failed,
      firstAttemptFailed: r.o.firstAttemptFailed,
      perSec: Math.round(r.o.opened / (r.o.ms / 1000)),
    },
    nodes: r.nodes,
    natsRssKb,
    totals: { rssKb, kbPerConn: r.o.opened ? Math.round((grown / r.o.opened) * 100) / 100 : null },
    load: r.load,
    monitor: r.mon,
  };
  if (r.mon.minNodesUp !== null && r.mon.minNodesUp < s.nodes) {
    ctx.problems.push(
      `some node saw only ${r.mon.minNodesUp} of ${s.nodes} members up during the run (re-placement churn)`,
    );
  }
  if (r.o.failed) ctx.problems.push(`${r.o.failed} of ${r.fp.users} users could not log in (after one retry)`);
  ctx.notes.push(
    `Layout: pairs of users with the same owner node X, their sockets on X+1 and X+2 (mod ${s.nodes}): every message crosses NATS ` +
      "twice (sender node → owner → recipient node). Users are spread evenly; every node holds about the same number of sockets.",
    `Load: open loop at ${s.rate} msgs/s in total, round-robin over every user of each load-generator process; ` +
      "latency = send → delivery (both ends of a pair in one process); the ledger checks every message id sent: missing and duplicated.",
    "KB/conn = (node VmRSS once every user is logged in − VmRSS idle) ÷ its sockets. Kernel socket buffers are not in RSS.",
    "Loopback only: one destination address; each node's port takes < 28,000 ephemeral source ports (the range), so no extra 127.0.0.x source addresses were needed.",
  );
  return {
    figures: f,
    charts: [{
      name: "rate",
      svg: rateLines("Delivered messages per second (steady load)", [{
        name: "cross-node",
        perSecond: r.load.perSecond,
      }]),
    }],
    summary: scaleSummary(f),
  };
};

function scaleSummary(f: ScaleFigures): string[] {
  const mib = (kb: number | null) => (kb === null ? "n/a" : num(kb / 1024, 1));
  const l = f.load;
  return [
    `${f.plan.nodes} nodes + 1 nats-server; ${int(f.connect.opened)} of ${int(f.plan.users)} users logged in ` +
    `(${f.connect.firstAttemptFailed} failed at first, ${f.connect.failed} after one retry) in ${
      num(f.connect.ms / 1000, 1)
    } s = ${int(f.connect.perSec)} logins/s; ` +
    `${f.plan.loadgenProcesses} load-generator processes of ≤ ${int(f.plan.perLoadgen)} sockets`,
    "",
    table(
      [
        "node",
        "conns",
        "RSS idle MiB",
        "RSS connected MiB",
        "RSS after load MiB",
        "KB/conn",
        "fds",
        "503s",
        "NATS reconn",
      ],
      f.nodes.map((
        n,
      ) => [
        n.id,
        n.conns === null ? "n/a" : int(n.conns),
        mib(n.rssIdleKb),
        mib(n.rssConnectedKb),
        mib(n.rssAfterLoadKb),
        n.kbPerConn === null ? "n/a" : num(n.kbPerConn, 2),
        n.fds === null ? "n/a" : int(n.fds),
      ]),
    ),
    `all nodes: RSS ${mib(f.totals.rssKb)} MiB connected, ${
      f.totals.kbPerConn === null ? "n/a" : num(f.totals.kbPerConn, 2)
    } KB per connection; nats-server RSS ${mib(f.natsRssKb)} MiB`,
    "",
    `steady cross-node load (target ${int(f.rate)} msgs/s): ${int(l.msgsPerSec)} msgs/s delivered, p50 ${
      ms(l.latency.p50Ms)
    }, ` +
    `p99 ${ms(l.latency.p99Ms)}, max ${ms(l.latency.maxMs)}; server CPU ${
      l.serverUsPerMsg === null ? "n/a" : num(l.serverUsPerMsg, 0)
    } µs/msg ` +
    `(${l.serverPct ?? "n/a"}% of a core), load generator ${l.loadgenPct}%, other processes ${l.otherPct}%`,
    `members up, lowest any node saw: ${f.monitor.minNodesUp ?? "n/a"} of ${f.plan.nodes} ` +
    `(${f.monitor.samples} samples every ${MONITOR_MS / 1000} s, ${f.monitor.silentSamples} with a node silent); ` +
    `most connections held at once (sampled): ${int(f.monitor.peakConns)}`,
    `exactly once: ${int(l.ledger.ids)} messages sent, ${l.errors} refused with an ERROR frame (never accepted), ` +
    `${l.ledger.missing - l.errors} neither refused nor delivered, ${l.ledger.duplicated} delivered more than once`,
  ];
}
