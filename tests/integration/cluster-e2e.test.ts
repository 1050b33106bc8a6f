// The first end-to-end cluster test: 3 Iris nodes (the built binary, --cluster) + 1 nats-server
// with JetStream file storage. Two users on different nodes exchange 1,000 messages: complete,
// in order, exactly once. An offline user's messages are stored in JetStream and delivered on
// login to a different node than the sender's.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IrisClient, type IrisError, type IrisMessage } from "../../src/client/index.ts";
import { Placement } from "../../src/cluster/placement.ts";
import { type NatsFixture } from "../helpers/nats.ts";
import { startThreeNodes, type ThreeNodes } from "../helpers/cluster.ts";
import { type RunningServer, until as waitUntil } from "../helpers/server.ts";
import { RawSocket } from "../helpers/raw.ts";

let cluster: ThreeNodes;
let nats: NatsFixture;
const nodes: RunningServer[] = [];
const clients: IrisClient[] = [];

/** Cluster convergence (heartbeats, re-placement) takes seconds: a longer default wait. */
const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 20_000) => waitUntil(cond, what, ms);

beforeAll(async () => {
  cluster = await startThreeNodes();
  nats = cluster.nats;
  nodes.push(...cluster.nodes);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
}, 30_000);

async function client(node: number, user: string): Promise<{ c: IrisClient; got: IrisMessage[] }> {
  const c = new IrisClient({ url: nodes[node]!.url, user });
  const got: IrisMessage[] = [];
  c.onMessage((m) => got.push(m));
  clients.push(c);
  await c.connect();
  return { c, got };
}

/** Three distinct nodes for (sender, recipient's socket, recipient's owner): every hop crosses NATS. */
function spread(recipient: string): { sender: number; socket: number; owner: number } {
  const owners = new Placement([1, 2, 3].map((i) => ({ id: `iris${i}`, shards: 1 })));
  const o = Number(owners.ownerOf(recipient)!.node.slice(4)) - 1;
  return { sender: (o + 1) % 3, socket: (o + 2) % 3, owner: o };
}

