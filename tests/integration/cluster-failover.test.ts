// SDK failover under load: 9 users spread over 3 nodes (each SDK is given all three URLs, its own
// node first) send to each other in a steady stream. One node is SIGKILLed mid-stream: its users'
// SDKs fail over to the next URL and resume from their last processed seq; their unacked sends are
// resent with the same ids. Every send is eventually acked, and every recipient gets every message
// exactly once. Failover time = kill -> each of the dead node's users receiving again.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import { startThreeNodes, type ThreeNodes } from "../helpers/cluster.ts";
import { type RunningServer, until } from "../helpers/server.ts";

/** Users in the test: a third of them sit on each node. */
const USERS = 9;
/** Sends per user: a steady stream, before and after the kill. */
const PER_USER = 60;
/** Gap between one user's sends (ms): ~400 msgs/s overall, load without saturating the 2 cores. */
const SEND_GAP_MS = 20;
/** The node is killed once this many sends per user have been issued. */
const KILL_AT = 20;

let cluster: ThreeNodes;
const nodes: RunningServer[] = [];
const clients: IrisClient[] = [];

beforeAll(async () => {
  cluster = await startThreeNodes();
  nodes.push(...cluster.nodes);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
}, 30_000);

const name = (i: number) => `u${i}`;

test("a third of the users lose their node: SDK failover, every acked message exactly once", async () => {
  const urls = nodes.map((n) => n.url);
  const got: string[][] = Array.from({ length: USERS }, () => []);
  /** When each user first received on a connection to another node than the one killed. */
  const againAt: number[] = Array(USERS).fill(0);
  const victim = 0; // users 0, 3, 6 live on node 0
  const victims = [...Array(USERS).keys()].filter((i) => i % 3 === victim);
  let killedAt = 0;
  for (let i = 0; i < USERS; i++) {
    const home = i % 3; // user i starts on node i % 3, then fails over along the list
    const c = new IrisClient({
      urls: [...urls.slice(home), ...urls.slice(0, home)],
      user: name(i),
      resendAfterMs: 1000,
    });
    c.onMessage((m) => {
      got[i]!.push(m.text());
      if (killedAt && !againAt[i] && clients[i]!.url !== urls[victim]) againAt[i] = Date.now();
    });
    clients.push(c);
  }
  await Promise.all(clients.map((c) => c.connect()));

  const acks: Promise<SendStatus>[] = [];
  const sender = async (i: number) => {
    for (let k = 0; k < PER_USER; k++) {
      if (i === 0 && k === KILL_AT) {
        await nodes[victim]!.kill();
        killedAt = Date.now();
      }
      // Each user sends to the next two users: every recipient hears from two senders.
      acks.push(clients[i]!.send(name((i + 1 + (k % 2)) % USERS), `${name(i)}:${k}`));
      await Bun.sleep(SEND_GAP_MS);
    }
  };
  await Promise.all([...Array(USERS).keys()].map(sender));
  const statuses = await Promise.all(acks);
  // "duplicate" is the ack of a resend whose original was already settled (the dedupe at work).
  expect(statuses.every((s) => s === "delivered" || s === "stored" || s === "duplicate")).toBe(true);
  const dupAcks = statuses.filter((s) => s === "duplicate").length;

  // Two senders each send half of their stream to every user: PER_USER messages per recipient.
  await until(() => got.every((g) => g.length >= PER_USER), "every message at its recipient", 30_000);
  await Bun.sleep(1000); // a duplicate would arrive now
  for (let i = 0; i < USERS; i++) {
    expect(got[i]!.length).toBe(PER_USER);
    expect(new Set(got[i]).size).toBe(PER_USER);
  }
  expect(victims.every((i) => clients[i]!.url !== urls[victim] && againAt[i]! > 0)).toBe(true);
  const failover = victims.map((i) => againAt[i]! - killedAt);
  // The survivors' /metrics count the members they see up: 3 before the kill, 2 now.
  for (const n of nodes.slice(1)) {
    const text = await (await fetch(`${n.http}/metrics`)).text();
    expect(text).toContain("\niris_cluster_nodes_up 2\n");
  }
  // Per-sender order is reported, not asserted: the owner hand-over that keeps it across a
  // membership change is not built yet (docs/CLUSTER.md).
  let reordered = 0;
  for (const g of got) {
    const last = new Map<string, number>();
    for (const t of g) {
      const [from, k] = t.split(":");
      if ((last.get(from!) ?? -1) > Number(k)) reordered++;
      last.set(from!, Number(k));
    }
  }
  const resends = clients.reduce((a, c) => a + c.stats.resends, 0);
  console.log(
    `failover: ${victims.length} users moved off the killed node; ${acks.length} sends all acked, ` +
      `each delivered once (${reordered} out of per-sender order); SDK resends ${resends}, ${dupAcks} acked duplicate; its users receiving again ${
        failover.join(", ")
      } ms after the kill`,
  );
}, 90_000);
