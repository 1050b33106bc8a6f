// Pure time-series logic for the console overview: turn successive /v1/stats samples (counters
// since start) into per-second rates and windowed latency percentiles, kept for the last 5 minutes.

import { quantileFromBuckets } from "../../observe/quantile.ts";

/** The part of a /v1/stats answer the overview reads (see src/gateway/admin-stats.ts). */
export interface StatsSample {
  now: number;
  connections: number;
  totals: { logins: number; msgsIn: number; deliveredLive: number; deliveredStored: number };
  store: { rows: number; backlogBytes: number; freeDiskBytes: number | null };
  latency: Histogram; // route: send frame → delivery written
  ackLatency: Histogram; // send frame → the sender's ack
  memory: { rssBytes: number; spillBytes: number; refuseBytes: number; pressure: number };
  threads: { shards: number; shardRestarts: number; writerRestarts: number };
  nodes: { id: string; state: string; connections: number }[];
}

export interface Histogram {
  p50Ms: number | null;
  p99Ms: number | null;
  boundsMs: number[];
  counts: number[];
}

/** One point of the overview: rates over the interval since the previous sample. */
export interface Point {
  t: number; // seconds since epoch (uPlot's x unit)
  connections: number;
  loginsPerS: number;
  msgsInPerS: number;
  livePerS: number;
  storedPerS: number;
  ackP50Ms: number | null; // send→ack over this interval; null when nothing was acked
  ackP99Ms: number | null;
  routeP99Ms: number | null; // route latency over this interval
  rssMb: number;
  spillMb: number;
  refuseMb: number;
}

/** Five minutes of one-second samples. */
export const WINDOW_POINTS = 300;
const MB = 1048576;

export function toPoint(prev: StatsSample, cur: StatsSample): Point {
  const dt = Math.max((cur.now - prev.now) / 1000, 0.001);
  // A counter going backwards means a restarted thread reset its slot: count the interval as 0.
  const rate = (a: number, b: number) => Math.max(b - a, 0) / dt;
  // Counts over this interval only (a reset slot counts as zero, like the counters).
  const diff = (a: Histogram, b: Histogram) => b.counts.map((n, i) => Math.max(n - (a.counts[i] ?? 0), 0));
  const ack = diff(prev.ackLatency, cur.ackLatency);
  const route = diff(prev.latency, cur.latency);
  return {
    t: cur.now / 1000,
    connections: cur.connections,
    loginsPerS: rate(prev.totals.logins, cur.totals.logins),
    msgsInPerS: rate(prev.totals.msgsIn, cur.totals.msgsIn),
    livePerS: rate(prev.totals.deliveredLive, cur.totals.deliveredLive),
    storedPerS: rate(prev.totals.deliveredStored, cur.totals.deliveredStored),
    ackP50Ms: quantileFromBuckets(cur.ackLatency.boundsMs, ack, 0.5),
    ackP99Ms: quantileFromBuckets(cur.ackLatency.boundsMs, ack, 0.99),
    routeP99Ms: quantileFromBuckets(cur.latency.boundsMs, route, 0.99),
    rssMb: cur.memory.rssBytes / MB,
    spillMb: cur.memory.spillBytes / MB,
    refuseMb: cur.memory.refuseBytes / MB,
  };
}

/** Appends a point, dropping those older than the window. Returns the same array. */
export function pushPoint(points: Point[], p: Point, max = WINDOW_POINTS): Point[] {
  points.push(p);
  if (points.length > max) points.splice(0, points.length - max);
  return points;
}

/** Column-major data for uPlot: [x, ...one array per key]. */
export function columns(points: Point[], keys: (keyof Point)[]): (number | null)[][] {
  return [points.map((p) => p.t), ...keys.map((k) => points.map((p) => p[k]))];
}

/** Human-readable byte counts (binary units). */
export function fmtBytes(n: number | null): string {
  if (n === null) return "n/a";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function fmtRate(n: number): string {
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1);
}

export function fmtMs(n: number | null): string {
  return n === null ? "–" : n >= 10 ? `${Math.round(n)} ms` : `${n.toFixed(2)} ms`;
}
