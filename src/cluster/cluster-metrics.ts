// The cluster figures of one shard for /metrics: counters come from the shard's own port, inbox
// and link (summed over shards by the reader); gauges that every shard would report alike (nodes
// up, NATS round-trip) are written by the node's first shard only, so that the sum is the figure.

import type { Field } from "../observe/metrics.ts";
import type { InboxCounters } from "./inbox.ts";
import type { NodeView } from "./membership.ts";
import type { PortCounters } from "./port.ts";

/** How often each shard measures its NATS round-trip (a PING/PONG; cheap). */
export const RTT_EVERY_MS = 2000;

export interface ClusterSources {
  /** This shard's index inside its node: gauges come from shard 0 only. */
  shard: number;
  nodesUp: number;
  rttMs: number;
  reconnects: number;
  port: PortCounters | null;
  inbox: InboxCounters | null;
  /** Hand-over: late rows adopted, and fences after a cut. */
  adopted: number;
  fences: number;
}

/** Pure: the metric fields this shard writes to its own slot. */
export function clusterFigures(s: ClusterSources): [Field, number][] {
  const gauges = s.shard === 0;
  return [
    ["clusterNodesUp", gauges ? s.nodesUp : 0],
    ["natsRttMs", gauges ? s.rttMs : 0],
    ["clusterItemsOut", s.port?.itemsOut ?? 0],
    ["clusterItemsIn", s.port?.itemsIn ?? 0],
    ["clusterGarbage", s.port?.garbage ?? 0],
    ["natsReconnects", s.reconnects],
    ["jsPublishes", s.inbox?.acked ?? 0],
    ["jsPublishMsSum", s.inbox?.ackMsSum ?? 0],
    ["clusterLateAdopted", s.adopted],
    ["clusterFences", s.fences],
  ];
}

/**
 * Pure: one labelled series per member as this node sees it (GET /v1/cluster in Prometheus form):
 * up (1) or not, the logged-in connections it reported in its last heartbeat, and how long ago
 * that heartbeat was heard. Node ids are letters, digits, '-' and '_' (NODE_ID_RE): safe as labels.
 */
export function memberLines(view: readonly Pick<NodeView, "id" | "observed" | "conns" | "silentMs">[]): string[] {
  const series: [string, string, (n: (typeof view)[number]) => number][] = [
    [
      "iris_cluster_member_up",
      "1 when this node sees the member up, else 0 (draining or down)",
      (n) => n.observed === "up" ? 1 : 0,
    ],
    [
      "iris_cluster_member_connections",
      "logged-in connections the member reported in its last heartbeat",
      (n) => n.conns,
    ],
    [
      "iris_cluster_member_heartbeat_age_seconds",
      "time since this node last heard the member's heartbeat",
      (n) => Math.round(n.silentMs) / 1000,
    ],
  ];
  const lines: string[] = [];
  for (const [name, help, value] of series) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const n of view) lines.push(`${name}{node="${n.id}"} ${value(n)}`);
  }
  return lines;
}
