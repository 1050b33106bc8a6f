// A cluster node's readiness against real nats-server processes: an unreachable --cluster URL is
// reported in one line and retried (not ready, never a split single node); losing NATS turns
// the node not-ready, and it comes back when NATS does; the others see it down and up.

import { afterAll, expect, test } from "bun:test";
import { ClusterNode } from "../../src/cluster/node.ts";
import { readiness } from "../../src/cluster/readiness.ts";
import { freePort, type NatsFixture, NatsServer, startNats } from "../helpers/nats.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const TIMING = { heartbeatMs: 100, downAfterMs: 500, forgetAfterMs: 5000 };
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
}, 20_000);

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(20);
  }
}

function node(id: string, servers: string[], warnings: string[] = []): ClusterNode {
  const n = ClusterNode.start({
    cluster: { servers, nodeId: id, replicas: 1 },
    shards: 1,
    http: "",
    inboxTtlSec: 0,
    timing: TIMING,
    warn: (l) => warnings.push(l),
  });
  cleanup.push(() => n.stop());
  return n;
}

test("readiness rules (pure)", () => {
  const ok = { link: "up" as const, storesOpen: true, sinceOwnBeatMs: 10, downAfterMs: 500, draining: false };
  expect(readiness(ok)).toEqual({ ready: true });
  expect(readiness({ ...ok, link: "down" }).ready).toBe(false);
  expect(readiness({ ...ok, storesOpen: false }).ready).toBe(false);
  expect(readiness({ ...ok, sinceOwnBeatMs: 300 }).ready).toBe(false);
  expect(readiness({ ...ok, draining: true }).ready).toBe(false);
});

test("an unreachable --cluster URL: one line, not ready, keeps retrying, ready once NATS answers", async () => {
  const port = freePort();
  const warnings: string[] = [];
  const n = node("late", [`nats://127.0.0.1:${port}`], warnings);
  await until(() => warnings.length > 0, 5000);
  expect(warnings).toEqual([
    `cluster: cannot reach NATS at nats://127.0.0.1:${port}; retrying, not ready until it answers`,
  ]);
  expect(n.readiness()).toEqual({ ready: false, reason: "NATS link connecting" });
  const dir = mkdtempSync(join(tmpdir(), "iris-nats-late-"));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const server = new NatsServer({ name: "late", port, httpPort: freePort(), storeDir: join(dir, "js") }, dir);
  cleanup.push(() => server.stop());
  await server.start();
  await until(() => n.readiness().ready);
}, 20_000);

let nats: NatsFixture;
test("losing NATS turns a node not-ready; the others see it down, then back", async () => {
  nats = await startNats();
  cleanup.push(() => nats.close());
  const a = node("a", nats.urls);
  const b = node("b", nats.urls);
  await until(() => a.readiness().ready && b.readiness().ready);
  await until(() => a.members().filter((m) => m.observed === "up").length === 2);
  expect(a.placement().size).toBe(2);

  await nats.servers[0]!.stop("SIGKILL");
  await until(() => !a.readiness().ready && !b.readiness().ready, 5000);
  await nats.servers[0]!.start();
  await until(() => a.readiness().ready && b.readiness().ready);
  await until(() => b.members().filter((m) => m.observed === "up").length === 2);
}, 30_000);
