// The split-brain loss (docs/CLUSTER.md, branch cl-ops), made deterministic: a recipient logs in to
// node iris3 and is attached to its owner on iris2, which has never sent iris3 a batch; iris3's
// NATS link is then cut (network namespace) for less time than it takes the cut node to close its
// clients, while a sender on iris1 keeps sending. Every delivery of the cut is lost on NATS. The
// first batch iris3 hears from iris2 after the heal carries an epoch it has never seen: before the
// fix that counted as a fresh start, not a gap, so the link went on, the client acked the next live
// seq, and the acked rows of the cut were deleted undelivered. Now it is a gap: iris3 closes the
// recipient, which resumes from its last seq and receives everything.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import { Placement } from "../../src/cluster/placement.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";
import { NetNs } from "../helpers/netns.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

/** The cut: shorter than noticing it (~1.7 s) plus down-after (3.5 s), so iris3 does not close its clients. */
const CUT_MS = 4000;
/** From the recipient's login to the cut: its attach reaches iris2 first. */
const LOGIN_BEFORE_CUT_MS = 50;
/** Gap between two sends. */
const SEND_GAP_MS = 50;
/** Sending goes on this long after the heal. */
const AFTER_HEAL_MS = 2000;

let nats: NatsFixture;
let ns: NetNs | null = null;
const nodes: RunningServer[] = [];
const clients: IrisClient[] = [];
const urls: string[] = [];

beforeAll(async () => {
  ns = NetNs.create();
  nats = await startNats({ host: "0.0.0.0" });
  const port = nats.urls[0]!.split(":").at(-1);
  for (let i = 1; i <= 2; i++) {
    nodes.push(await startServer({ shards: 1, args: ["--cluster", nats.urls[0]!, "--node-id", `iris${i}`] }));
  }
  nodes.push(
    await startServer({
      shards: 1,
      wrap: ns.wrap,
      args: ["--cluster", `nats://${ns.natsIp}:${port}`, "--node-id", "iris3", "--host", ns.nodeIp, "--insecure"],
    }),
  );
  urls.push(nodes[0]!.url, nodes[1]!.url, `ws://${ns.nodeIp}:${nodes[2]!.port}/ws`);
  const https = urls.map((u) => u.replace("ws://", "http://").replace("/ws", ""));
  await until(
    async () => (await Promise.all(https.map(upCount))).every((n) => n === 3),
    "every node sees 3 up",
    20_000,
  );
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const n of nodes) await n.stop().catch(() => {});
  await nats?.close();
  ns?.destroy();
}, 30_000);

async function upCount(http: string): Promise<number> {
  try {
    const v = await (await fetch(`${http}/v1/cluster`)).json() as { nodes: { state: string }[] };
    return v.nodes.filter((n) => n.state === "up").length;
  } catch {
    return -1;
  }
}

/** The first of `prefix0..` whose owner is `node` with all three nodes up, and with iris3 gone. */
function ownedBy(node: string, prefix: string): string {
  const three = new Placement([1, 2, 3].map((i) => ({ id: `iris${i}`, shards: 1 })));
  const two = new Placement([1, 2].map((i) => ({ id: `iris${i}`, shards: 1 })));
  const ok = (u: string) => three.ownerOf(u)!.node === node && two.ownerOf(u)!.node === node;
  return Array.from({ length: 500 }, (_, i) => `${prefix}${i}`).find(ok)!;
}

test("a recipient on a node cut just after its first attach gets every acked message after the heal", async () => {
  const sender = new IrisClient({ urls: [urls[0]!, urls[1]!], user: ownedBy("iris1", "first-snd") });
  clients.push(sender);
  await sender.connect();
  const recipientId = ownedBy("iris2", "first-rcp");
  const recipient = new IrisClient({ urls: [urls[2]!, urls[0]!, urls[1]!], user: recipientId });
  clients.push(recipient);
  const got: string[] = [];
  recipient.onMessage((m) => got.push(m.text()));
  await recipient.connect();
  await Bun.sleep(LOGIN_BEFORE_CUT_MS);
  ns!.cut();
  const acks: Promise<SendStatus>[] = [];
  let k = 0;
  const sending = setInterval(() => acks.push(sender.send(recipientId, `m${k++}`)), SEND_GAP_MS);
  await Bun.sleep(CUT_MS);
  ns!.heal();
  await Bun.sleep(AFTER_HEAL_MS);
  clearInterval(sending);
  const statuses = await Promise.all(acks);
  expect(statuses.every((s) => s === "delivered" || s === "stored")).toBe(true);
  expect(statuses.filter((s) => s === "stored").length).toBeGreaterThan(0); // the cut's deliveries went to the store
  await until(() => got.length >= k, `${k} messages at the recipient`, 20_000).catch(() => {});
  const missing = Array.from({ length: k }, (_, i) => `m${i}`).filter((t) => !got.includes(t));
  expect(missing).toEqual([]);
  expect(got.length).toBe(k); // and none twice
}, 90_000);
