// Chaos control (only with --chaos): a loopback-only HTTP endpoint on its own port that lets a
// test kill a shard or the storage writer, inject garbage into their ports, and read counters.

import { Hono } from "hono";
import { FIELDS, MetricsReader, shardSlot, SLOT_MAIN, SLOT_WRITER } from "../observe/metrics.ts";
import type { Supervisor } from "../supervisor.ts";
import { garbageBatch } from "./garbage.ts";

export function startChaosAdmin(sup: Supervisor, shards: number, port: number): { port: number; stop(): void } {
  const reader = new MetricsReader(sup.metricsBuf);
  const app = new Hono();
  const index = (s: string) => {
    const i = Number(s);
    return Number.isInteger(i) && i >= 0 && i < shards ? i : null;
  };
  app.post("/chaos/shards/:i/kill", (c) => {
    const i = index(c.req.param("i"));
    if (i === null) return c.json({ error: "no such shard" }, 404);
    return c.json({ killed: sup.killShard(i) });
  });
  app.post("/chaos/shards/:i/crash", (c) => {
    const i = index(c.req.param("i"));
    if (i === null) return c.json({ error: "no such shard" }, 404);
    return c.json({ crashed: sup.crashShard(i) });
  });
  app.post("/chaos/shards/:i/stall", (c) => {
    const i = index(c.req.param("i"));
    const ms = Number(c.req.query("ms") ?? 1000);
    if (i === null) return c.json({ error: "no such shard" }, 404);
    if (!Number.isInteger(ms) || ms < 0 || ms > 30_000) return c.json({ error: "ms must be an integer 0..30000" }, 400);
    return c.json({ stalled: sup.stallShard(i, ms) });
  });
  app.post("/chaos/writer/kill", (c) => c.json({ killed: sup.killWriter() }));
  app.post("/chaos/shards/:i/garbage", (c) => {
    const i = index(c.req.param("i"));
    if (i === null) return c.json({ error: "no such shard" }, 404);
    const count = Math.min(Number(c.req.query("count") ?? 100), 100_000);
    const seed = Number(c.req.query("seed") ?? Date.now());
    // Half as one batch of items, half as raw non-array values: both paths are validated.
    const items = garbageBatch(count, seed);
    const half = Math.floor(count / 2);
    sup.injectShard(i, items.slice(0, half));
    for (const v of items.slice(half)) sup.injectShardRaw(i, v);
    return c.json({ injected: count, seed });
  });
  app.post("/chaos/writer/garbage", (c) => {
    const count = Math.min(Number(c.req.query("count") ?? 100), 100_000);
    const seed = Number(c.req.query("seed") ?? Date.now());
    sup.injectWriter(0, garbageBatch(count, seed));
    return c.json({ injected: count, seed });
  });
  app.get("/chaos/counters", (c) => {
    const slot = (k: number) => Object.fromEntries(FIELDS.map((f) => [f, reader.at(k, f)]).filter(([, v]) => v !== 0));
    return c.json({
      main: slot(SLOT_MAIN),
      writer: slot(SLOT_WRITER),
      shards: Array.from({ length: shards }, (_, i) => slot(shardSlot(i))),
      totals: Object.fromEntries(FIELDS.map((f) => [f, reader.sum(f)])),
    });
  });
  const server = Bun.serve({ hostname: "127.0.0.1", port, fetch: app.fetch });
  return { port: server.port ?? port, stop: () => server.stop(true) };
}
