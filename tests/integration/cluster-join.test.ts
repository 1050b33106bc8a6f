// Owner hand-over under load: 9 users on 3 nodes send to each other in a steady stream while a
// fourth node joins (about a quarter of the users' owners move to it) and later leaves gracefully
// (they move back). Nobody logs in again: every acked message must reach its connected recipient
// exactly once, through both moves (docs/CLUSTER.md, "Owner hand-over").

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import { startThreeNodes, type ThreeNodes } from "../helpers/cluster.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const USERS = 9;
/** Gap between one user's sends (ms): ~300 msgs/s overall. */
const SEND_GAP_MS = 30;
/** Traffic before the join, between the join and the leave, and after the leave (ms). */
const PHASE_MS = 2500;

let cluster: ThreeNodes;
let joiner: RunningServer | null = null;
const clients: IrisClient[] = [];

beforeAll(async () => {
  cluster = await startThreeNodes();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await joiner?.stop().catch(() => {});
  await cluster?.close();
}, 30_000);

/** Members a node's GET /v1/cluster shows up. */
async function upCount(http: string): Promise<number> {
  const v = await (await fetch(`${http}/v1/cluster`)).json() as { nodes: { state: string }[] };
  return v.nodes.filter((n) => n.state === "up").length;
}

/** A counter summed over the given nodes' /metrics. */
async function figure(https: string[], name: string): Promise<number> {
  let n = 0;
  for (const h of https) {
    const text = await (await fetch(`${h}/metrics`)).text();
    n += Number(text.match(new RegExp(`^${name} (\\d+)`, "m"))?.[1] ?? 0);
  }
  return n;
}

test("a node joins and leaves under load: every acked message reaches its connected recipient once", async () => {
  const nodes = cluster.nodes;
  const got: string[][] = Array.from({ length: USERS }, () => []);
  for (let i = 0; i < USERS; i++) {
    const c = new IrisClient({ urls: [nodes[i % 3]!.url], user: `u${i}`, resendAfterMs: 1000 });
    c.onMessage((m) => void got[i]!.push(m.text()));
    clients.push(c);
  }
  await Promise.all(clients.map((c) => c.connect()));

  const acks: Promise<SendStatus>[] = [];
  const texts: string[] = [];
  let sending = true;
  const sender = async (i: number) => {
    for (let k = 0; sending; k++) {
      const to = (i + 1 + (k % 3)) % USERS;
      const text = `u${i}:${k}:u${to}`;
      texts.push(text);
      acks.push(clients[i]!.send(`u${to}`, text));
      await Bun.sleep(SEND_GAP_MS);
    }
  };
  const senders = [...Array(USERS).keys()].map(sender);
  await Bun.sleep(PHASE_MS);
  joiner = await startServer({ shards: 1, args: ["--cluster", cluster.nats.urls[0]!, "--node-id", "iris4"] });
  await until(async () => (await upCount(nodes[0]!.http)) === 4, "the others see the fourth node", 15_000);
  await Bun.sleep(PHASE_MS);
  await joiner.stop(); // graceful: it leaves the member list at once
  joiner = null;
  await until(async () => (await upCount(nodes[0]!.http)) === 3, "the fourth node gone", 15_000);
  await Bun.sleep(PHASE_MS);
  sending = false;
  await Promise.all(senders);

  const statuses = await Promise.all(acks);
  expect(statuses.every((s) => s === "delivered" || s === "stored" || s === "duplicate")).toBe(true);
  const delivered = () => new Set(got.flat());
  const missing = () => texts.filter((t) => !delivered().has(t)).length;
  await until(() => missing() === 0, "every acked message at its connected recipient", 15_000)
    .catch((e) => Promise.reject(new Error(`${(e as Error).message}: ${missing()} of ${texts.length} missing`)));
  await Bun.sleep(1000); // a duplicate would arrive now
  for (let i = 0; i < USERS; i++) {
    expect(new Set(got[i]).size).toBe(got[i]!.length);
    expect(got[i]!.every((t) => t.endsWith(`:u${i}`))).toBe(true);
  }
  expect(got.reduce((a, g) => a + g.length, 0)).toBe(texts.length);
  expect(clients.every((c) => c.state === "online")).toBe(true);

  let inversions = 0;
  for (const g of got) {
    const last = new Map<string, number>();
    for (const t of g) {
      const [from, k] = t.split(":");
      if (Number(k) < (last.get(from!) ?? -1)) inversions++;
      else last.set(from!, Number(k));
    }
  }
  const https = nodes.map((n) => n.http);
  const adopted = await figure(https, "iris_cluster_late_adopted_total");
  const dropped = clients.reduce((a, c) => a + c.stats.duplicatesDropped, 0);
  console.log(
    `join/leave under load: ${texts.length} sends, all acked, each delivered once without a re-login; ` +
      `late rows adopted ${adopted} (the three staying nodes); copies dropped by the SDK ${dropped}; ` +
      `per-sender order: ${inversions} inversions`,
  );
  // Per-sender order through the moves (gateway/send-chain.ts): 0 in 6 of 6 runs since session 14;
  // a re-post refused by the fence used to lose its link and stall or invert (2 of 4 runs hung).
  expect(inversions).toBe(0);
}, 90_000);
