// Users placed on a cluster for the load generator: pairs of users whose sockets sit on chosen
// nodes (same node as both owners, or away from them), spread over the load-generator workers so
// that both ends of a pair live in one worker (latency and the exactly-once ledger need that),
// and one timed phase over them with CPU summed over every node and nats-server.

import type { LatencySummary } from "./histogram.ts";
import type { LedgerTally } from "./ledger.ts";
import type { LoadGen } from "./loadgen.ts";
import type { GroupSpec } from "./loadgen-protocol.ts";
import { pct, runGroups } from "./phases.ts";
import type { Proto } from "./wire.ts";

export type PairKind = "same" | "cross";

/** One user: name, the node its socket goes to, and (after opening) its connection index. */
export interface Placed {
  user: string;
  node: number;
  worker: number;
  conn: number;
}

export interface Pair {
  kind: PairKind;
  a: Placed;
  b: Placed;
}

/**
 * `count` pairs of `kind`, spread evenly over owner nodes and workers. Both users of a pair have
 * the same owner X. same: both sockets on X (no network hop at all). cross: sockets on X+1 and
 * X+2 (mod N), so every message crosses NATS twice (sender node → owner → recipient node) and
 * its ack once.
 */
export function placePairs(
  kind: PairKind,
  count: number,
  nodes: number,
  workers: number,
  ownerIndex: (u: string) => number,
  prefix: string = kind,
): Pair[] {
  if (kind === "cross" && nodes < 2) throw new Error("cross-node pairs need at least 2 nodes");
  const waiting: string[][] = Array.from({ length: nodes }, () => []);
  const pairs: Pair[] = [];
  for (let i = 0; pairs.length < count; i++) {
    const user = `${prefix}-${i}`;
    const x = ownerIndex(user);
    // Round-robin over owners so each node owns about the same number of pairs.
    if (x !== pairs.length % nodes && i < count * nodes * 8) continue;
    const w = waiting[x]!;
    w.push(user);
    if (w.length < 2) continue;
    const [ua, ub] = w.splice(0, 2) as [string, string];
    const worker = pairs.length % workers;
    const na = kind === "same" ? x : (x + 1) % nodes;
    const nb = kind === "same" ? x : (x + 2) % nodes;
    pairs.push({
      kind,
      a: { user: ua, node: na, worker, conn: -1 },
      b: { user: ub, node: nb, worker, conn: -1 },
    });
  }
  return pairs;
}

export interface OpenResult {
  opened: number;
  /** Users still without a connection after the retry. */
  failed: number;
  /** Failed on the first attempt (then retried once, as a client would reconnect). */
  firstAttemptFailed: number;
  errors: string[];
  ms: number;
}

/** Longest wait for one worker's answer to an open (the scale run has its own deadline above it). */
const MAX_OPEN_REPLY_MS = 10 * 60_000;
/** Delay before the one retry of logins that failed (a refused upgrade, a timeout). */
const RETRY_AFTER_MS = 1000;

/** Opens `mine` (all on one node, one worker); failed ones get conn -1. Returns how many opened. */
async function openOn(
  lg: LoadGen,
  w: number,
  url: string,
  mine: Placed[],
  proto: Proto,
  payload: number,
  o: { concurrency: number; timeoutMs: number },
  errors: string[],
  label: string,
): Promise<Placed[]> {
  // Each round of `concurrency` logins may take up to timeoutMs: the worker's reply comes after all.
  const replyMs = Math.min(MAX_OPEN_REPLY_MS, (Math.ceil(mine.length / o.concurrency) + 1) * o.timeoutMs + 30_000);
  let r: Awaited<ReturnType<LoadGen["open"]>>;
  try {
    r = await lg.open(w, {
      target: { kind: "ws", url },
      proto,
      users: mine.map((u) => u.user),
      concurrency: o.concurrency,
      timeoutMs: o.timeoutMs,
      payload,
    }, replyMs);
  } catch (e) {
    // No reply in time: none of these count (the worker may still be opening them).
    for (const u of mine) u.conn = -1;
    errors.push(`${label}: ${(e as Error).message}`);
    return [];
  }
  mine.forEach((u, k) => (u.conn = r.firstIndex + k));
  for (const k of r.failedAt) mine[k]!.conn = -1;
  errors.push(...r.errors.map((e) => `${label}: ${e}`));
  return r.failedAt.map((k) => mine[k]!);
}

/**
 * Opens every placed user's connection: per worker, one node after the other (a worker's open
 * calls must not overlap: indices are assigned in order), workers in parallel. Logins that fail
 * are retried once after a second; users still failing keep conn -1 (pairGroups leaves them out).
 */
export async function openPlaced(
  lg: LoadGen,
  users: Placed[],
  urls: string[],
  proto: Proto,
  payload: number,
  o: { concurrency: number; timeoutMs: number; onProgress?: (opened: number) => void },
): Promise<OpenResult> {
  const t0 = performance.now();
  let opened = 0;
  let firstAttemptFailed = 0;
  let failed = 0;
  const errors: string[] = [];
  await Promise.all(Array.from({ length: lg.size }, async (_, w) => {
    for (let node = 0; node < urls.length; node++) {
      const mine = users.filter((u) => u.worker === w && u.node === node);
      if (mine.length === 0) continue;
      const bad = await openOn(lg, w, urls[node]!, mine, proto, payload, o, errors, `node ${node + 1}`);
      firstAttemptFailed += bad.length;
      if (bad.length) {
        await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
        await openOn(lg, w, urls[node]!, bad, proto, payload, o, errors, `node ${node + 1} retry`);
      }
      const missing = mine.filter((u) => u.conn < 0).length;
      failed += missing;
      opened += mine.length - missing;
      o.onProgress?.(opened);
    }
  }));
  return { opened, failed, firstAttemptFailed, errors, ms: performance.now() - t0 };
}

