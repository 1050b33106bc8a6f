// Split brain for real: one Iris node runs in its own network namespace (tests/helpers/netns.ts)
// and its NATS link is taken down while its clients, still connected over a second link, keep
// sending. Nothing it acks during the cut is false (every acked message is delivered, once); it
// turns not-ready and refuses sends, then closes its clients so their SDKs fail over; after the
// link heals, every message is delivered exactly once to its recipient, which stays connected
// (rows stored late by an owner that was being replaced are adopted by the current one: the
// owner hand-over, docs/CLUSTER.md), and presence converges on every node.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import { openLink } from "../../src/cluster/connect.ts";
import { ClusterInbox } from "../../src/cluster/inbox.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";
import { NetNs } from "../helpers/netns.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

/** Users per side: the cut node's and the healthy nodes'. */
const PER_SIDE = 3;
/** Gap between one user's sends (ms). */
const SEND_GAP_MS = 50;
/** How long the link stays down: longer than down-after (3.5 s), so the others re-place its users. */
const CUT_MS = 8000;

let nats: NatsFixture;
let ns: NetNs | null = null;
const nodes: RunningServer[] = [];
const clients: IrisClient[] = [];
let cutUrl = "";
let cutHttp = "";

beforeAll(async () => {
  ns = NetNs.create();
  nats = await startNats({ host: "0.0.0.0" });
  const port = nats.urls[0]!.split(":").at(-1);
  for (let i = 1; i <= 2; i++) {
    nodes.push(await startServer({ shards: 1, args: ["--cluster", nats.urls[0]!, "--node-id", `iris${i}`] }));
  }
  const cut = await startServer({
    shards: 1,
    wrap: ns.wrap,
    args: ["--cluster", `nats://${ns.natsIp}:${port}`, "--node-id", "iris3", "--host", ns.nodeIp, "--insecure"],
  });
  nodes.push(cut);
  cutUrl = `ws://${ns.nodeIp}:${cut.port}/ws`;
  cutHttp = `http://${ns.nodeIp}:${cut.port}`;
  const upEverywhere = async () => {
    const views = await Promise.all([...nodes.slice(0, 2).map((n) => n.http), cutHttp].map(clusterUp));
    return views.every((v) => v === 3);
  };
  await until(upEverywhere, "every node sees 3 up", 20_000);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const n of nodes) await n.stop().catch(() => {});
  await nats?.close();
  ns?.destroy(); // also when a test failed: no namespace or veth is left behind
}, 30_000);

/** How many members a node's GET /v1/cluster shows up (-1 when it does not answer). */
async function clusterUp(http: string): Promise<number> {
  try {
    const v = await (await fetch(`${http}/v1/cluster`)).json() as { nodes: { state: string }[] };
    return v.nodes.filter((n) => n.state === "up").length;
  } catch {
    return -1;
  }
}

/** On a failure: each node's errors and hand-over view, and what each user's inbox still holds. */
async function explain(users: string[]): Promise<void> {
  for (const [i, http] of [...nodes.slice(0, 2).map((n) => n.http), cutHttp].entries()) {
    const lines = nodes[i]!.output().split("\n").filter((l) => / (error|warn) /.test(l)).slice(-10);
    const view = await fetch(`${http}/v1/cluster`).then((r) => r.json(), () => null) as { handover?: unknown } | null;
    console.log(`iris${i + 1}: ${JSON.stringify(view?.handover)}\n${lines.join("\n")}`);
  }
  for (const u of users) {
    const seen = await Promise.all(
      [...nodes.slice(0, 2).map((n) => n.http), cutHttp].map((h) =>
        fetch(`${h}/v1/users/${u}`).then((r) => r.text(), (e) => String(e))
      ),
    );
    console.log(`user ${u} as iris1/iris2/iris3 see it: ${seen.join(" | ")}`);
  }
  const link = await openLink({ servers: nats.urls, nodeId: "explain", replicas: 1 });
  const inbox = await ClusterInbox.open(link.nc, { replicas: 1, ttlSec: 0 });
  for (const u of users) {
    const rows = await inbox.readBacklog(u, 0, 1000);
    const tags = new Map<string, number>();
    for (const r of rows) {
      const k = `${r.owner ?? "-"} seqs>${r.seq - (r.seq % 1024)}`;
      tags.set(k, (tags.get(k) ?? 0) + 1);
    }
    console.log(`inbox of ${u}: ${rows.length} rows ${JSON.stringify([...tags])}`);
  }
  await link.close();
}

/** The hand-over counters of a node's /metrics. */
async function lateFigures(http: string): Promise<{ adopted: number; fences: number }> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const figure = (name: string) => Number(text.match(new RegExp(`^${name} (\\d+)`, "m"))?.[1] ?? NaN);
  return { adopted: figure("iris_cluster_late_adopted_total"), fences: figure("iris_cluster_fences_total") };
}

/** Messages that arrived after a later one of the same sender (texts are sender:k:recipient). */
function inversions(got: Map<string, string[]>): number {
  let n = 0;
  for (const g of got.values()) {
    const last = new Map<string, number>();
    for (const t of g) {
      const [from, k] = t.split(":");
      if (Number(k) < (last.get(from!) ?? -1)) n++;
      else last.set(from!, Number(k));
    }
  }
  return n;
}

const readyz = (http: string) => fetch(`${http}/readyz`).then((r) => r.status, () => 0);

