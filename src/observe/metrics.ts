// Counters in one SharedArrayBuffer: every thread writes only its own slot (no locks, no hops);
// any shard renders /metrics by summing slots. Slot 0 = supervisor, 1 = storage writer, 2 = the WAL's
// checkpointer, 3+ = shards.

export const FIELDS = [
  // shard
  "conns",
  "loggedIn",
  "logins",
  "framesIn",
  "bytesIn",
  "msgsIn",
  "deliveredLive",
  "deliveredStored",
  "routedOwner",
  "storedOwner",
  "duplicates",
  "acksToSenders",
  "protocolErrors",
  "authFailures",
  "garbage",
  "crossShardMsgs",
  "rejectedUpgrades",
  "rateLimited",
  "busyRejects",
  "storeBacklogBytes",
  "storeBacklogRows",
  "slowDisconnects",
  "shedConnections",
  "v0Pauses",
  "v0Paused",
  "v0HeldFrames",
  "v0InboxFullCloses",
  "v0BadTargetCloses",
  "v0NotPausingCloses",
  "statusStoreLookups",
  "usersHeld",
  "statusCached",
  "latCount",
  "latSumMs",
  "ackLatCount",
  "ackLatSumMs",
  "hotBacklogBytes",
  "hotPages",
  "dedupeFilterBytes",
  "dedupeFilterOverfilled",
  "dedupeFilterBuilding",
  "drainBytesOut",
  // writer
  "rowsAppended",
  "rowsDuplicate",
  "rowsRejectedFull",
  "rowsDeleted",
  "rowsExpired",
  "commits",
  "commitMsSum",
  "fetches",
  "fetchesAhead",
  "pagesByRow",
  "rowsCompacted",
  "inboxRows",
  "dedupeRows",
  "dedupeRunFilterBytes",
  "dedupeRunsUnfiltered",
  "dedupeExpired",
  "dedupeRuns",
  "inboxIndexBuilds",
  // checkpointer
  "walPages",
  "walCopiedPages",
  "walCheckpointPasses",
  "walCheckpointMsSum",
  "walCheckpointErrors",
  "walWriterCopiedPages",
  // shard (dedupe)
  "dedupeLookups",
  "storeFailing",
  "storeErrors",
  // owners
  "storeFullRejects",
  "storeBehindRejects",
  "orderRefused",
  "staleLogins",
  "dedupeMemoriesReleased",
  // cluster (only rendered in cluster mode; gauges written by each node's first shard only)
  "clusterNodesUp",
  "clusterItemsOut",
  "clusterItemsIn",
  "clusterGarbage",
  "natsRttMs",
  "natsReconnects",
  "jsPublishes",
  "jsPublishMsSum",
  "clusterLateAdopted",
  "clusterFences",
  // supervisor
  "shardRestarts",
  "writerRestarts",
  "lastRestartMs",
  "maxRestartMs",
  "rssBytes",
  "memPressure",
  "spillBytes",
  "refuseBytes",
  "ready",
  "diskFreeBytes",
  "diskReserveBytes",
  "storeFull",
] as const;
export type Field = (typeof FIELDS)[number];

/** Upper bounds (ms) of the latency histograms (route, send→ack); the last bucket is +Inf. */
export const LAT_BUCKETS_MS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 250, 500, 1000];

/** The two histograms: route (send frame → delivery write) and ack (send frame → the sender's ack). */
export type Histo = "route" | "ack";
const FIELD_INDEX = Object.fromEntries(FIELDS.map((f, i) => [f, i])) as Record<Field, number>;
const BUCKETS = LAT_BUCKETS_MS.length + 1;
const HISTO_AT: Record<Histo, number> = { route: FIELDS.length, ack: FIELDS.length + BUCKETS };
const SLOT = FIELDS.length + 2 * BUCKETS;

function bucketOf(ms: number): number {
  let i = 0;
  while (i < LAT_BUCKETS_MS.length && ms > LAT_BUCKETS_MS[i]!) i++;
  return i;
}

export const SLOT_MAIN = 0;
export const SLOT_WRITER = 1;
export const SLOT_CHECKPOINTER = 2;
/** Slots before the first shard's. */
export const NON_SHARD_SLOTS = 3;
export const shardSlot = (shard: number) => NON_SHARD_SLOTS + shard;

