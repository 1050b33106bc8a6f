// `http`: autocannon (programmatic API, in this process) against /healthz and
// /v1/users/:id/status for a few seconds each. Latency is also recorded per response into our
// own microsecond histogram: autocannon's percentiles are whole milliseconds.

import autocannon from "autocannon";
import { latencyBars, rateLines } from "../lib/charts.ts";
import type { Scenario } from "../lib/context.ts";
import { Histogram, type LatencySummary } from "../lib/histogram.ts";
import { int, latencyLine } from "../lib/format.ts";
import { startTarget } from "../lib/targets.ts";

export interface EndpointFigures {
  path: string;
  requests: number;
  reqPerSec: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency: LatencySummary;
  autocannonLatencyMs: { p50: number; p99: number; max: number };
  perSecond: number[];
}

export interface HttpFigures {
  params: { connections: number; durationS: number; pipelining: number };
  endpoints: EndpointFigures[];
}

export const http: Scenario<HttpFigures> = async (ctx) => {
  const a = ctx.args;
  const connections = a.conns ?? (a.smoke ? 10 : 50);
  const durationS = a.duration ?? (a.smoke ? 1 : 5);
  const params = { connections, durationS, pipelining: 1 };
  Object.assign(ctx.params, params);
  const t = await startTarget(ctx, "iris", a.shards?.[0] ?? null);
  const endpoints: EndpointFigures[] = [];
  try {
    for (const path of ["/healthz", "/v1/users/bench-user/status"]) {
      const hist = new Histogram();
      const perSecond: number[] = [];
      const t0 = performance.now();
      ctx.log(`autocannon ${path}: ${connections} connections for ${durationS} s`);
      const inst = autocannon({
        url: `${t.http}${path}`,
        connections,
        duration: durationS,
        pipelining: 1,
        timeout: 10,
      });
      inst.on("response", (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
        hist.record(responseTimeMs * 1000);
        const s = Math.floor((performance.now() - t0) / 1000);
        while (perSecond.length <= s) perSecond.push(0);
        perSecond[s]!++;
      });
      const r = await inst;
      const f: EndpointFigures = {
        path,
        requests: r.requests.total,
        reqPerSec: Math.round(r.requests.average),
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        latency: hist.summary(),
        autocannonLatencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
        perSecond,
      };
      if (f.non2xx || f.errors || f.timeouts) {
        ctx.problems.push(`${path}: ${f.non2xx} non-2xx, ${f.errors} errors, ${f.timeouts} timeouts`);
      }
      endpoints.push(f);
    }
  } finally {
    await t.stop();
  }
  ctx.notes.push(
    `autocannon runs inside the bench process (one JS thread) with ${connections} keep-alive connections, no pipelining; ` +
      "it shares the machine's cores with the server. req/s and latency are absolute.",
  );
  return {
    figures: { params, endpoints },
    charts: [
      {
        name: "latency",
        svg: latencyBars("HTTP latency", endpoints.map((e) => ({ name: e.path, latency: e.latency }))),
      },
      {
        name: "throughput",
        svg: rateLines(
          "HTTP requests per second",
          endpoints.map((e) => ({ name: e.path, perSecond: e.perSecond })),
          "requests / s",
        ),
      },
    ],
    summary: endpoints.flatMap((e) => [
      `${e.path}: ${int(e.reqPerSec)} req/s (${int(e.requests)} requests, ${e.non2xx} non-2xx, ${e.errors} errors)`,
      `  ${latencyLine(e.latency)}`,
    ]),
  };
};
