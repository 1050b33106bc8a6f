// Small, dependency-free SVG charts for results files: a grouped bar chart (latency percentiles)
// and a line chart (throughput over time, memory vs connections). Pure string builders, so they
// are unit-testable and the output is stable for the same input.

export interface BarSeries {
  name: string;
  values: number[]; // one per category
}

export interface BarChartOptions {
  title: string;
  categories: string[];
  series: BarSeries[];
  yLabel: string;
  width?: number;
  height?: number;
  /** Log-scale y axis: latency percentiles span orders of magnitude (p50 vs max). */
  log?: boolean;
}

export interface LineSeries {
  name: string;
  points: [number, number][];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  width?: number;
  height?: number;
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
const M = { top: 40, right: 20, bottom: 58, left: 70 };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Round-number axis ticks covering [min, max] (about `n` of them). */
export function niceTicks(min: number, max: number, n = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max < min) [min, max] = [max, min];
  if (max === min) max = min === 0 ? 1 : min + Math.abs(min);
  const raw = (max - min) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const lo = Math.floor(min / step) * step;
  const out: number[] = [];
  for (let v = lo; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1]! < max) out.push(Number((out[out.length - 1]! + step).toPrecision(12)));
  return out;
}

/** Powers of ten covering [min, max] for a log axis. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)));
  const hi = Math.ceil(Math.log10(Math.max(max, min, 1e-9)));
  const out: number[] = [];
  for (let e = lo; e <= Math.max(hi, lo + 1); e++) out.push(10 ** e);
  return out;
}

/** Compact tick label: 1.5k, 2M, 0.25. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e3) return `${trim(v / 1e3)}k`;
  if (a === 0) return "0";
  if (a < 0.01) return v.toExponential(0);
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toPrecision(3)));
}

function fmt(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : "0";
}

/** Background, title and axis labels; `height` is the chart's, `total` adds the legend under it. */
function frame(
  o: { title: string; width: number; height: number; total: number; yLabel: string; xLabel?: string },
): string[] {
  const { width: w, height: h, total } = o;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${total}" viewBox="0 0 ${w} ${total}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${w}" height="${total}" fill="#ffffff"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`,
    `<text transform="translate(16,${fmt(M.top + (h - M.top - M.bottom) / 2)}) rotate(-90)" text-anchor="middle">${
      escapeXml(o.yLabel)
    }</text>`,
  ];
  if (o.xLabel) {
    out.push(
      `<text x="${fmt(M.left + (w - M.left - M.right) / 2)}" y="${h - 24}" text-anchor="middle">${
        escapeXml(o.xLabel)
      }</text>`,
    );
  }
  return out;
}

/** Legend entries in rows under the chart, wrapped to `maxWidth`; returns marks and height used. */
function legend(names: string[], x: number, y: number, maxWidth: number): { marks: string[]; height: number } {
  const marks: string[] = [];
  let cx = x;
  let cy = y + 12;
  names.forEach((name, i) => {
    const itemW = 24 + name.length * 7;
    if (cx > x && cx + itemW > x + maxWidth) {
      cx = x;
      cy += 16;
    }
    marks.push(
      `<rect x="${fmt(cx)}" y="${cy - 9}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/>`,
      `<text x="${fmt(cx + 14)}" y="${cy}">${escapeXml(name)}</text>`,
    );
    cx += itemW;
  });
  return { marks, height: names.length ? cy - y + 8 : 0 };
}