export function createMetricsBuffer(shards: number): SharedArrayBuffer {
  return new SharedArrayBuffer((NON_SHARD_SLOTS + shards) * SLOT * 8);
}

/** A thread's writable view of its own slot. */
export class SlotMetrics {
  private readonly a: Float64Array;
  constructor(buf: SharedArrayBuffer, slot: number) {
    this.a = new Float64Array(buf, slot * SLOT * 8, SLOT);
  }
  add(f: Field, n = 1): void {
    this.a[FIELD_INDEX[f]]! += n;
  }
  set(f: Field, v: number): void {
    this.a[FIELD_INDEX[f]] = v;
  }
  get(f: Field): number {
    return this.a[FIELD_INDEX[f]]!;
  }
  reset(): void {
    this.a.fill(0);
  }
  latency(ms: number): void {
    this.a[FIELD_INDEX.latCount]! += 1;
    this.a[FIELD_INDEX.latSumMs]! += ms;
    this.a[HISTO_AT.route + bucketOf(ms)]! += 1;
  }
  /** Send frame received → the sender's ack ("delivered" after the recipient's ack, or "stored"). */
  ackLatency(ms: number): void {
    this.a[FIELD_INDEX.ackLatCount]! += 1;
    this.a[FIELD_INDEX.ackLatSumMs]! += ms;
    this.a[HISTO_AT.ack + bucketOf(ms)]! += 1;
  }
}

/** Read side: sums over all slots (or one). */
export class MetricsReader {
  private readonly a: Float64Array;
  readonly slots: number;
  constructor(buf: SharedArrayBuffer) {
    this.a = new Float64Array(buf);
    this.slots = this.a.length / SLOT;
  }
  sum(f: Field): number {
    let s = 0;
    const i = FIELD_INDEX[f];
    for (let k = 0; k < this.slots; k++) s += this.a[k * SLOT + i]!;
    return s;
  }
  at(slot: number, f: Field): number {
    return this.a[slot * SLOT + FIELD_INDEX[f]]!;
  }
  latencyBuckets(h: Histo = "route"): number[] {
    const out = new Array<number>(BUCKETS).fill(0);
    for (let k = 0; k < this.slots; k++) {
      for (let b = 0; b < BUCKETS; b++) out[b]! += this.a[k * SLOT + HISTO_AT[h] + b]!;
    }
    return out;
  }
}

type Help = Partial<Record<Field, [string, "counter" | "gauge", string]>>;

/** Cluster figures: present in /metrics only when the node runs with --cluster. */
const clusterHelp: Help = {
  clusterNodesUp: ["iris_cluster_nodes_up", "gauge", "cluster members this node sees up (itself included)"],
  clusterItemsOut: [
    "iris_cluster_port_items_out_total",
    "counter",
    "items (routes, deliveries, acks, attaches) published to other nodes",
  ],
  clusterItemsIn: ["iris_cluster_port_items_in_total", "counter", "valid items received from other nodes"],
  clusterGarbage: ["iris_cluster_garbage_total", "counter", "invalid messages on Iris's NATS subjects, dropped"],
  natsRttMs: ["iris_cluster_nats_rtt_ms", "gauge", "latest NATS round-trip (PING/PONG) of this node, in ms"],
  natsReconnects: ["iris_cluster_nats_reconnects_total", "counter", "NATS reconnects of this node's links"],
  jsPublishes: ["iris_cluster_js_publish_total", "counter", "JetStream inbox appends acknowledged (PubAck)"],
  jsPublishMsSum: ["iris_cluster_js_publish_ms_total", "counter", "time from publish to PubAck, summed (ms)"],
  clusterLateAdopted: [
    "iris_cluster_late_adopted_total",
    "counter",
    "rows another owner stored late, re-sequenced by the current owner (hand-over)",
  ],
  clusterFences: ["iris_cluster_fences_total", "counter", "times a node back from a cut dropped its old owner state"],
};

