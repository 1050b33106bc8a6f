// `cluster [--nodes N]`: N Iris nodes (default 3) + one nats-server (JetStream, file storage in a
// temp dir) on this machine, in one run and side by side:
//   - same-node pairs (both sockets on the pair's owner node: no network hop) vs cross-node pairs
//     (sockets on two other nodes: sender node → owner → recipient node over NATS): msgs/s at
//     saturation, p50/p99 paced at one common rate, CPU per message of all nodes + nats-server,
//     every message checked delivered exactly once (the ledger);
//   - per-node RSS idle and under load;
//   - the store rate to offline recipients: JetStream through the cluster vs SQLite on one node;
//   - failover: a node SIGKILLed, its users (SDK with every node's URL) receiving again elsewhere.

import { latencyBars, rateLines } from "../lib/charts.ts";
import { type FailoverFigures, measureFailover } from "../lib/cluster-failover.ts";
import {
  type ClusterPhase,
  clusterPhaseProblems,
  openPlaced,
  type Pair,
  pairsPhase,
  type PhaseTiming,
  placePairs,
} from "../lib/cluster-load.ts";
import { type ClusterRun, rssOf, startCluster } from "../lib/cluster-nodes.ts";
import { collectClientProblems, type Ctx, type Scenario } from "../lib/context.ts";
import { LoadGen } from "../lib/loadgen.ts";
import { startTarget } from "../lib/targets.ts";
import { type StoreRate, storeRate } from "../lib/store-rate.ts";
import { clusterSummary } from "./cluster-report.ts";

export interface ClusterParams {
  nodes: number;
  shards: number;
  /** Connections per kind (same, cross): pairs = conns / 2. */
  conns: number;
  window: number;
  workers: number;
  timing: PhaseTiming;
  store: { senders: number; window: number; perSender: number; measureMs: number };
  failover: { perNode: number; gapMs: number; beforeKillMs: number; afterKillMs: number; settleTimeoutMs: number };
}

export interface ClusterFigures {
  params: ClusterParams;
  connectMs: number;
  saturation: { same: ClusterPhase; cross: ClusterPhase };
  paced: { same: ClusterPhase; cross: ClusterPhase };
  /** cross ÷ same, same run. */
  ratios: { throughput: number | null; cpuPerMsg: number | null; pacedP50: number | null; pacedP99: number | null };
  rss: { idleKb: (number | null)[]; loadedKb: (number | null)[]; natsKb: number | null };
  store: { jetstream: StoreRate; sqlite: StoreRate; ratio: number | null };
  failover: FailoverFigures;
}

export function clusterParams(ctx: Ctx): ClusterParams {
  const a = ctx.args;
  const smoke = a.smoke;
  return {
    nodes: a.nodes ?? 3,
    shards: a.shards?.[0] ?? 1,
    conns: a.conns ?? (smoke ? 12 : 200),
    window: a.window ?? 8,
    workers: a.workers ?? (smoke ? 1 : 2),
    timing: {
      warmupMs: smoke ? 300 : 1000,
      measureMs: (a.duration ?? (smoke ? 1 : 5)) * 1000,
      drainMs: smoke ? 5000 : 10_000,
      settleMs: smoke ? 300 : 1000,
      payload: a.payload,
    },
    store: { senders: smoke ? 6 : 60, window: 8, perSender: 4, measureMs: (a.duration ?? (smoke ? 1 : 4)) * 1000 },
    failover: {
      perNode: smoke ? 2 : 4,
      gapMs: 20,
      beforeKillMs: smoke ? 500 : 1500,
      afterKillMs: smoke ? 5500 : 7000,
      settleTimeoutMs: 30_000,
    },
  };
}

const ratio = (a: number | null, b: number | null) =>
  a !== null && b !== null && b > 0 ? Math.round((a / b) * 1000) / 1000 : null;

