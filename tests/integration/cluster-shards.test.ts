// A cluster node with 2 shards: one shard is killed and restarted by the supervisor. The users
// whose owner was on it and whose sockets are on the other shard must be re-attached to the
// restarted owner (addresses are global in cluster mode), so they keep receiving live without
// reconnecting. Fails when the restart is matched against a local shard index.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import { Ordinals } from "../../src/cluster/address.ts";
import { openLink } from "../../src/cluster/connect.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

/** Users spread by the kernel over the 2 shards; enough that some sit on shard 0 owned by shard 1. */
const USERS = 24;

let nats: NatsFixture;
let node: RunningServer;
let chaos = "";
const clients: IrisClient[] = [];

beforeAll(async () => {
  nats = await startNats();
  // Ordinal 0 goes to a placeholder, so that this node's global shard addresses differ from its
  // local indexes (with ordinal 0 they coincide and would hide the bug this test is for).
  const link = await openLink({ servers: nats.urls, nodeId: "placeholder", replicas: 1 });
  expect(await (await Ordinals.open(link.nc, 1)).claim("placeholder")).toBe(0);
  await link.close();
  node = await startServer({ shards: 2, args: ["--cluster", nats.urls[0]!, "--node-id", "solo", "--chaos"] });
  chaos = `http://127.0.0.1:${node.output().match(/chaos=(\d+)/)![1]}/chaos`;
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await node?.stop().catch(() => {});
  await nats?.close();
}, 30_000);

test("an owner shard restarts: its users on the other shard are re-attached and receive live", async () => {
  const got: string[][] = Array.from({ length: USERS }, () => []);
  for (let i = 0; i < USERS; i++) {
    const c = new IrisClient({ url: node.url, user: `r${i}` });
    c.onMessage((m) => got[i]!.push(m.text()));
    clients.push(c);
  }
  const sender = new IrisClient({ url: node.url, user: "sender", resendAfterMs: 1000 });
  clients.push(sender);
  await Promise.all(clients.map((c) => c.connect()));
  const reconnectsBefore = clients.map((c) => c.stats.reconnects);

  expect(await (await fetch(`${chaos}/shards/1/kill`, { method: "POST" })).json()).toEqual({ killed: true });
  const ready = () => fetch(`${node.http}/readyz`).then((r) => r.status === 200, () => false); // may hit the dead shard
  await Bun.sleep(200);
  await until(ready, "shard 1 back", 20_000);
  await until(() => clients.every((c) => c.state === "online"), "everyone online", 20_000);
  await Bun.sleep(300); // re-attaches settle

  const acks = await Promise.all(got.map((_, i) => sender.send(`r${i}`, `after-${i}`)));
  expect(acks.every((s) => s === "delivered" || s === "stored")).toBe(true);
  await until(() => got.every((g) => g.length === 1), "every user received live after the restart", 10_000);
  // Users that never reconnected (sockets on shard 0) received through a re-attached owner.
  const stayed = clients.slice(0, USERS).filter((c, i) => c.stats.reconnects === reconnectsBefore[i]).length;
  expect(stayed).toBeGreaterThan(0);
  expect(acks.filter((s) => s === "delivered").length).toBe(USERS);
  console.log(`shard restart: ${stayed} of ${USERS} users stayed connected; all ${USERS} messages delivered live`);
}, 60_000);

test("a retry of an id delivered before the node restarted is a duplicate (filter rebuilt from KV)", async () => {
  // Its own node (ordinal 2): the first node keeps running, the second is stopped and started again.
  const args = ["--cluster", nats.urls[0]!, "--node-id", "again"];
  let n = await startServer({ shards: 1, args });
  const dataDir = n.output().match(/data[- ]dir[= ]"?([^\s"]+)/)?.[1];
  const bob = new IrisClient({ url: n.url, user: "bob2" });
  const got: string[] = [];
  bob.onMessage((m) => got.push(m.text()));
  const alice = new IrisClient({ url: n.url, user: "alice2" });
  clients.push(bob, alice);
  await Promise.all([bob.connect(), alice.connect()]);
  expect(await alice.send("bob2", "once", { id: "fixed-id" })).toBe("delivered");
  await until(() => got.length === 1, "bob2 got it");
  await Bun.sleep(300); // bob2's cumulative ack settles the id (its key is remembered in KV)
  alice.close();
  bob.close();
  await n.stop();
  n = await startServer({ shards: 1, args, ...(dataDir ? { dataDir } : {}) });
  try {
    const again = new IrisClient({ url: n.url, user: "alice2" });
    clients.push(again);
    await again.connect();
    await Bun.sleep(500); // the owner's filter rebuild (one short scan) is done
    expect(await again.send("bob2", "once", { id: "fixed-id" })).toBe("duplicate");
  } finally {
    await n.stop();
  }
}, 60_000);