const help: Help = {
  conns: ["iris_connections", "gauge", "open client connections"],
  loggedIn: ["iris_logged_in_connections", "gauge", "client connections logged in as a user"],
  logins: ["iris_logins_total", "counter", "successful logins"],
  framesIn: ["iris_frames_in_total", "counter", "client frames received"],
  bytesIn: ["iris_bytes_in_total", "counter", "client bytes received"],
  msgsIn: ["iris_messages_in_total", "counter", "messages accepted from senders"],
  deliveredLive: [
    "iris_messages_delivered_live_total",
    "counter",
    "messages written to a recipient socket from memory",
  ],
  deliveredStored: [
    "iris_messages_delivered_stored_total",
    "counter",
    "messages written to a recipient socket from the store",
  ],
  routedOwner: ["iris_messages_sequenced_total", "counter", "messages sequenced by owner shards"],
  storedOwner: ["iris_messages_sent_to_store_total", "counter", "messages sent to the store by owners"],
  duplicates: ["iris_duplicate_sends_total", "counter", "sender retries recognised as duplicates"],
  acksToSenders: ["iris_sender_acks_total", "counter", "acks written to senders"],
  protocolErrors: ["iris_protocol_errors_total", "counter", "malformed or invalid client frames"],
  authFailures: ["iris_auth_failures_total", "counter", "rejected logins"],
  garbage: ["iris_garbage_port_messages_total", "counter", "invalid inter-thread messages dropped"],
  crossShardMsgs: ["iris_cross_shard_messages_total", "counter", "messages posted to another thread"],
  rejectedUpgrades: ["iris_rejected_upgrades_total", "counter", "upgrades refused with 503"],
  rateLimited: ["iris_rate_limited_total", "counter", "frames or messages refused by rate limits"],
  busyRejects: [
    "iris_busy_rejects_total",
    "counter",
    "sends refused with SERVER_BUSY by the gateway (memory pressure, cut off)",
  ],
  storeBacklogBytes: ["iris_store_backlog_bytes", "gauge", "bytes sent to the store and not yet committed"],
  storeBacklogRows: ["iris_store_backlog_rows", "gauge", "messages accepted and not yet committed"],
  hotBacklogBytes: [
    "iris_hot_backlog_bytes",
    "gauge",
    "stored messages kept in memory as frames, to drain a backlog without reading the store",
  ],
  dedupeFilterBytes: [
    "iris_dedupe_filter_bytes",
    "gauge",
    "memory of the shards' dedupe filters (keys accepted within the dedupe window)",
  ],
  dedupeFilterBuilding: [
    "iris_dedupe_filter_building",
    "gauge",
    "shards rebuilding their dedupe filter from the store (at start): every send with an id is looked up meanwhile",
  ],
  dedupeFilterOverfilled: [
    "iris_dedupe_filter_overfilled_keys",
    "gauge",
    "keys the dedupe filters hold past their sizes because of their memory bound (more sends looked up in the store)",
  ],
  hotPages: [
    "iris_hot_backlog_pages_total",
    "counter",
    "backlog pages sent from memory instead of read from the store",
  ],
  drainBytesOut: [
    "iris_drain_bytes_out",
    "gauge",
    "backlog page bytes being read or written to sockets and not yet flushed (bounded per shard)",
  ],
  slowDisconnects: ["iris_slow_consumer_disconnects_total", "counter", "clients disconnected for not reading"],
  shedConnections: ["iris_shed_connections_total", "counter", "heavy senders disconnected under memory pressure"],
  v0Pauses: [
    "iris_v0_sender_pauses_total",
    "counter",
    "times a v0 sender's socket was paused (rate, store behind, memory)",
  ],
  v0Paused: ["iris_v0_senders_paused", "gauge", "v0 connections whose socket is paused right now"],
  v0HeldFrames: ["iris_v0_held_frames", "gauge", "v0 packets read before a pause took effect, waiting in order"],
  v0InboxFullCloses: [
    "iris_v0_inbox_full_closes_total",
    "counter",
    "v0 connections closed because a message was refused: inbox full",
  ],
  v0BadTargetCloses: [
    "iris_v0_invalid_target_closes_total",
    "counter",
    "v0 connections closed because a message had an invalid target",
  ],
  v0NotPausingCloses: [
    "iris_v0_not_pausing_closes_total",
    "counter",
    "v0 connections closed for sending past a pause",
  ],
  usersHeld: ["iris_users_in_memory", "gauge", "per-user states held by owner shards (online, or idle until swept)"],
  statusCached: ["iris_status_cache_entries", "gauge", "answers for unknown users kept in the bounded status cache"],
  statusStoreLookups: [
    "iris_status_store_lookups_total",
    "counter",
    "status queries for users without owner state, answered from the store",
  ],
  rowsAppended: ["iris_store_rows_appended_total", "counter", "inbox rows committed"],
  rowsDuplicate: ["iris_store_rows_duplicate_total", "counter", "inbox inserts ignored as duplicates"],
  rowsRejectedFull: ["iris_store_rows_rejected_full_total", "counter", "inbox inserts refused: inbox full"],
  rowsDeleted: ["iris_store_rows_deleted_total", "counter", "inbox rows deleted after ack"],
  rowsExpired: ["iris_store_rows_expired_total", "counter", "inbox rows deleted by TTL"],
  commits: ["iris_store_commits_total", "counter", "storage transactions committed"],
  commitMsSum: ["iris_store_commit_ms_total", "counter", "time spent in storage transactions (ms)"],
  fetches: ["iris_store_fetches_total", "counter", "backlog pages read"],
  fetchesAhead: ["iris_store_fetches_ahead_total", "counter", "backlog pages served from a read ahead"],
  pagesByRow: [
    "iris_store_pages_by_row_total",
    "counter",
    "backlog pages read row by row (rows without a stored frame head, or index and tail mixed)",
  ],
  rowsCompacted: [
    "iris_store_rows_compacted_total",
    "counter",
    "acked rows removed from the inbox files after their watermark moved",
  ],
  inboxRows: ["iris_store_inbox_rows", "gauge", "rows currently in offline inboxes"],
  walPages: [
    "iris_store_wal_pages",
    "gauge",
    "pages in the store's write-ahead log as the checkpointer last read it (its index, every 100 ms)",
  ],
  walCopiedPages: [
    "iris_store_wal_copied_pages",
    "gauge",
    "of those, pages already copied into the database file (the rest wait for the next pass)",
  ],
  walCheckpointPasses: [
    "iris_store_wal_checkpoint_passes_total",
    "counter",
    "passive checkpoints run by the checkpointer thread",
  ],
  walCheckpointMsSum: ["iris_store_wal_checkpoint_ms_total", "counter", "time spent in those checkpoints (ms)"],
  walCheckpointErrors: [
    "iris_store_wal_checkpoint_errors_total",
    "counter",
    "checkpoints that failed (e.g. a full disk); the writer's own checkpoint stays the backstop",
  ],
  walWriterCopiedPages: [
    "iris_store_wal_writer_copied_pages_total",
    "counter",
    "pages the writer's own checkpoint copied, seen in the WAL index (at least): its commits waited for these",
  ],
  dedupeRows: ["iris_dedupe_rows", "gauge", "(recipient, sender, id) keys held in the durable dedupe window"],
  dedupeRunFilterBytes: [
    "iris_dedupe_run_filter_bytes",
    "gauge",
    "memory of the dedupe runs' filters in the writer (bounded: the oldest are let go past it)",
  ],
  dedupeRunsUnfiltered: [
    "iris_dedupe_runs_unfiltered",
    "gauge",
    "dedupe runs whose filter was let go for the memory bound: every lookup probes them",
  ],
  dedupeExpired: ["iris_dedupe_expired_total", "counter", "dedupe keys deleted after the window"],
  dedupeRuns: ["iris_dedupe_runs_built_total", "counter", "sorted runs built from the dedupe log's tail"],
  inboxIndexBuilds: [
    "iris_store_inbox_index_builds_total",
    "counter",
    "batches of the inbox log's tail moved into its per-user index",
  ],
  dedupeLookups: ["iris_dedupe_lookups_total", "counter", "sends checked against the durable dedupe window"],
  shardRestarts: ["iris_shard_restarts_total", "counter", "router shard restarts by the supervisor"],
  writerRestarts: ["iris_writer_restarts_total", "counter", "storage writer restarts by the supervisor"],
  lastRestartMs: ["iris_last_restart_ms", "gauge", "how long the latest thread restart took (death to serving)"],
  maxRestartMs: ["iris_max_restart_ms", "gauge", "longest thread restart so far"],
  rssBytes: ["iris_rss_bytes", "gauge", "resident memory of the whole process"],
  memPressure: ["iris_memory_pressure", "gauge", "0 normal, 1 above the spill watermark, 2 above the refuse watermark"],
  ready: ["iris_ready", "gauge", "1 when every thread is up"],
  spillBytes: ["iris_memory_spill_watermark_bytes", "gauge", "RSS above which slow users are served from the store"],
  refuseBytes: ["iris_memory_refuse_watermark_bytes", "gauge", "RSS above which new connections are refused"],
  diskFreeBytes: ["iris_disk_free_bytes", "gauge", "free bytes on the data dir's file system (statfs, unprivileged)"],
  diskReserveBytes: ["iris_disk_reserve_bytes", "gauge", "--min-free-mb in bytes: below it new stores are refused"],
  storeFull: [
    "iris_store_full",
    "gauge",
    "1 while free space is below the reserve (sends that would be stored get STORE_FULL)",
  ],
  storeFailing: [
    "iris_store_failing",
    "gauge",
    "1 while the writer backs off after a failed commit (disk full, I/O error)",
  ],
  storeErrors: ["iris_store_errors_total", "counter", "storage transactions that failed and were answered with errors"],
  storeFullRejects: ["iris_store_full_rejects_total", "counter", "sends refused with STORE_FULL"],
  storeBehindRejects: [
    "iris_store_behind_rejects_total",
    "counter",
    "sends that would be stored, refused with SERVER_BUSY while the store is behind (--store-backlog-mb)",
  ],
  orderRefused: [
    "iris_order_refused_total",
    "counter",
    "sends refused with SERVER_BUSY because the sender's earlier send to the same recipient was not taken yet",
  ],
  staleLogins: [
    "iris_stale_logins_total",
    "counter",
    "logins read after a newer login of the same user (a starved shard) and closed as replaced",
  ],
  dedupeMemoriesReleased: [
    "iris_dedupe_memories_released_total",
    "counter",
    "online users idle past the sweep whose in-memory dedupe ids were released (the store still has them)",
  ],
};