export interface ClusterPhase {
  name: string;
  mode: "saturate" | "paced";
  window: number | null;
  targetRate: number | null;
  pairs: number;
  sent: number;
  delivered: number;
  /** Sends the server answered (SENT delivered/stored/duplicate); the rest of `sent` minus errors got no answer. */
  acked: number;
  measuredMs: number;
  msgsPerSec: number;
  latency: LatencySummary;
  ledger: LedgerTally;
  errors: number;
  paceShortfall: number;
  /** Iris nodes + nats-server CPU (user+system) per delivered message in the measured window. */
  serverUsPerMsg: number | null;
  serverPct: number | null;
  loadgenPct: number;
  otherPct: number;
  perSecond: number[];
}

export interface PhaseTiming {
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  settleMs: number;
  payload: number;
}

/** Groups of one worker: each user of each pair sends to its partner. */
export function pairGroups(name: string, pairs: Pair[], w: number, mode: GroupSpec["mode"]): GroupSpec[] {
  const mine = pairs.filter((p) => p.a.worker === w && p.a.conn >= 0 && p.b.conn >= 0);
  if (mine.length === 0) return [];
  const senders = mine.flatMap((p) => [{ c: p.a.conn, to: [p.b.user] }, { c: p.b.conn, to: [p.a.user] }]);
  return [{ name, senders, mode, quota: null }];
}

/** One phase over `pairs`: closed loop (window W, a slot frees on delivery) or paced at `rate` msgs/s. */
export async function pairsPhase(
  lg: LoadGen,
  name: string,
  pairs: Pair[],
  m: { mode: "saturate"; window: number } | { mode: "paced"; rate: number },
  t: PhaseTiming,
  serverPids: number[],
): Promise<ClusterPhase> {
  const perWorker = (w: number) => pairs.filter((p) => p.a.worker === w).length;
  const { groups, cpu, ledger } = await runGroups(
    lg,
    (w) =>
      pairGroups(
        name,
        pairs,
        w,
        m.mode === "saturate"
          ? { kind: "window", window: m.window, ackOn: "deliver" }
          : { kind: "pace", rate: (m.rate * perWorker(w)) / Math.max(1, pairs.length) },
      ),
    { ...t, liveOnly: true },
    serverPids,
  );
  const g = groups.get(name)!;
  const measuredMs = g.measured.ms || t.measureMs;
  const delivered = g.measured.delivered;
  return {
    name,
    mode: m.mode,
    window: m.mode === "saturate" ? m.window : null,
    targetRate: m.mode === "paced" ? m.rate : null,
    pairs: pairs.length,
    sent: g.sent,
    delivered: g.delivered,
    acked: g.acked,
    measuredMs,
    msgsPerSec: Math.round((delivered * 1000) / measuredMs),
    latency: g.hist.summary(),
    ledger,
    errors: g.errors,
    paceShortfall: g.paceShortfall,
    serverUsPerMsg: cpu.serverUs !== null && delivered > 0 ? Math.round((cpu.serverUs / delivered) * 100) / 100 : null,
    serverPct: cpu.serverUs !== null ? pct(cpu.serverUs, cpu.wallMs) : null,
    loadgenPct: pct(cpu.loadgenUs, cpu.wallMs),
    otherPct: pct(cpu.otherUs, cpu.wallMs),
    perSecond: g.perSec.delivered.slice(0, Math.max(1, Math.floor((t.warmupMs + t.measureMs) / 1000))),
  };
}

/** Problems worth reporting from a phase: anything lost, duplicated, refused or disturbed. */
export function clusterPhaseProblems(label: string, r: ClusterPhase): string[] {
  const out: string[] = [];
  const l = r.ledger;
  // A send refused with an ERROR (e.g. SERVER_BUSY) was never accepted: it cannot be delivered.
  if (l.missing > r.errors) {
    out.push(
      `${label}: ${l.missing - r.errors} of ${l.ids} messages were neither refused nor delivered to a live ` +
        "connection (a recipient the server closed mid-run gets its stored messages at its next login); " +
        `${r.sent - r.acked - r.errors} of the ${r.sent} sends were never answered`,
    );
  }
  if (l.duplicated > 0) out.push(`${label}: ${l.duplicated} messages were delivered more than once`);
  if (r.errors > 0) out.push(`${label}: ${r.errors} sends refused with an ERROR frame (never accepted)`);
  if (r.otherPct > 15) {
    out.push(`${label}: other processes used ${r.otherPct}% of a core during the measurement (disturbed)`);
  }
  if (r.targetRate && r.paceShortfall > r.targetRate * (r.measuredMs / 1000) * 0.01) {
    out.push(`${label}: the pacer fell ${r.paceShortfall} sends short of ${r.targetRate} msgs/s`);
  }
  return out;
}
