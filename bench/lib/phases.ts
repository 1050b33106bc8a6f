// Building blocks shared by the message scenarios: open pairs of users over the workers, run one
// timed phase across all workers (closed-loop saturation or open-loop pacing), and merge what the
// workers counted, with the server's CPU time read from /proc over the measured window only.

import { type LatencySummary, mergeAll } from "./histogram.ts";
import { chunk, type LoadGen } from "./loadgen.ts";
import type { GroupResult, GroupSpec, Target } from "./loadgen-protocol.ts";
import { type LedgerTally, sumTallies } from "./ledger.ts";
import { clockTicks, cpuMicros, cpuMicrosOf, othersDeltaMicros, snapshotOthers } from "./procstat.ts";
import type { Proto } from "./wire.ts";
import { sleep } from "./context.ts";

export interface Pairs {
  /** Users per worker, in connection order; connection i sends to connection i ^ 1. */
  users: string[][];
  openMs: number;
  failed: number;
  errors: string[];
}

/** Opens `conns` connections (rounded down to pairs) spread evenly over the workers. */
export async function openPairs(
  lg: LoadGen,
  target: Target,
  proto: Proto,
  conns: number,
  prefix: string,
  payload: number,
  bundles = false,
): Promise<Pairs> {
  const all = Array.from({ length: conns - (conns % 2) }, (_, i) => `${prefix}${i}`);
  const users = chunk(all, lg.size, 2);
  const t0 = performance.now();
  const r = await Promise.all(
    users.map((u, w) => lg.open(w, { target, proto, users: u, concurrency: 128, timeoutMs: 20_000, payload, bundles })),
  );
  return {
    users,
    openMs: performance.now() - t0,
    failed: r.reduce((n, x) => n + x.failed, 0),
    errors: r.flatMap((x) => x.errors),
  };
}

export interface PhaseSpec {
  name: string;
  mode: "saturate" | "paced";
  window: number;
  /** Paced: total msgs/s over all workers. */
  rate: number;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  payload: number;
}

export interface CpuFigures {
  /** Server CPU (user+system, all threads) per delivered message in the measured window. */
  serverUsPerMsg: number | null;
  /** Server CPU as % of one core over the measured window. */
  serverPct: number | null;
  /** Load-generator processes' CPU as % of one core (they share the machine). */
  loadgenPct: number;
  /** Every other process on the machine, % of one core: above ~15% the figures are disturbed. */
  otherPct: number;
}

export interface CpuSample {
  serverUs: number | null;
  loadgenUs: number;
  otherUs: number;
  wallMs: number;
}

export function pct(us: number, wallMs: number): number {
  return Math.round((us / 1000 / Math.max(1, wallMs)) * 1000) / 10;
}

export interface PhaseResult {
  name: string;
  mode: "saturate" | "paced";
  window: number | null;
  targetRate: number | null;
  sent: number;
  delivered: number;
  /** Sent but never delivered (after the drain). */
  missing: number;
  measuredMs: number;
  msgsPerSec: number;
  latency: LatencySummary;
  /** Deliveries per second, second 0 = start of warm-up. */
  perSecond: number[];
  acks: { delivered: number; stored: number; duplicate: number };
  errors: number;
  paceShortfall: number;
  cpu: CpuFigures;
}

/** Sums per-second arrays of different lengths elementwise. */
export function sumSeries(series: number[][]): number[] {
  const out: number[] = [];
  for (const s of series) s.forEach((v, i) => (out[i] = (out[i] ?? 0) + v));
  return Array.from(out, (v) => v ?? 0);
}

/**
 * Samples CPU of the server and the workers at the edges of the measured window (which ends
 * early when `done` settles: quota runs finish before their time cap).
 */
async function sampleCpu(
  serverPid: number | number[] | null,
  lg: LoadGen,
  startAt: number,
  warmupMs: number,
  measureMs: number,
  done: Promise<unknown>,
): Promise<CpuSample> {
  await sleep(startAt + warmupMs - Date.now());
  const servers = serverPid === null ? [] : [serverPid].flat();
  const mine = new Set([process.pid, ...lg.pids(), ...servers]);
  // One server: its own figure (an exit mid-window is an error); several (a cluster): the sum.
  const serverCpu = () => servers.length === 1 ? cpuMicros(servers[0]!) : cpuMicrosOf(servers);
  const s0 = servers.length ? serverCpu() : null;
  const l0 = cpuMicrosOf(lg.pids());
  const o0 = snapshotOthers(mine);
  const w0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([new Promise((r) => (timer = setTimeout(r, measureMs))), done.catch(() => {})]);
  clearTimeout(timer);
  const s1 = servers.length ? serverCpu() : null;
  const l1 = cpuMicrosOf(lg.pids());
  const o1 = snapshotOthers(mine);
  return {
    serverUs: s0 !== null && s1 !== null ? s1 - s0 : null,
    loadgenUs: l1 - l0,
    otherUs: othersDeltaMicros(o0, o1, clockTicks()),
    wallMs: performance.now() - w0,
  };
}