test("a node cut from NATS acks nothing false, turns not-ready, and converges after the heal", async () => {
  const healthy = nodes.slice(0, 2).map((n) => n.url);
  const users = [...Array(2 * PER_SIDE).keys()].map((i) => (i < PER_SIDE ? `cut${i}` : `ok${i}`));
  const got = new Map(users.map((u) => [u, [] as string[]]));
  const gotAt = new Map(users.map((u) => [u, [] as number[]]));
  for (const [i, u] of users.entries()) {
    const urls = i < PER_SIDE ? [cutUrl, ...healthy] : [...healthy.slice(i % 2), ...healthy.slice(0, i % 2), cutUrl];
    const c = new IrisClient({ urls, user: u, resendAfterMs: 1000 });
    c.onMessage((m) => {
      got.get(u)!.push(m.text());
      gotAt.get(u)!.push(Date.now());
    });
    clients.push(c);
  }
  await Promise.all(clients.map((c) => c.connect()));

  const acks: Promise<SendStatus>[] = [];
  const texts: string[] = [];
  const acksAt: number[] = [];
  let sending = true;
  let sent = 0;
  const sender = async (i: number) => {
    for (let k = 0; sending; k++) {
      // Every user sends to a user on the other side and to one on its own side, alternately.
      const to = k % 2 === 0
        ? users[(i + PER_SIDE) % users.length]!
        : users[(i + 1) % PER_SIDE + (i < PER_SIDE ? 0 : PER_SIDE)]!;
      const text = `${users[i]}:${k}:${to}`;
      const n = texts.push(text) - 1;
      acks.push(clients[i]!.send(to, text).then((st) => (acksAt[n] = Date.now(), st)));
      sent++;
      await Bun.sleep(SEND_GAP_MS);
    }
  };
  const senders = users.map((_, i) => sender(i));
  await Bun.sleep(1000);

  ns!.cut();
  const cutAt = Date.now();
  await until(async () => (await readyz(cutHttp)) === 503, "the cut node not ready", 10_000);
  const notReadyMs = Date.now() - cutAt;
  // Its users are closed once the others may have re-placed them, and fail over to a healthy node.
  await until(
    () => clients.slice(0, PER_SIDE).every((c) => c.url !== cutUrl && c.state === "online"),
    "failover",
    15_000,
  );
  const failoverMs = Date.now() - cutAt;
  expect(await readyz(cutHttp)).toBe(503);
  await Bun.sleep(Math.max(0, CUT_MS - (Date.now() - cutAt)));
  ns!.heal();
  const healAt = Date.now();
  await until(async () => (await readyz(cutHttp)) === 200, "the cut node ready again", 15_000);
  const readyAgainMs = Date.now() - healAt;
  await until(async () => (await clusterUp(cutHttp)) === 3, "the healed node sees 3 up", 15_000);
  await Bun.sleep(1000); // traffic across the healed cluster
  sending = false;
  await Promise.all(senders);

  const statuses = await Promise.all(acks);
  expect(statuses.every((s) => s === "delivered" || s === "stored" || s === "duplicate")).toBe(true);
  // Every message was acked; each must reach its recipient exactly once, without a new login.
  const delivered = () => new Set([...got.values()].flat());
  const doneAt = Date.now();
  const missing = () => `${texts.filter((t) => !delivered().has(t)).length} of ${texts.length} not delivered`;
  await until(() => texts.every((t) => delivered().has(t)), "every acked message delivered", 15_000)
    .catch(async (e) => {
      await explain(users);
      throw new Error(`${(e as Error).message}: ${missing()}`);
    });
  const lastMs = Date.now() - doneAt;
  await Bun.sleep(1000); // a duplicate would arrive now
  for (const [u, g] of got) {
    expect(new Set(g).size).toBe(g.length);
    expect(g.every((t) => t.endsWith(`:${u}`))).toBe(true);
  }
  expect([...got.values()].reduce((a, g) => a + g.length, 0)).toBe(sent);

  // Presence converges: every user is online as seen from every node, and a logout is seen everywhere.
  for (const asker of [clients[0]!, clients[PER_SIDE]!]) {
    for (const u of users) expect((await asker.status(u)).online).toBe(true);
  }
  clients[1]!.close();
  await until(async () => !(await clients[PER_SIDE]!.status(users[1]!)).online, "logout seen", 10_000);
  expect((await clients[0]!.status(users[1]!)).online).toBe(false);

  const handover = await Promise.all([...nodes.slice(0, 2).map((n) => n.http), cutHttp].map(lateFigures));
  const again = clients.slice(0, PER_SIDE).map((_, i) => (gotAt.get(users[i]!)!.find((t) => t > cutAt) ?? 0) - cutAt);
  console.log(
    `split brain: not ready ${notReadyMs} ms after the cut; its users on other nodes ${failoverMs} ms after; ` +
      `first delivery to them ${again.join(", ")} ms after; ready ${readyAgainMs} ms after the heal; ` +
      `${sent} sends, all acked, each delivered once to its connected recipient (the last ${lastMs} ms after ` +
      `the senders stopped); late rows adopted ${handover.map((h) => h.adopted).join("/")}, fences ` +
      `${handover.map((h) => h.fences).join("/")} (iris1/iris2/iris3); per-sender order: ${inversions(got)} inversions`,
  );
}, 90_000);
