// GET /v1/cluster and /metrics show every member's logged-in connections (issue 10), as each
// node reported them in its heartbeat: two real Iris nodes (the built binary, --cluster) on one
// real nats-server. Node A runs two shards, so its figure must be the sum over its shards; sockets
// that never logged in do not count. B must see A's count rise, then fall as clients leave.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

/** A few heartbeats (1 s each by default): long enough for a count to reach the other node. */
const SEEN_WITHIN_MS = 8000;
/** Clients logged in to node A. */
const N = 12;
/** Of them, how many leave. */
const LEAVING = 5;

let nats: NatsFixture;
let a: RunningServer;
let b: RunningServer;
const clients: IrisClient[] = [];
const raw: WebSocket[] = [];

beforeAll(async () => {
  nats = await startNats();
  const args = (id: string) => ["--cluster", nats.urls.join(","), "--node-id", id];
  a = await startServer({ shards: 2, args: args("conns-a") });
  b = await startServer({ shards: 1, args: args("conns-b") });
  await until(
    async () => (await members(b)).filter((n) => n.state === "up").length === 2,
    "both nodes up on B",
    20_000,
  );
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const w of raw) w.close();
  await a?.stop().catch(() => {});
  await b?.stop().catch(() => {});
  await nats?.close();
}, 30_000);

interface Member {
  id: string;
  state: string;
  conns: number;
  lastHeartbeatMsAgo: number;
}

async function members(n: RunningServer): Promise<Member[]> {
  const v = await (await fetch(`${n.http}/v1/cluster`)).json() as { nodes: Member[] };
  return v.nodes;
}

async function connsOf(observer: RunningServer, id: string): Promise<number | undefined> {
  return (await members(observer)).find((m) => m.id === id)?.conns;
}

/** One labelled figure of /metrics, e.g. iris_cluster_member_connections{node="x"} (NaN when absent). */
async function metric(n: RunningServer, series: string): Promise<number> {
  const text = await (await fetch(`${n.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

test(
  "a node's logged-in connections reach the other node's /v1/cluster and /metrics, and fall as clients leave",
  async () => {
    expect(await connsOf(b, "conns-a")).toBe(0);

    // Sockets that never log in are connections, not logged-in ones: they must not count.
    for (let i = 0; i < 3; i++) {
      const w = new WebSocket(a.url);
      raw.push(w);
      await new Promise((resolve, reject) => ((w.onopen = resolve), (w.onerror = reject)));
    }
    for (let i = 0; i < N; i++) {
      const c = new IrisClient({ url: a.url, user: `conns-user-${i}` });
      clients.push(c);
      await c.connect();
    }
    await until(async () => (await connsOf(b, "conns-a")) === N, `B to see ${N} on A`, SEEN_WITHIN_MS);
    // Every node shows the same figure for A, A itself too, and B's own stays 0.
    expect(await connsOf(a, "conns-a")).toBe(N);
    expect(await connsOf(a, "conns-b")).toBe(0);
    expect(await metric(b, 'iris_cluster_member_connections{node="conns-a"}')).toBe(N);
    expect(await metric(b, 'iris_cluster_member_up{node="conns-a"}')).toBe(1);
    expect(await metric(a, "iris_logged_in_connections")).toBe(N);
    expect(await metric(a, "iris_connections")).toBe(N + 3);

    for (const c of clients.splice(0, LEAVING)) c.close();
    await until(
      async () => (await connsOf(b, "conns-a")) === N - LEAVING,
      `B to see ${N - LEAVING} on A`,
      SEEN_WITHIN_MS,
    );
    expect(await metric(b, 'iris_cluster_member_connections{node="conns-a"}')).toBe(N - LEAVING);
    const age = await metric(b, 'iris_cluster_member_heartbeat_age_seconds{node="conns-a"}');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(3.5); // heard within down-after, as its state "up" says
  },
  60_000,
);
