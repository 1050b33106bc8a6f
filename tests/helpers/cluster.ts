// Three Iris nodes on one real nats-server, as the cluster tests use them: started, waited for
// until every node is in the member list and has seen the others' heartbeats, and stopped by PID.

import { Kvm } from "@nats-io/kv";
import { type NatsLink, openLink } from "../../src/cluster/connect.ts";
import { NODES_BUCKET } from "../../src/cluster/membership-kv.ts";
import { type NatsFixture, startNats } from "./nats.ts";
import { type RunningServer, startServer, until } from "./server.ts";

/** Heartbeats go out every second: after this every node has seen every other one up. */
const SETTLE_MS = 1500;

export interface ThreeNodes {
  nats: NatsFixture;
  /** A NATS link of the test's own, to read the member list. */
  watcher: NatsLink;
  /** Nodes iris1..iris3, one shard each. */
  nodes: RunningServer[];
  close(): Promise<void>;
}

export interface ThreeNodeOptions {
  /** NATS to join (default: one fresh server); every URL is given to every node. */
  nats?: NatsFixture;
  /** --cluster-replicas (default 1). */
  replicas?: number;
}

export async function startThreeNodes(o: ThreeNodeOptions = {}): Promise<ThreeNodes> {
  const nats = o.nats ?? await startNats();
  const nodes: RunningServer[] = [];
  let watcher: NatsLink | null = null;
  // Stops the nodes and the watcher, and NATS when asked: close() always does (as before); a start
  // that fails part-way (no binary, a node that never joins) only if it started NATS itself, since
  // its caller gets no handle to close and a leaked nats-server outlives the test run.
  const stopAll = async (closeNats: boolean) => {
    for (const n of nodes) await n.stop().catch(() => {});
    await watcher?.close().catch(() => {});
    if (closeNats) await nats.close();
  };
  try {
    const replicas = ["--cluster-replicas", String(o.replicas ?? 1)];
    for (let i = 1; i <= 3; i++) {
      const args = ["--cluster", nats.urls.join(","), "--node-id", `iris${i}`, ...replicas];
      nodes.push(await startServer({ shards: 1, args }));
    }
    watcher = await openLink({ servers: nats.urls, nodeId: "watcher", replicas: 1 });
    const kv = await new Kvm(watcher.nc).open(NODES_BUCKET);
    await until(
      async () => (await Array.fromAsync(await kv.keys())).length === 3,
      "3 nodes in the member list",
      20_000,
    );
    await Bun.sleep(SETTLE_MS);
  } catch (e) {
    await stopAll(!o.nats);
    throw e;
  }
  return { nats, watcher, nodes, close: () => stopAll(true) };
}
