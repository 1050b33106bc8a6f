// The console's pure series logic: rates from counter samples, windowed percentiles, the window.

import { expect, test } from "bun:test";
import { columns, fmtBytes, pushPoint, type StatsSample, toPoint } from "../../src/console/page/series.ts";

function sample(now: number, msgsIn: number, counts: number[], rss = 100 * 1048576): StatsSample {
  return {
    now,
    connections: 3,
    totals: { logins: 0, msgsIn, deliveredLive: msgsIn, deliveredStored: 0 },
    store: { rows: 0, backlogBytes: 0, freeDiskBytes: 1 },
    latency: { p50Ms: null, p99Ms: null, boundsMs: [1, 2, 4], counts: counts.map((n) => n * 2) },
    ackLatency: { p50Ms: null, p99Ms: null, boundsMs: [1, 2, 4], counts },
    memory: { rssBytes: rss, spillBytes: 200 * 1048576, refuseBytes: 300 * 1048576, pressure: 0 },
    threads: { shards: 1, shardRestarts: 0, writerRestarts: 0 },
    nodes: [{ id: "self", state: "up", connections: 3 }],
  };
}

test("rates are per second over the real interval; percentiles cover only that interval", () => {
  const p = toPoint(sample(1000, 100, [100, 0, 0, 0]), sample(3000, 500, [100, 10, 0, 0]));
  expect(p.msgsInPerS).toBe(200);
  expect(p.livePerS).toBe(200);
  expect(p.ackP50Ms).toBe(1.5); // all of this interval's 10 acks fell in (1, 2]
  expect(p.ackP99Ms).toBeCloseTo(1.99);
  expect(p.routeP99Ms).toBeCloseTo(1.99);
  expect(p.rssMb).toBe(100);
  expect(p.spillMb).toBe(200);
  expect(p.t).toBe(3);
});

test("a counter that went backwards (thread restart) counts as zero, not negative", () => {
  const p = toPoint(sample(0, 900, [5, 0, 0, 0]), sample(1000, 10, [1, 0, 0, 0]));
  expect(p.msgsInPerS).toBe(0);
  expect(p.ackP50Ms).toBeNull();
});

test("the window keeps the newest points; columns are uPlot-shaped", () => {
  const pts = [] as ReturnType<typeof toPoint>[];
  for (let i = 0; i < 7; i++) pushPoint(pts, toPoint(sample(i * 1000, 0, [0]), sample(i * 1000 + 1000, i, [0])), 5);
  expect(pts.length).toBe(5);
  expect(pts[0]!.t).toBe(3);
  expect(columns(pts, ["connections"])).toEqual([[3, 4, 5, 6, 7], [3, 3, 3, 3, 3]]);
  expect(fmtBytes(1536)).toBe("1.5 KiB");
  expect(fmtBytes(null)).toBe("n/a");
});