async function messagePhases(
  ctx: Ctx,
  lg: LoadGen,
  c: ClusterRun,
  p: ClusterParams,
  pairs: Record<"same" | "cross", Pair[]>,
) {
  const pids = c.serverPids();
  const run = async (
    kind: "same" | "cross",
    m: { mode: "saturate"; window: number } | { mode: "paced"; rate: number },
  ) => {
    const r = await pairsPhase(lg, `${kind}-node ${m.mode}`, pairs[kind], m, p.timing, pids);
    ctx.problems.push(...clusterPhaseProblems(r.name, r));
    ctx.log(`${r.name}: ${r.msgsPerSec} msgs/s, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms`);
    return r;
  };
  const saturation = {
    same: await run("same", { mode: "saturate", window: p.window }),
    cross: await run("cross", { mode: "saturate", window: p.window }),
  };
  // One rate for both, below the slower one's saturation: latency then compares equal load.
  const rate = ctx.args.rate ??
    Math.max(1, Math.round(Math.min(saturation.same.msgsPerSec, saturation.cross.msgsPerSec) / 2));
  const paced = {
    same: await run("same", { mode: "paced", rate }),
    cross: await run("cross", { mode: "paced", rate }),
  };
  return { saturation, paced };
}

/** Connection indices of the first `n` placed senders per worker (they are spread over nodes). */
function storeSenders(pairs: Pair[], workers: number, n: number): number[][] {
  const out: number[][] = Array.from({ length: workers }, () => []);
  const users = pairs.flatMap((x) => [x.a, x.b]).filter((u) => u.conn >= 0).slice(0, n);
  for (const u of users) out[u.worker]!.push(u.conn);
  return out;
}

async function sqliteStoreRate(ctx: Ctx, lg: LoadGen, p: ClusterParams): Promise<StoreRate> {
  const t = await startTarget(ctx, "iris", p.shards);
  try {
    const users = Array.from(
      { length: p.store.senders },
      (_, i) => ({ user: `sq-${i}`, node: 0, worker: i % lg.size, conn: -1 }),
    );
    const o = await openPlaced(lg, users, [(t.target as { url: string }).url], ctx.args.proto, ctx.args.payload, {
      concurrency: 64,
      timeoutMs: 20_000,
    });
    if (o.failed) throw new Error(`single node: ${o.failed} connections failed: ${o.errors.join("; ")}`);
    const senders: number[][] = Array.from({ length: lg.size }, () => []);
    for (const u of users) senders[u.worker]!.push(u.conn);
    return await storeRate(lg, `SQLite, 1 node shards=${p.shards}`, senders, {
      ...p.store,
      warmupMs: p.timing.warmupMs,
      payload: ctx.args.payload,
      prefix: "offline-sq",
    }, [t.pid!]);
  } finally {
    for (let w = 0; w < lg.size; w++) await lg.closeConns(w);
    await t.stop();
  }
}

async function onCluster(ctx: Ctx, lg: LoadGen, p: ClusterParams) {
  const c = await startCluster(ctx, p.nodes, p.shards);
  try {
    const idleKb = c.rssKb();
    const pairs = {
      same: placePairs("same", Math.floor(p.conns / 2), p.nodes, lg.size, c.ownerIndex),
      cross: placePairs("cross", Math.floor(p.conns / 2), p.nodes, lg.size, c.ownerIndex),
    };
    const users = [...pairs.same, ...pairs.cross].flatMap((x) => [x.a, x.b]);
    const o = await openPlaced(lg, users, c.nodes.map((n) => n.url), ctx.args.proto, ctx.args.payload, {
      concurrency: 64,
      timeoutMs: 20_000,
    });
    if (o.failed) throw new Error(`${o.failed} of ${users.length} connections failed: ${o.errors.join("; ")}`);
    ctx.log(`${o.opened} connections logged in over ${p.nodes} nodes in ${Math.round(o.ms)} ms`);
    const phases = await messagePhases(ctx, lg, c, p, pairs);
    const loadedKb = c.rssKb();
    const natsKb = rssOf(c.natsPid());
    const jetstream = await storeRate(
      lg,
      `JetStream R1, ${p.nodes} nodes`,
      storeSenders(pairs.cross, lg.size, p.store.senders),
      { ...p.store, warmupMs: p.timing.warmupMs, payload: ctx.args.payload, prefix: "offline-js" },
      c.serverPids(),
    );
    await collectClientProblems(ctx, lg, "cluster");
    for (let w = 0; w < lg.size; w++) await lg.closeConns(w);
    ctx.log(`failover: ${p.failover.perNode * p.nodes} SDK users, killing ${c.ids[0]}`);
    const failover = await measureFailover(c, p.failover);
    return { connectMs: o.ms, ...phases, rss: { idleKb, loadedKb, natsKb }, jetstream, failover };
  } finally {
    await c.stop();
  }
}