/** Merges one named group's results from every worker. */
export function mergeGroups(parts: GroupResult[]) {
  const sum = (f: (g: GroupResult) => number) => parts.reduce((n, g) => n + f(g), 0);
  return {
    sent: sum((g) => g.total.sent),
    delivered: sum((g) => g.total.delivered),
    acked: sum((g) => g.total.acked),
    measured: {
      sent: sum((g) => g.measured.sent),
      delivered: sum((g) => g.measured.delivered),
      acked: sum((g) => g.measured.acked),
      ms: Math.max(0, ...parts.map((g) => g.measured.ms)),
    },
    acks: {
      delivered: sum((g) => g.acks.delivered),
      stored: sum((g) => g.acks.stored),
      duplicate: sum((g) => g.acks.duplicate),
    },
    errors: sum((g) => g.errors),
    inflightLeft: sum((g) => g.inflightLeft),
    paceShortfall: sum((g) => g.paceShortfall),
    elapsedMs: Math.max(0, ...parts.map((g) => g.elapsedMs)),
    hist: mergeAll(parts.map((g) => g.hist)),
    perSec: {
      sent: sumSeries(parts.map((g) => g.perSec.sent)),
      delivered: sumSeries(parts.map((g) => g.perSec.delivered)),
      acked: sumSeries(parts.map((g) => g.perSec.acked)),
    },
  };
}

export type Merged = ReturnType<typeof mergeGroups>;

/**
 * Runs groups on every worker at once (`groupsFor(w)` gives worker w's groups) and returns each
 * group merged over workers, plus CPU over the measured window (of one server, or summed over
 * several) and the exactly-once tally of every message sent.
 */
export async function runGroups(
  lg: LoadGen,
  groupsFor: (w: number) => GroupSpec[],
  t: { warmupMs: number; measureMs: number; drainMs: number; payload: number; settleMs?: number; liveOnly?: boolean },
  serverPid: number | number[] | null,
): Promise<{ groups: Map<string, Merged>; cpu: CpuSample; ledger: LedgerTally }> {
  const startAt = Date.now() + 300;
  const runs = Promise.all(
    Array.from({ length: lg.size }, (_, w) => lg.run(w, { groups: groupsFor(w), startAt, ...t })),
  );
  const [replies, cpu] = await Promise.all([runs, sampleCpu(serverPid, lg, startAt, t.warmupMs, t.measureMs, runs)]);
  const byName = new Map<string, GroupResult[]>();
  for (const r of replies) for (const g of r.groups) byName.set(g.name, [...(byName.get(g.name) ?? []), g]);
  return {
    groups: new Map([...byName].map(([k, v]) => [k, mergeGroups(v)])),
    cpu,
    ledger: sumTallies(replies.map((r) => r.ledger)),
  };
}

/** One pairs phase: every connection sends to its partner, windowed or paced. */
export async function runPairsPhase(
  lg: LoadGen,
  pairs: Pairs,
  p: PhaseSpec,
  serverPid: number | null,
): Promise<PhaseResult> {
  const total = pairs.users.reduce((n, u) => n + u.length, 0);
  const { groups, cpu } = await runGroups(
    lg,
    (w) => {
      const users = pairs.users[w]!;
      if (users.length === 0) return [];
      return [{
        name: p.name,
        senders: users.map((_, i) => ({ c: i, to: [users[i ^ 1]!] })),
        mode: p.mode === "saturate"
          ? { kind: "window", window: p.window, ackOn: "deliver" }
          : { kind: "pace", rate: (p.rate * users.length) / total },
        quota: null,
      }];
    },
    { warmupMs: p.warmupMs, measureMs: p.measureMs, drainMs: p.drainMs, payload: p.payload },
    serverPid,
  );
  const g = groups.get(p.name)!;
  const measuredMs = g.measured.ms || p.measureMs;
  const delivered = g.measured.delivered;
  return {
    name: p.name,
    mode: p.mode,
    window: p.mode === "saturate" ? p.window : null,
    targetRate: p.mode === "paced" ? p.rate : null,
    sent: g.sent,
    delivered: g.delivered,
    missing: g.sent - g.delivered,
    measuredMs,
    msgsPerSec: Math.round((delivered * 1000) / measuredMs),
    latency: g.hist.summary(),
    // Whole seconds of warm-up + measurement only: the drain's partial second would read as a dip.
    perSecond: g.perSec.delivered.slice(0, Math.max(1, Math.floor((p.warmupMs + p.measureMs) / 1000))),
    acks: g.acks,
    errors: g.errors,
    paceShortfall: g.paceShortfall,
    cpu: {
      serverUsPerMsg: cpu.serverUs !== null && delivered > 0
        ? Math.round((cpu.serverUs / delivered) * 100) / 100
        : null,
      serverPct: cpu.serverUs !== null ? pct(cpu.serverUs, cpu.wallMs) : null,
      loadgenPct: pct(cpu.loadgenUs, cpu.wallMs),
      otherPct: pct(cpu.otherUs, cpu.wallMs),
    },
  };
}

/** Problems worth reporting from a pairs phase. */
export function phaseProblems(label: string, r: PhaseResult): string[] {
  const out: string[] = [];
  if (r.missing !== 0) out.push(`${label} ${r.name}: ${r.missing} of ${r.sent} messages were never delivered`);
  if (r.errors > 0) out.push(`${label} ${r.name}: ${r.errors} ERROR frames to senders`);
  const other = disturbance(`${label} ${r.name}`, r.cpu.otherPct);
  if (other) out.push(other);
  if (r.targetRate && r.paceShortfall > r.targetRate * (r.measuredMs / 1000) * 0.01) {
    out.push(
      `${label} ${r.name}: the pacer fell ${r.paceShortfall} sends short of ${r.targetRate} msgs/s (load generator starved)`,
    );
  }
  return out;
}

/** A warning when other processes took a noticeable share of the shared cores. */
export function disturbance(label: string, otherPct: number): string | null {
  return otherPct > 15
    ? `${label}: other processes on the machine used ${otherPct}% of a core during the measurement; ` +
      "the figures are disturbed (rerun on a quiet machine)"
    : null;
}
