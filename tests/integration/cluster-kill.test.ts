// A node is SIGKILLed under load: the users it owned are re-placed on the survivors once it is
// seen down; their sessions re-attach to the new owners, whose backlog comes from JetStream, and
// the sender's unacked sends are retried by the SDK (same ids) and deduplicated. The recipient
// gets every message exactly once.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { Placement } from "../../src/cluster/placement.ts";
import { startThreeNodes, type ThreeNodes } from "../helpers/cluster.ts";
import { type RunningServer, until as waitUntil } from "../helpers/server.ts";

let cluster: ThreeNodes;
const nodes: RunningServer[] = [];
const clients: IrisClient[] = [];

/** Cluster convergence (heartbeats, re-placement) takes seconds: a longer default wait. */
const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 20_000) => waitUntil(cond, what, ms);

beforeAll(async () => {
  cluster = await startThreeNodes();
  nodes.push(...cluster.nodes);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
}, 30_000);

test("the owner's node is SIGKILLed mid-stream: every message arrives exactly once", async () => {
  const owners = new Placement([1, 2, 3].map((i) => ({ id: `iris${i}`, shards: 1 })));
  const o = Number(owners.ownerOf("bob")!.node.slice(4)) - 1;
  const alice = new IrisClient({ url: nodes[(o + 1) % 3]!.url, user: "alice", resendAfterMs: 1000 });
  const bob = new IrisClient({ url: nodes[(o + 2) % 3]!.url, user: "bob" });
  clients.push(alice, bob);
  const got: IrisMessage[] = [];
  bob.onMessage((m) => got.push(m));
  await alice.connect();
  await bob.connect();

  const N = 300;
  const first = await Promise.all(Array.from({ length: N / 2 }, (_, i) => alice.send("bob", `m${i}`)));
  expect(first.every((s) => s === "delivered" || s === "stored")).toBe(true);
  await nodes[o]!.kill(); // bob's owner: its in-memory state is gone
  const t0 = Date.now();
  const rest = await Promise.all(Array.from({ length: N / 2 }, (_, i) => alice.send("bob", `m${N / 2 + i}`)));
  const failoverMs = Date.now() - t0;
  expect(rest.every((s) => s === "delivered" || s === "stored")).toBe(true);
  await until(() => got.length >= N, "all 300 at bob", 30_000);
  await Bun.sleep(500); // a duplicate would arrive now
  const texts = got.map((m) => m.text());
  expect(new Set(texts).size).toBe(N);
  expect(texts.length).toBe(N);
  expect(texts.slice(0, N / 2)).toEqual(Array.from({ length: N / 2 }, (_, i) => `m${i}`));
  console.log(`node kill: sends after the kill all acked ${failoverMs} ms later`);
}, 60_000);