export function barChart(o: BarChartOptions): string {
  const w = o.width ?? 720;
  const h = o.height ?? 360;
  const pw = w - M.left - M.right;
  const ph = h - M.top - M.bottom;
  const all = o.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const useLog = !!o.log && all.some((v) => v > 0);
  const positive = all.filter((v) => v > 0);
  const ticks = useLog ? logTicks(Math.min(...positive), Math.max(...positive)) : niceTicks(0, Math.max(0, ...all));
  const t0 = ticks[0]!;
  const t1 = ticks[ticks.length - 1]!;
  const y = (v: number): number => {
    if (useLog) {
      const lv = Math.log10(Math.max(v, t0));
      return M.top + ph - ((lv - Math.log10(t0)) / (Math.log10(t1) - Math.log10(t0))) * ph;
    }
    return M.top + ph - ((v - t0) / (t1 - t0 || 1)) * ph;
  };
  const leg = legend(o.series.map((s) => s.name), M.left, h - 30, pw);
  const out = frame({ title: o.title, width: w, height: h, total: h - 30 + leg.height, yLabel: o.yLabel });
  for (const t of ticks) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${fmt(y(t))}" y2="${fmt(y(t))}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${M.left - 6}" y="${fmt(y(t) + 4)}" text-anchor="end">${formatTick(t)}</text>`);
  }
  const groups = Math.max(1, o.categories.length);
  const gw = pw / groups;
  const bw = (gw * 0.8) / Math.max(1, o.series.length);
  o.categories.forEach((cat, ci) => {
    const gx = M.left + ci * gw + gw * 0.1;
    o.series.forEach((s, si) => {
      const raw = s.values[ci] ?? 0;
      const v = Number.isFinite(raw) ? raw : 0;
      const label = Number.isFinite(raw) ? formatTick(raw) : "n/a";
      const top = y(v);
      const bh = Math.max(0, M.top + ph - top);
      out.push(
        `<rect x="${fmt(gx + si * bw)}" y="${fmt(top)}" width="${fmt(Math.max(bw - 2, 1))}" height="${fmt(bh)}" fill="${
          PALETTE[si % PALETTE.length]
        }"><title>${escapeXml(`${s.name} ${cat}: ${Number.isFinite(raw) ? raw : "n/a"}`)}</title></rect>`,
      );
      if (o.series.length <= 4 && bw >= 24) {
        out.push(
          `<text x="${fmt(gx + si * bw + bw / 2 - 1)}" y="${
            fmt(top - 3)
          }" text-anchor="middle" font-size="9">${label}</text>`,
        );
      }
    });
    out.push(
      `<text x="${fmt(M.left + ci * gw + gw / 2)}" y="${M.top + ph + 16}" text-anchor="middle">${
        escapeXml(cat)
      }</text>`,
    );
  });
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#111827"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#111827"/>`);
  out.push(...leg.marks);
  out.push("</svg>");
  return out.join("\n") + "\n";
}

export function lineChart(o: LineChartOptions): string {
  const w = o.width ?? 720;
  const h = o.height ?? 360;
  const pw = w - M.left - M.right;
  const ph = h - M.top - M.bottom;
  const pts = o.series.flatMap((s) => s.points).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const yt = niceTicks(0, ys.length ? Math.max(0, ...ys) : 1);
  const [x0, x1] = [xt[0]!, xt[xt.length - 1]!];
  const [y0, y1] = [yt[0]!, yt[yt.length - 1]!];
  const sx = (v: number) => M.left + ((v - x0) / (x1 - x0 || 1)) * pw;
  const sy = (v: number) => M.top + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
  const leg = legend(o.series.map((s) => s.name), M.left, h - 14, pw);
  const out = frame({
    title: o.title,
    width: w,
    height: h,
    total: h - 14 + leg.height,
    yLabel: o.yLabel,
    xLabel: o.xLabel,
  });
  for (const t of yt) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${fmt(sy(t))}" y2="${fmt(sy(t))}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${M.left - 6}" y="${fmt(sy(t) + 4)}" text-anchor="end">${formatTick(t)}</text>`);
  }
  for (const t of xt) {
    out.push(`<text x="${fmt(sx(t))}" y="${M.top + ph + 16}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  o.series.forEach((s, i) => {
    const good = s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (good.length === 0) return;
    const color = PALETTE[i % PALETTE.length];
    const d = good.map(([a, b], k) => `${k === 0 ? "M" : "L"}${fmt(sx(a))},${fmt(sy(b))}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [a, b] of good) {
      out.push(
        `<circle cx="${fmt(sx(a))}" cy="${fmt(sy(b))}" r="2.5" fill="${color}"><title>${
          escapeXml(`${s.name}: ${a}, ${b}`)
        }</title></circle>`,
      );
    }
  });
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#111827"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#111827"/>`);
  out.push(...leg.marks);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
