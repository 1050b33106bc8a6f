// Per-sender order at the owner (docs/CLUSTER.md, "Order through refusals"), on two real Iris
// nodes and a real nats-server. The test plays a socket shard of node iris1 on the wire: it
// publishes stamped batches of routes to iris2's shard subject, as iris1's port would, and can so
// "lose" a batch (skip its count) deterministically. The recipient is a real SDK client of iris2,
// which owns it; what it receives, in order, is the verdict.
//   - A lost route: the owner must not accept a later route of that shard before the lost one's
//     resend (route-gap.ts; iris1 answers the owner's notice for real).
//   - The owner fence: after the owner refused a route, a later route of the same connection to
//     the same recipient, already on the wire, is refused until the refused id comes back.
//   - A re-attach of another connection never tells the recipient's live login to stop (REPLACED).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { globalShard, Ordinals } from "../../src/cluster/address.ts";
import { type NatsLink, openLink } from "../../src/cluster/connect.ts";
import { Placement } from "../../src/cluster/placement.ts";
import { encodeBatch, nodeSubject } from "../../src/cluster/port-codec.ts";
import type { PortMsg, RouteMsg } from "../../src/router/wire.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let nats: NatsFixture;
let link: NatsLink;
const nodes: RunningServer[] = [];
const clients: IrisClient[] = [];
/** iris1's shard 0 (global address): the socket shard the test plays. */
let src = -1;

beforeAll(async () => {
  nats = await startNats();
  for (const id of ["iris1", "iris2"]) {
    nodes.push(await startServer({ shards: 1, args: ["--cluster", nats.urls.join(","), "--node-id", id] }));
  }
  await until(async () => (await Promise.all(nodes.map(upNodes))).every((n) => n === 2), "2 nodes up", 20_000);
  link = await openLink({ servers: nats.urls, nodeId: "test", replicas: 1 });
  src = globalShard((await Ordinals.open(link.nc, 1)).ordinalOf("iris1")!, 0);
}, 40_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await link?.close();
  for (const n of nodes) await n.stop().catch(() => {});
  await nats?.close();
}, 20_000);

async function upNodes(n: RunningServer): Promise<number> {
  const v = await (await fetch(`${n.http}/v1/cluster`)).json() as { nodes: { state: string }[] };
  return v.nodes.filter((x) => x.state === "up").length;
}

/** A fresh user name owned by iris2 (two nodes, one shard each). */
function ownedByIris2(prefix: string): string {
  const p = new Placement([{ id: "iris1", shards: 1 }, { id: "iris2", shards: 1 }]);
  for (let i = 0;; i++) if (p.ownerOf(`${prefix}${i}`)!.node === "iris2") return `${prefix}${i}`;
}

async function recipient(user: string): Promise<{ c: IrisClient; got: IrisMessage[] }> {
  const c = new IrisClient({ url: nodes[1]!.url, user });
  const got: IrisMessage[] = [];
  c.onMessage((m) => got.push(m));
  clients.push(c);
  await c.connect();
  return { c, got };
}

/** What iris1's port would publish: batch number `n` of `epoch` to iris2's shard 0. */
async function publish(epoch: number, n: number, items: PortMsg[]): Promise<void> {
  link.nc.publish(nodeSubject("iris2", 0), encodeBatch(items, { src, epoch, n }));
  await link.nc.flush();
}

function route(to: string, id: string, conn: number): RouteMsg {
  const now = Date.now();
  return { t: "route", to, from: "sally", id, body: new TextEncoder().encode(id), ts: now, t0: now, o: src, c: conn };
}

/** iris2's count of routes refused after a route gap. */
async function gapRefused(): Promise<number> {
  const v = await (await fetch(`${nodes[1]!.http}/v1/cluster`)).json() as { handover: { routeGapRefused?: number } };
  return v.handover.routeGapRefused ?? 0;
}

/** Time for iris2's notice to reach iris1 and iris1's answer to come back (loopback: milliseconds). */
const ANSWER_MS = 500;

describe("per-sender order at the owner (two nodes, real nats-server)", () => {
  test("a lost route: a later route of that shard is not taken before the lost one's resend", async () => {
    const r = ownedByIris2("gapr");
    const { got } = await recipient(r);
    const epoch = 1001;
    await publish(epoch, 1, [route(r, "m1", 7)]);
    await until(() => got.length === 1, "m1 delivered");
    // Batch 2 (m2) is lost on NATS; batch 3 carries m3, sent after it on the same connection.
    const before = await gapRefused();
    await publish(epoch, 3, [route(r, "m3", 7)]);
    await Bun.sleep(ANSWER_MS);
    // The sender's SDK, after its connection closed (m2 unanswered), logs in again and resends
    // everything unacked in order, then goes on.
    await publish(epoch, 4, [route(r, "m2", 8), route(r, "m3", 8), route(r, "m4", 8)]);
    await until(() => got.length >= 4, "4 messages delivered");
    await Bun.sleep(200);
    expect(got.map((m) => m.text())).toEqual(["m1", "m2", "m3", "m4"]);
    expect(await gapRefused()).toBe(before + 1);
  }, 20_000);

  test(
    "the owner fence: a later send on the wire when its connection's earlier one was refused waits for it",
    async () => {
      const r = ownedByIris2("fencer");
      const { got } = await recipient(r);
      const epoch = 2002;
      await publish(epoch, 1, [route(r, "x1", 9)]);
      await until(() => got.length === 1, "x1 delivered");
      await publish(epoch, 3, [route(r, "x3", 9)]); // after a lost batch: x3 refused (SERVER_BUSY)
      await Bun.sleep(ANSWER_MS); // the gap is closed by iris1's answer
      // x4 left before its connection heard of x3's refusal: the owner holds the order.
      await publish(epoch, 4, [route(r, "x4", 9)]);
      await Bun.sleep(100);
      await publish(epoch, 5, [route(r, "x2", 10), route(r, "x3", 10), route(r, "x4", 10)]);
      await until(() => got.length >= 4, "4 messages delivered");
      await Bun.sleep(200);
      expect(got.map((m) => m.text())).toEqual(["x1", "x2", "x3", "x4"]);
    },
    20_000,
  );

  test("a late re-attach of another connection never tells the recipient's live login to stop (REPLACED)", async () => {
    const r = ownedByIris2("reatt");
    const { c, got } = await recipient(r);
    const states: string[] = [];
    c.onState((s) => states.push(s));
    // A session of r on iris1 whose client already left, re-attaching after r's login here: it
    // takes the link, r's connection is closed with a reconnect-advised code, r's SDK logs in
    // again and wins the link back (on main: closed with REPLACED, and the SDK stops for good).
    await publish(3003, 1, [{ t: "attach", user: r, shard: src, conn: 77, v0: false, resume: 0, re: true }]);
    await until(() => states.at(-1) === "online", "r back online after its re-login", 5000);
    await publish(3003, 2, [route(r, "after", 11)]);
    await until(() => got.length >= 1, "a message after the re-attach", 5000);
    expect(states).not.toContain("replaced");
    expect(got.map((m) => m.text())).toEqual(["after"]);
  }, 20_000);
});
