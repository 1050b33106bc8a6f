// The overview pane: polls /v1/stats every second, shows the figures, and keeps 5-minute charts
// (uPlot) of the rates, latency and memory.

import uPlot from "uplot";
import { api } from "./api.ts";
import { $ } from "./dom.ts";
import { columns, fmtBytes, fmtMs, fmtRate, type Point, pushPoint, type StatsSample, toPoint } from "./series.ts";

/** The overview refreshes this often (the issue asks for 1 s). */
export const REFRESH_MS = 1000;
const CHART_HEIGHT = 140;

interface ChartSpec {
  id: string;
  keys: (keyof Point)[];
  labels: string[];
  colors: string[];
  unit: string;
}

const CHARTS: ChartSpec[] = [
  {
    id: "chart-rates",
    keys: ["msgsInPerS", "livePerS", "storedPerS", "loginsPerS"],
    labels: ["msgs in/s", "delivered live/s", "delivered stored/s", "logins/s"],
    colors: ["#2563eb", "#16a34a", "#d97706", "#9333ea"],
    unit: "/s",
  },
  {
    id: "chart-latency",
    keys: ["ackP50Ms", "ackP99Ms", "routeP99Ms"],
    labels: ["send→ack p50", "send→ack p99", "route p99"],
    colors: ["#0891b2", "#dc2626", "#9ca3af"],
    unit: "ms",
  },
  {
    id: "chart-memory",
    keys: ["rssMb", "spillMb", "refuseMb"],
    labels: ["RSS MiB", "spill MiB", "refuse MiB"],
    colors: ["#2563eb", "#d97706", "#dc2626"],
    unit: "MiB",
  },
  { id: "chart-conns", keys: ["connections"], labels: ["connections"], colors: ["#16a34a"], unit: "" },
];

function makeChart(spec: ChartSpec, points: Point[]): uPlot {
  const host = $(spec.id);
  const opts: uPlot.Options = {
    width: Math.max(host.clientWidth, 240),
    height: CHART_HEIGHT,
    legend: { show: true, live: false },
    cursor: { show: false },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max * 1.1, 1)] } },
    axes: [
      { size: 30, space: 70, values: (_u, vals) => vals.map(clock) },
      { size: 56, values: (_u, vals) => vals.map(compact) },
    ],
    series: [
      {},
      ...spec.keys.map((_k, i) => ({
        label: spec.labels[i]!,
        stroke: spec.colors[i]!,
        width: 1.5,
        points: { show: false },
      })),
    ],
  };
  return new uPlot(opts, columns(points, spec.keys) as uPlot.AlignedData, host);
}

/** x-axis labels: wall-clock time to the second. */
const clock = (t: number) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

/** Axis labels that fit: 1.2k, 14k, 3.4M. */
function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

function fig(name: string, text: string): void {
  const e = document.querySelector<HTMLElement>(`[data-fig="${name}"]`);
  if (e) e.textContent = text;
}

function render(s: StatsSample, p: Point | null): void {
  fig("connections", String(s.connections));
  fig("logins", p ? fmtRate(p.loginsPerS) : "–");
  fig("msgsIn", p ? fmtRate(p.msgsInPerS) : "–");
  fig("live", p ? fmtRate(p.livePerS) : "–");
  fig("stored", p ? fmtRate(p.storedPerS) : "–");
  fig("rows", String(s.store.rows));
  fig("backlog", fmtBytes(s.store.backlogBytes));
  fig("disk", fmtBytes(s.store.freeDiskBytes));
  fig("p50", fmtMs(p?.ackP50Ms ?? null));
  fig("p99", fmtMs(p?.ackP99Ms ?? null));
  fig(
    "latTotal",
    `since start ${fmtMs(s.ackLatency.p50Ms)} / ${fmtMs(s.ackLatency.p99Ms)}; route p99 ${fmtMs(s.latency.p99Ms)}`,
  );
  fig("rss", fmtBytes(s.memory.rssBytes));
  fig("watermarks", `spill ${fmtBytes(s.memory.spillBytes)} · refuse ${fmtBytes(s.memory.refuseBytes)}`);
  fig("pressure", ["normal", "spilling", "refusing"][s.memory.pressure] ?? String(s.memory.pressure));
  fig("restarts", String(s.threads.shardRestarts + s.threads.writerRestarts));
  fig("shards", String(s.threads.shards));
  fig("nodes", s.nodes.map((n) => `${n.id} ${n.state} (${n.connections})`).join(", "));
  fig("updated", new Date(s.now).toLocaleTimeString());
}

/** Starts polling; returns a stop function. `onError` reports a failed poll (e.g. token revoked). */
export function startOverview(onError: (why: string) => void): () => void {
  const points: Point[] = [];
  let prev: StatsSample | null = null;
  let charts: uPlot[] | null = null;
  let busy = false;
  const tick = async () => {
    if (busy) return; // a slow answer must not pile up requests
    busy = true;
    const r = await api<StatsSample>("GET", "/v1/stats");
    busy = false;
    if (!r.ok) return onError(`${r.error}: ${r.reason}`);
    const p = prev ? toPoint(prev, r.body) : null;
    prev = r.body;
    render(r.body, p);
    if (!p) return;
    pushPoint(points, p);
    charts ??= CHARTS.map((c) => makeChart(c, points));
    charts.forEach((c, i) => c.setData(columns(points, CHARTS[i]!.keys) as uPlot.AlignedData));
  };
  void tick();
  const timer = setInterval(tick, REFRESH_MS);
  return () => clearInterval(timer);
}
