// GET /v1/stats: the overview figures as JSON, read from the shared counters (no thread hop) plus
// free disk for the data directory. Counters are totals since start; the console turns them into
// per-second rates and windowed percentiles by differencing successive samples.

import { statfsSync } from "node:fs";
import { type Histo, LAT_BUCKETS_MS, type MetricsReader } from "../observe/metrics.ts";
import { quantileFromBuckets } from "../observe/quantile.ts";

export interface StatsSource {
  reader: MetricsReader;
  dataDir: string;
  shards: number;
  maxConnections: number;
  version: string;
  /** Cluster mode: this node's view of the members (GET /v1/cluster's shape). */
  clusterView?: () => unknown;
}

/** One node as the overview lists it. */
export interface NodeFigure {
  id: string;
  state: string;
  connections: number;
}

/** The cluster's members as this node sees them, or just this process when not clustered. */
function nodesOf(src: StatsSource, conns: number): NodeFigure[] {
  const view = src.clusterView?.() as { nodes?: { id: string; state: string; conns: number }[] } | undefined;
  if (!view?.nodes) return [{ id: "self", state: "up", connections: conns }];
  return view.nodes.map((n) => ({ id: n.id, state: n.state, connections: n.conns }));
}

/** Free bytes for unprivileged writers on the data directory's filesystem (null if unknown). */
function freeDisk(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** A latency histogram with its since-start p50/p99 (the console differences `counts` per second). */
function histogram(r: MetricsReader, h: Histo, what: string) {
  const counts = r.latencyBuckets(h);
  return {
    what,
    p50Ms: quantileFromBuckets(LAT_BUCKETS_MS, counts, 0.5),
    p99Ms: quantileFromBuckets(LAT_BUCKETS_MS, counts, 0.99),
    boundsMs: LAT_BUCKETS_MS,
    counts,
  };
}

export function collectStats(src: StatsSource) {
  const r = src.reader;
  return {
    now: Date.now(),
    version: src.version,
    connections: r.sum("conns"),
    maxConnections: src.maxConnections,
    totals: {
      logins: r.sum("logins"),
      msgsIn: r.sum("msgsIn"),
      deliveredLive: r.sum("deliveredLive"),
      deliveredStored: r.sum("deliveredStored"),
      sentToStore: r.sum("storedOwner"),
      duplicates: r.sum("duplicates"),
      authFailures: r.sum("authFailures"),
      protocolErrors: r.sum("protocolErrors"),
      rateLimited: r.sum("rateLimited"),
      busyRejects: r.sum("busyRejects"),
    },
    store: { rows: r.sum("inboxRows"), backlogBytes: r.sum("storeBacklogBytes"), freeDiskBytes: freeDisk(src.dataDir) },
    latency: histogram(r, "route", "server route latency: send frame received to delivery written"),
    ackLatency: histogram(r, "ack", "send to ack: send frame received to the sender's ack (delivered or stored)"),
    memory: {
      rssBytes: r.sum("rssBytes"),
      spillBytes: r.sum("spillBytes"),
      refuseBytes: r.sum("refuseBytes"),
      pressure: r.sum("memPressure"),
    },
    threads: { shards: src.shards, shardRestarts: r.sum("shardRestarts"), writerRestarts: r.sum("writerRestarts") },
    nodes: nodesOf(src, r.sum("conns")),
  };
}

export type Stats = ReturnType<typeof collectStats>;