/** One figure of a node's /metrics (NaN when absent). */
async function metric(node: RunningServer, name: string): Promise<number> {
  const text = await (await fetch(`${node.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}

describe("3 Iris nodes + NATS", () => {
  test("GET /v1/cluster lists every node up, as each node sees it", async () => {
    for (const n of nodes) {
      const v = await (await fetch(`${n.http}/v1/cluster`)).json() as {
        ready: boolean;
        nodes: { id: string; state: string }[];
      };
      expect(v.ready).toBe(true);
      expect(v.nodes.map((x) => `${x.id}:${x.state}`)).toEqual(["iris1:up", "iris2:up", "iris3:up"]);
      // The admin API's overview (what the console shows) lists the same members.
      const st = await (await fetch(`${n.http}/v1/stats`)).json() as { nodes: { id: string; state: string }[] };
      expect(st.nodes.map((x) => `${x.id}:${x.state}`)).toEqual(["iris1:up", "iris2:up", "iris3:up"]);
    }
  });

  test("1,000 messages between users on different nodes: complete, in order, exactly once", async () => {
    const at = spread("bob");
    const a = await client(at.sender, "alice");
    const b = await client(at.socket, "bob");
    const N = 1000;
    const acks = await Promise.all(Array.from({ length: N }, (_, i) => a.c.send("bob", `m${i}`)));
    expect(acks.every((s) => s === "delivered" || s === "stored")).toBe(true);
    await until(() => b.got.length >= N, "bob's 1000 messages");
    await Bun.sleep(200); // anything extra (a duplicate) would arrive now
    expect(b.got.map((m) => m.text())).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
    const seqs = b.got.map((m) => m.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    expect(await b.c.send("alice", "reply")).toBe("delivered");
    await until(() => a.got.length === 1, "alice's reply");
    expect(a.got[0]!.from).toBe("bob");
  }, 60_000);

  test("an offline user's messages are stored, then delivered on login to a different node", async () => {
    const at = spread("carol");
    const d = await client(at.sender, "dave");
    const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => d.c.send("carol", `c${i}`)));
    expect(new Set(acks)).toEqual(new Set(["stored"]));
    const carol = await client(at.socket, "carol");
    await until(() => carol.got.length >= 100, "carol's backlog");
    await Bun.sleep(200);
    expect(carol.got.map((m) => m.text())).toEqual(Array.from({ length: 100 }, (_, i) => `c${i}`));
    expect(carol.got.every((m) => m.from === "dave")).toBe(true);
  }, 60_000);

  test("a login on another node replaces the first (4001); an older socket's login read late does not", async () => {
    const at = spread("erin"); // both sockets on nodes other than erin's owner: every attach crosses NATS
    const login = JSON.stringify({ type: "login", user: "erin" });
    const logIn = async (node: number): Promise<RawSocket> => {
      const s = await RawSocket.open(nodes[node]!.url);
      s.send(login);
      expect(JSON.parse(String(await s.next()))).toMatchObject({ type: "login_ok" });
      return s;
    };
    const first = await logIn(at.sender);
    await Bun.sleep(300);
    const second = await logIn(at.socket);
    expect(await first.closed(10_000)).toBe(4001); // the newest login wins
    // Two sockets opened 300 ms apart on two nodes, whose logins arrive the other way round: the
    // older socket's login (a login read late, or held in a NATS reconnect buffer) must not close
    // the newer one. By arrival order it did, and that client's SDK stopped for good (REPLACED).
    const older = await RawSocket.open(nodes[at.sender]!.url);
    await Bun.sleep(300);
    const newer = await RawSocket.open(nodes[at.socket]!.url);
    newer.send(login);
    expect(JSON.parse(String(await newer.next()))).toMatchObject({ type: "login_ok" });
    expect(await second.closed(10_000)).toBe(4001);
    older.send(login);
    expect(await older.closed(10_000)).toBe(4001);
    const f = await client(at.owner, "frank");
    const sent = f.c.send("erin", "still here");
    const frame = JSON.parse(String(await newer.next(10_000))) as { type: string; seq: number; body: string };
    expect([frame.type, frame.body]).toEqual(["msg", "still here"]);
    newer.send(JSON.stringify({ type: "ack", seq: frame.seq }));
    expect(await sent).toBe("delivered");
    expect(newer.closeCode).toBeNull();
    newer.close();
  }, 60_000);

  test("/metrics shows the cluster figures", async () => {
    // Round-trips are measured every 2 s; the owner stats (and these figures) are published periodically.
    await until(async () => (await metric(nodes[0]!, "iris_cluster_nats_rtt_ms")) > 0, "an RTT figure", 5_000);
    for (const n of nodes) {
      expect(await metric(n, "iris_cluster_nodes_up")).toBe(3);
      expect(await metric(n, "iris_cluster_port_items_out_total")).toBeGreaterThan(0);
      expect(await metric(n, "iris_cluster_port_items_in_total")).toBeGreaterThan(0);
      expect(await metric(n, "iris_cluster_nats_reconnects_total")).toBe(0);
      expect(await metric(n, "iris_cluster_garbage_total")).toBe(0);
    }
    // The offline user's messages were appended to JetStream by their owner's node.
    const published = await Promise.all(nodes.map((n) => metric(n, "iris_cluster_js_publish_total")));
    const publishMs = await Promise.all(nodes.map((n) => metric(n, "iris_cluster_js_publish_ms_total")));
    expect(published.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(1);
    expect(publishMs.reduce((a, b) => a + b)).toBeGreaterThan(0);
  }, 20_000);

  test("a node without NATS answers /readyz 503; all are ready and route again after NATS restarts", async () => {
    const itemsBefore = await metric(nodes[0]!, "iris_cluster_port_items_out_total");
    const readyz = async (n: RunningServer) => (await fetch(`${n.http}/readyz`)).status;
    expect(await Promise.all(nodes.map(readyz))).toEqual([200, 200, 200]);
    // A client already connected when NATS goes: its sends are refused (never acked), then it is
    // closed with a reconnect-advised code so that its SDK fails over.
    const cut = new IrisClient({ url: nodes[0]!.url, user: "cut", retryRateLimited: false, autoReconnect: false });
    clients.push(cut);
    await cut.connect();
    await nats.servers[0]!.stop("SIGKILL");
    await until(async () => (await Promise.all(nodes.map(readyz))).every((s) => s === 503), "all not ready", 10_000);
    const refused = await cut.send("bob", "during the cut").then((s) => `acked ${s}`, (e: IrisError) => e.code);
    expect(refused).toBe("SERVER_BUSY");
    await until(() => cut.state === "offline", "the cut node closes its clients", 10_000);
    await nats.servers[0]!.start();
    await until(async () => (await Promise.all(nodes.map(readyz))).every((s) => s === 200), "all ready again");
    const at = spread("bob");
    const a = await client(at.sender, "alice2");
    const b = await client(at.socket, "bob");
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => a.c.send("bob", `after${i}`)));
    expect(acks.every((x) => x === "delivered" || x === "stored")).toBe(true);
    await until(() => b.got.length >= 50, "bob's messages after the restart");
    expect(b.got.map((m) => m.text())).toEqual(Array.from({ length: 50 }, (_, i) => `after${i}`));
    // The figures moved: every node counts its reconnect, and traffic crossed nodes again.
    await until(async () => (await metric(nodes[0]!, "iris_cluster_port_items_out_total")) > itemsBefore, "items");
    await until(
      async () => {
        const r = await Promise.all(nodes.map((n) => metric(n, "iris_cluster_nats_reconnects_total")));
        return r.every((x) => x >= 1);
      },
      "every node's reconnect counted",
      5_000,
    );
  }, 60_000);
});