/** Prometheus text exposition (version 0.0.4). */
export function renderPrometheus(r: MetricsReader, extra: Record<string, number> = {}, cluster = false): string {
  const lines: string[] = [];
  for (const f of FIELDS) {
    const h = help[f] ?? (cluster ? clusterHelp[f] : undefined);
    if (!h) continue;
    lines.push(`# HELP ${h[0]} ${h[2]}`, `# TYPE ${h[0]} ${h[1]}`, `${h[0]} ${r.sum(f)}`);
  }
  histogramLines(lines, "iris_route_latency_seconds", "server-side time from a send frame to the delivery write", {
    buckets: r.latencyBuckets("route"),
    sumMs: r.sum("latSumMs"),
    count: r.sum("latCount"),
  });
  histogramLines(lines, "iris_send_ack_latency_seconds", "server-side time from a send frame to the sender's ack", {
    buckets: r.latencyBuckets("ack"),
    sumMs: r.sum("ackLatSumMs"),
    count: r.sum("ackLatCount"),
  });
  for (const [k, v] of Object.entries(extra)) lines.push(`# TYPE ${k} gauge`, `${k} ${v}`);
  return lines.join("\n") + "\n";
}

function histogramLines(
  lines: string[],
  name: string,
  helpText: string,
  h: { buckets: number[]; sumMs: number; count: number },
): void {
  lines.push(`# HELP ${name} ${helpText}`, `# TYPE ${name} histogram`);
  let cum = 0;
  LAT_BUCKETS_MS.forEach((ub, i) => {
    cum += h.buckets[i]!;
    lines.push(`${name}_bucket{le="${ub / 1000}"} ${cum}`);
  });
  cum += h.buckets[LAT_BUCKETS_MS.length]!;
  lines.push(`${name}_bucket{le="+Inf"} ${cum}`, `${name}_sum ${h.sumMs / 1000}`, `${name}_count ${h.count}`);
}
