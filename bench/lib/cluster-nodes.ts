// A cluster under test: one nats-server (JetStream, file storage in a temp dir, from
// tests/helpers/nats.ts) and N Iris nodes (dist/iris --cluster, node ids iris1..irisN) on this
// machine, waited for until every node is ready and sees all N members up. The bench computes
// each user's owner with the nodes' own placement function, so it can put a user's socket on its
// owner (no network hop) or away from it (NATS hops). Everything is stopped by PID.

import { Placement } from "../../src/cluster/placement.ts";
import { type NatsFixture, startNats } from "../../tests/helpers/nats.ts";
import { type Ctx, noteIris, sleep, stopServer } from "./context.ts";
import { status } from "./procstat.ts";
import { type ServerProc, startIris } from "./server.ts";

/** Nodes started at once: a burst of 10 JIT-compiling binaries on 2 cores would time out. */
const START_CONCURRENCY = 3;
/** Membership: heartbeats every 1 s; on a loaded machine the first view can take a while. */
const MEMBERSHIP_TIMEOUT_MS = 60_000;
const POLL_MS = 250;

export interface ClusterRun {
  nats: NatsFixture;
  nodes: ServerProc[];
  ids: string[];
  shards: number;
  /** Index (into nodes) of the node that owns `user` while every node is up. */
  ownerIndex(user: string): number;
  /** Pids of the nodes still running plus nats-server: the "server" side for CPU figures. */
  serverPids(): number[];
  natsPid(): number;
  /** VmRSS (KB) per node; null for a node that is gone. */
  rssKb(): (number | null)[];
  /** SIGKILLs node i (a crash). */
  kill(i: number): Promise<void>;
  stop(): Promise<void>;
}

interface ClusterView {
  ready: boolean;
  nodes: { id: string; state: string }[];
}

async function view(http: string): Promise<ClusterView | null> {
  try {
    const r = await fetch(`${http}/v1/cluster`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? (await r.json()) as ClusterView : null;
  } catch {
    return null;
  }
}

/** Resolves once every node is ready and lists all `ids` as up. */
async function waitMembership(nodes: ServerProc[], ids: string[]): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const views = await Promise.all(nodes.map((n) => view(n.http)));
    const complete = views.every((v) =>
      v?.ready && ids.every((id) => v.nodes.some((m) => m.id === id && m.state === "up"))
    );
    if (complete) return performance.now() - t0;
    if (performance.now() - t0 > MEMBERSHIP_TIMEOUT_MS) {
      const seen = views.map((v, i) => `${ids[i]}: ${v ? v.nodes.filter((m) => m.state === "up").length : "?"} up`);
      throw new Error(`cluster did not converge in ${MEMBERSHIP_TIMEOUT_MS} ms (${seen.join(", ")})`);
    }
    await sleep(POLL_MS);
  }
}

async function startNodes(ctx: Ctx, natsUrl: string, ids: string[], shards: number): Promise<ServerProc[]> {
  const nodes: ServerProc[] = new Array(ids.length);
  let next = 0;
  const one = async () => {
    while (next < ids.length) {
      const i = next++;
      nodes[i] = await startIris({
        binary: ctx.args.binary ?? undefined,
        shards,
        args: ["--cluster", natsUrl, "--node-id", ids[i]!],
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(START_CONCURRENCY, ids.length) }, one));
  } catch (e) {
    await Promise.all(nodes.filter(Boolean).map((n) => n.stop()));
    throw e;
  }
  return nodes;
}

export async function startCluster(ctx: Ctx, n: number, shards: number): Promise<ClusterRun> {
  const nats = await startNats();
  const ids = Array.from({ length: n }, (_, i) => `iris${i + 1}`);
  let nodes: ServerProc[];
  try {
    nodes = await startNodes(ctx, nats.urls[0]!, ids, shards);
  } catch (e) {
    await nats.close();
    throw e;
  }
  const dead = new Set<number>();
  const run: ClusterRun = {
    nats,
    nodes,
    ids,
    shards,
    ownerIndex: ownerIndexFn(ids, shards),
    serverPids: () => [...nodes.filter((_, i) => !dead.has(i)).map((x) => x.pid), nats.servers[0]!.pid],
    natsPid: () => nats.servers[0]!.pid,
    rssKb: () => nodes.map((x, i) => (dead.has(i) ? null : rssOf(x.pid))),
    async kill(i) {
      dead.add(i);
      await nodes[i]!.kill();
    },
    async stop() {
      for (const [i, x] of nodes.entries()) {
        if (dead.has(i)) await x.stop();
        else await stopServer(ctx, x, ids[i]!);
      }
      await nats.close();
    },
  };
  try {
    noteIris(ctx, nodes[0]!);
    const ms = await waitMembership(nodes, ids);
    ctx.log(`${n} nodes + nats-server ready; every node sees ${n} up after ${Math.round(ms)} ms`);
  } catch (e) {
    await run.stop();
    throw e;
  }
  return run;
}

/** The nodes' own placement over the full member list (every node `shards` shards). */
export function ownerIndexFn(ids: string[], shards: number): (user: string) => number {
  const p = new Placement(ids.map((id) => ({ id, shards })));
  const index = new Map(ids.map((id, i) => [id, i]));
  return (user) => index.get(p.ownerOf(user)!.node)!;
}

export function rssOf(pid: number): number | null {
  try {
    return status(pid).vmRssKb;
  } catch {
    return null;
  }
}