function failoverProblems(f: FailoverFigures): string[] {
  const out: string[] = [];
  if (f.unacked) out.push(`failover: ${f.unacked} of ${f.sends} sends were never acked`);
  if (f.missing) out.push(`failover: ${f.missing} acked messages never reached their recipient`, ...f.diagnosis);
  if (f.duplicatesToApp) out.push(`failover: ${f.duplicatesToApp} messages reached the application twice`);
  for (const v of f.victims) if (v.ms === null) out.push(`failover: ${v.user} never received again after the kill`);
  return out;
}

export const cluster: Scenario<ClusterFigures> = async (ctx) => {
  const p = clusterParams(ctx);
  if (p.nodes < 2) throw new Error("cluster needs --nodes 2 or more (cross-node pairs need two other nodes' sockets)");
  Object.assign(ctx.params, p);
  const lg = await LoadGen.spawn(p.workers);
  let r: Awaited<ReturnType<typeof onCluster>>;
  let sqlite: StoreRate;
  try {
    r = await onCluster(ctx, lg, p);
    sqlite = await sqliteStoreRate(ctx, lg, p);
  } finally {
    await lg.close();
  }
  ctx.problems.push(...failoverProblems(r.failover));
  for (const s of [r.jetstream, sqlite]) if (s.errors) ctx.problems.push(`store ${s.label}: ${s.errors} sends refused`);
  const f: ClusterFigures = {
    params: p,
    connectMs: Math.round(r.connectMs),
    saturation: r.saturation,
    paced: r.paced,
    ratios: {
      throughput: ratio(r.saturation.cross.msgsPerSec, r.saturation.same.msgsPerSec),
      cpuPerMsg: ratio(r.saturation.cross.serverUsPerMsg, r.saturation.same.serverUsPerMsg),
      pacedP50: ratio(r.paced.cross.latency.p50Ms, r.paced.same.latency.p50Ms),
      pacedP99: ratio(r.paced.cross.latency.p99Ms, r.paced.same.latency.p99Ms),
    },
    rss: r.rss,
    store: { jetstream: r.jetstream, sqlite, ratio: ratio(r.jetstream.storedPerSec, sqlite.storedPerSec) },
    failover: r.failover,
  };
  ctx.notes.push(...clusterNotes(p));
  const all = [f.saturation.same, f.saturation.cross, f.paced.same, f.paced.cross];
  return {
    figures: f,
    charts: [
      {
        name: "latency",
        svg: latencyBars(
          `Cluster, ${p.nodes} nodes: same-node vs cross-node`,
          all.map((x) => ({ name: x.name, latency: x.latency })),
        ),
      },
      {
        name: "throughput",
        svg: rateLines("Delivered messages per second", all.map((x) => ({ name: x.name, perSecond: x.perSecond }))),
      },
    ],
    summary: clusterSummary(f),
  };
};

function clusterNotes(p: ClusterParams): string[] {
  return [
    `Same-node pair: both users owned by node X (the nodes' own placement function) and connected to X: no network hop. ` +
    `Cross-node pair: both owned by X, connected to X+1 and X+2: a message crosses NATS twice (sender node → owner → recipient node) and its ack once.`,
    `Saturation: closed loop, ${p.window} messages in flight per sender (a slot frees on delivery). Paced: open loop, same rate for both kinds (50% of the slower saturation unless --rate).`,
    "Server CPU per message = CPU (user+system) of every Iris node and nats-server over the measured window ÷ messages delivered in it.",
    "Exactly once: every message id a load-generator worker sent is counted at its recipient (same worker). refused = sends answered with an ERROR frame (e.g. SERVER_BUSY: never accepted, the raw load generator does not retry); lost = neither refused nor delivered; dup = delivered twice.",
    `Store rate: ${p.store.senders} senders, ${p.store.window} unanswered sends each, to ${p.store.perSender} never-logged-in recipients each; ` +
    "rate = SENT stored acks per second (JetStream PubAck + the dedupe KV put in the cluster; a committed SQLite transaction on one node).",
    "Failover: SDK clients (IrisClient with every node's URL, own node first) sending every " +
    `${p.failover.gapMs} ms; node 1 SIGKILLed; failover time = kill → that user's first delivery on another node.`,
    "Everything runs on one machine: nodes, nats-server, load generator and SDK clients share its cores over loopback.",
  ];
}
