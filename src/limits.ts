// Every internal tuning value in one place, named and commented, before any logic uses it.
// Operator-facing settings (ports, rates, watermarks…) live in config/schema.ts; these are the
// numbers an operator should not need to touch, but a reader should be able to find.

import { defaultSettings } from "./config/schema.ts";

// ---- memory accounting ----

/** Bytes one stored row costs beyond its body (ids, seq, ts, object headers), on a backlog page. */
export const ROW_OVERHEAD_BYTES = 96;
/**
 * What one accepted message waiting for the store really holds in RAM beyond its body: the route
 * and the row in the owner, the structured-clone copy on the writer's side of the port, the
 * writer's pending batch. v0 senders (paused, never refused) are held to the store backlog budget
 * (--store-backlog-mb) counting this per message. Measured (issue 15: 4 v0 senders, 400k messages
 * of ~110 bytes into 20k offline inboxes, default 128 MiB budget): peak RSS +663 MB at 1.5 KiB per
 * message (~78k in flight), +326 MB at 6 KiB (~21k): about 6 KB each. v1 sends that would be
 * stored are refused (SERVER_BUSY, by the owner) past the same weight: counted at ROW_OVERHEAD_BYTES,
 * the default budget let a v1 flood paced past what the writer stores hold 342k rows (RSS 90 MB ->
 * 2 GB, the writer committing half-second batches, an online pair's messages 5 s late) and no send
 * was refused (session 46).
 */
export const BACKLOG_ROW_OVERHEAD_BYTES = 6144;

// ---- owner actor (per shard) ----

/** The owner's per-user limits (main() overrides some from settings). */
export interface OwnerLimits {
  maxPending: number;
  pageSize: number;
  pageBytes: number;
  /** A drain's pages double from pageSize / pageBytes up to these (router/drain-page.ts); unset: no growth. */
  pageMaxRows?: number;
  pageMaxBytes?: number;
  /** Bytes of recently stored rows a shard keeps to drain without the writer (router/hot-backlog.ts); unset: none. */
  hotBacklogBytes?: number;
  /**
   * True: a user's rows are kept there only once its box sent the store more than a drain's first
   * page (pageSize rows or pageBytes, hot-backlog.ts); unset: from the first row.
   */
  hotBacklogPastFirstPage?: boolean;
  /** The inbox TTL (ms, 0: none): a page from memory never holds a row that may have expired. */
  inboxTtlMs?: number;
  maxFetches: number;
  /**
   * Drain page bytes a shard may have out at once: fetched (or being read) plus written to sockets
   * and not yet flushed to the kernel. Past it drains wait in the queue (under memory pressure, a
   * quarter of it). Unset: only the fetch slots bound a shard's pages.
   */
  pageBytesOut?: number;
  pendingSpillMs: number;
  seqBlock: number;
  recentIds: number;
  holdback: number;
  slowTimeoutMs: number;
  dedupeWindowMs: number;
  /** Bytes the shard's dedupe filter may hold (router/sent-filter.ts); unset: unbounded. */
  dedupeFilterBytes?: number;
}

/**
 * The dedupe filters' memory, each kind at most this share of the spill watermark: the shards'
 * filters of the window's keys together (router/sent-filter.ts, 2-3.4 bytes a key), and the
 * writer's filters of the dedupe runs (store/run-filter.ts, 1.25 bytes a key). Without a bound a
 * shard at a steady 5,000 msgs/s would hold ~1-1.5 GB after a day (432M keys; session 34). Past
 * it a shard's filter answers "maybe" more often and the writer lets its oldest run filters go
 * (they stay in the file): more store lookups or probes, never a key called new that was seen.
 */
export const DEDUPE_FILTERS_SHARE_OF_SPILL = 1 / 8;
/** The least each filter budget gets, whatever the watermark: ~2.5M keys at a shard's full accuracy. */
export const DEDUPE_FILTER_MIN_BYTES = 8 * 1024 * 1024;

/** One budget for a spill watermark, split between `parts` holders (the shards; the writer is one). */
function dedupeShare(spillBytes: number, parts: number): number {
  return Math.max(DEDUPE_FILTER_MIN_BYTES, Math.floor((spillBytes * DEDUPE_FILTERS_SHARE_OF_SPILL) / parts));
}

/** A shard's dedupe filter budget for a spill watermark shared by `shards` shards. */
export const dedupeFilterBytes = (spillBytes: number, shards: number): number => dedupeShare(spillBytes, shards);

/** The writer's budget for the dedupe runs' filters in memory. */
export const dedupeRunFilterBytes = (spillBytes: number): number => dedupeShare(spillBytes, 1);

/**
 * Rows a shard keeps in memory after storing them, per shard, so that a backlog stored while the
 * process runs drains without the writer's reads (router/hot-backlog.ts): bodies plus
 * ROW_OVERHEAD_BYTES each; past it the oldest users' rows go. Dropped whole above the memory
 * spill watermark. 64 MiB holds ~400k rows of 64-byte bodies.
 */
export const HOT_BACKLOG_BYTES = 64 * 1024 * 1024;

/**
 * Their defaults. maxPending, pendingSpillMs and slowTimeoutMs are settings (config/schema.ts);
 * the values here are the schema's defaults, read from it so they are stated once.
 */
export const defaultOwnerLimits: OwnerLimits = {
  maxPending: defaultSettings.maxPending,
  pageSize: 500, // rows per backlog fetch
  pageBytes: 256 * 1024, // byte budget per backlog page
  // A long drain's pages grow to this: 32 fetch slots x 1 MiB bounds a shard's pages in flight
  // to 32 MiB, and 8192 rows keep one read of the writer's under a few ms (issue 14).
  pageMaxRows: 8192,
  pageMaxBytes: 1024 * 1024,
  maxFetches: 32, // backlog pages in flight per shard
  // Fetch slots alone bound pages being read, not pages written to sockets still holding them: a
  // crowd of drains could park a 1 MiB page in each socket (chaos `oom`'s 100 recipients of 64 KiB
  // rows). This budget alone did not bring oom under its bound; freeing written pages did.
  pageBytesOut: 32 * 1024 * 1024,
  pendingSpillMs: defaultSettings.pendingSpillMs,
  seqBlock: 1024, // sequence numbers reserved per store round trip
  recentIds: 512, // (sender, id) pairs remembered per user for dedupe
  holdback: 256, // messages held in memory per user while its backlog drains
  slowTimeoutMs: defaultSettings.slowConsumerTimeout,
  dedupeWindowMs: defaultSettings.dedupeWindow * 1000,
  hotBacklogBytes: HOT_BACKLOG_BYTES,
  // A backlog that fits a drain's first page drains with one read of the writer's either way;
  // below it, keeping each stored row in memory only cost (the offline flood into 10,000 inboxes:
  // 10-20% of the server's CPU a row, docs/BENCHMARKS.md session 33).
  hotBacklogPastFirstPage: true,
};

/**
 * The largest working buffer the writer keeps between backlog pages (frame-page.ts PageScratch): a
 * page of pageMaxBytes can grow its buffer by doubling to twice that; anything bigger (a page of
 * huge rows) is dropped after its page rather than held for the process's life.
 */
export const PAGE_SCRATCH_MAX_BYTES = 4 * 1024 * 1024;

// ---- shard housekeeping ----

/** How often a shard forgets idle offline users, and how long idle counts as idle. */
export const OWNER_SWEEP_EVERY_MS = 30_000;
export const OWNER_IDLE_MS = 60_000;
/** Owner counters are plain fields on the hot path; they reach shared metrics this often. */
export const OWNER_STATS_EVERY_MS = 250;
/** Slow-consumer checks, pending spill and memory-pressure shedding run this often. */
export const HOUSEKEEPING_EVERY_MS = 1000;
/**
 * Send chains are swept a slice of the connections at a time, this often, so that each is swept
 * about once per HOUSEKEEPING_EVERY_MS. One pass over all 1,000 of the throughput bench's
 * connections after its saturation phase took 2-11 ms each second (tens of thousands of answered
 * sends expiring), and every message read meanwhile waited: the paced phase's p99.
 */
export const CHAIN_SWEEP_EVERY_MS = 100;
export const CHAIN_SWEEP_SLICES = HOUSEKEEPING_EVERY_MS / CHAIN_SWEEP_EVERY_MS;

// ---- WebSocket listener ----

/** Bun's own per-socket send limit, far above ours: we pause at slowConsumerBytes, Bun never drops. */
export const WS_BACKPRESSURE_FLOOR_BYTES = 64 * 1024 * 1024;
export const WS_BACKPRESSURE_PER_SLOW_LIMIT = 64;
/** Headroom over maxPayload for a frame's own header fields (ids, user names). */
export const WS_FRAME_SLACK_BYTES = 1024;
/** Seconds without any frame before Bun closes a socket (clients ping well within it). */
export const WS_IDLE_TIMEOUT_S = 120;
/** Seconds a refused upgrade is told to wait. */
export const RETRY_AFTER_S = 5;
/** How long an HTTP send waits for its ack before answering 202 "pending". */
export const HTTP_SEND_ACK_TIMEOUT_MS = 10_000;

// ---- seed (v0) senders ----

/**
 * A v0 sender that must wait (rate limit, store behind, memory pressure) has its socket paused;
 * it is retried this often. v0 has no error frame and no acks, so waiting is the only lossless
 * answer: the sender's own writes block once the kernel buffers fill.
 */
export const V0_RETRY_EVERY_MS = 5;
/**
 * Frames a paused v0 connection may still hand us (Bun dispatches what it already read). Past this
 * the client is not being slowed by the pause, so it is closed with a reason instead of buffered.
 */
export const V0_HELD_FRAMES_MAX = 200_000;
/** Status queries one v0 connection may have unanswered before it waits for the answers. */
export const V0_STATUS_IN_FLIGHT_MAX = 1024;
/** A refused v0 message closes its connection; the log line saying who and why is this rare at most. */
export const V0_REFUSAL_LOG_EVERY_MS = 1000;

// ---- status lookups for users the owner holds no state for ----

/** Answers read from the store for unknown users, kept this many at most... */
export const STATUS_CACHE_MAX = 4096;
/**
 * ...for this long. It must stay below OWNER_IDLE_MS: a user who logs in after an answer was cached
 * keeps an owner box for at least OWNER_IDLE_MS after logging out, so a cached answer has expired
 * before the box that would have superseded it is swept.
 */
export const STATUS_CACHE_TTL_MS = 2000;

// ---- supervisor ----

/** RSS is sampled and memory pressure published this often. */
export const MEMORY_SAMPLE_EVERY_MS = 250;
/** Forced GC in every thread near or under pressure, at most this often... */
export const FORCED_GC_MIN_GAP_MS = 2000;
/** ...from this fraction of the spill watermark up (supervisor.ts GcPacer)... */
export const GC_BAND_OF_SPILL = 0.8;
/** ...and, below the spill mark, at least this often once collections there stop bringing RSS down... */
export const GC_BAND_MAX_GAP_MS = 32_000;
/** ...by this fraction of the spill watermark at the next sample. */
export const GC_PAYS_OF_SPILL = 0.05;
/** Crashes counted for restart backoff within this window. */
export const CRASH_WINDOW_MS = 10_000;
/** Crashes in the window restarted at once (an external kill is not a crash loop). */
export const IMMEDIATE_RESTARTS = 3;
/** Backoff after those: doubling from the base, capped. */
export const RESTART_BACKOFF_BASE_MS = 50;
export const RESTART_BACKOFF_MAX_MS = 5000;
/** A worker must answer a control request within this. */
export const CONTROL_REPLY_TIMEOUT_MS = 10_000;
/** The writer may take this long to open the database. */
export const WRITER_START_TIMEOUT_MS = 30_000;
/**
 * ...and this long once it said it migrates an existing file's schema: a migration may move every
 * row of a large store (migration 9 copies each dedupe run's keys, a few million a second), and a
 * start that gave up would roll it back and fail the same way at every start.
 */
export const WRITER_MIGRATE_TIMEOUT_MS = 60 * 60_000;
/** Each graceful-shutdown step waits at most this long for the threads. */
export const SHUTDOWN_STEP_TIMEOUT_MS = 3000;
/** Pause between closing clients and releasing owners, so close handlers post their detaches. */
export const SHUTDOWN_DETACH_GRACE_MS = 50;
/**
 * Before releasing, a shard waits (at most this long, below SHUTDOWN_STEP_TIMEOUT_MS) for routes
 * still waiting for sequence numbers to get them and reach the store, polling this often.
 */
export const SHUTDOWN_SETTLE_MAX_MS = 2000;
export const SHUTDOWN_SETTLE_POLL_MS = 5;
/** Cluster: after releasing, a shard waits at most this long for its JetStream writer's last
 * appends and last-seen writes (SHUTDOWN_SETTLE_MAX_MS + this stays below SHUTDOWN_STEP_TIMEOUT_MS). */
export const SHUTDOWN_WRITER_SETTLE_MS = 800;

// ---- storage writer ----

/**
 * Dedupe keys deleted per transaction (whole runs, at least one), and transactions per expiry
 * round: bounded background work.
 */
export const DEDUPE_EXPIRE_BATCH = 5000;
export const DEDUPE_EXPIRE_BATCHES_PER_RUN = 20;
/**
 * The dedupe log's sorted runs (store/sent-runs.ts): the in-memory tail becomes a run at this many
 * keys (building one takes ~0.8 µs of CPU per key, ~25 ms here, in one transaction), or when its
 * oldest key is a DEDUPE_RUN_SLICES-th of the window old, so a quiet store still expires by runs.
 */
export const DEDUPE_RUN_KEYS = 32_768;
export const DEDUPE_RUN_SLICES = 32;
/**
 * The inbox log's tail (store/inbox-log.ts) enters the per-user index in one sorted batch at this
 * many rows. Rows scattered over many inboxes land on every index leaf, so a batch rewrites about
 * the whole index and a row's share of that falls as the batch grows (store-micro flood, 10,000
 * inboxes, µs of CPU a row: 7.3-8.9 at 65,536 and 5.7-6.8 at 262,144 over 800,000 rows; 7.7 and
 * 5.3 over 2,400,000). The tail lives in memory (~35 B a row: ~9 MB full) and is read back from the
 * log at open (~170 ms for a full one), so it stays bounded.
 */
export const INBOX_INDEX_BATCH = 262_144;
/**
 * A batch is written in slices of about this many rows (whole users), one transaction after each
 * group commit, so the writer never stalls for a whole batch (~3 µs per row: ~25 ms a slice).
 */
export const INBOX_INDEX_SLICE = 8192;

/**
 * The WAL's size at which SQLite checkpoints inside the writer's commit (wal_autocheckpoint): the
 * backstop when the checkpointer thread does not keep up, and the point where the WAL restarts
 * under steady traffic (whatever waits to be copied then, that commit copies).
 */
export const WAL_AUTOCHECKPOINT_BYTES = 64 * 1024 * 1024;
/**
 * The WAL's checkpointer (store/checkpointer.ts) passes once about this many bytes of pages wait
 * to be copied. In a 10 s bundled flood here the checkpointer passed 36 times on its own thread
 * (most in the last 16 MiB before the writer's checkpoint) and the writer's own checkpoint copied
 * 420 pages of 16 KiB (2,850 with this rule alone). Live saturation adds a few MB a second: a pass
 * every few seconds, each page that commits keep changing copied once per pass (a pass every
 * 250 ms, whatever the WAL did, cost 1.2–1.5% of a core at live saturation).
 */
export const CHECKPOINT_PASS_BYTES = 16 * 1024 * 1024;
/**
 * How often the checkpointer reads the WAL index's header (store/wal-index.ts: one 136-byte read
 * of the -shm file): a flood adds a few MB in this time, well under a pass's share. Every 50 ms
 * cost an idle server ~0.17% of a core (the thread's wake-ups).
 */
export const CHECKPOINT_WATCH_MS = 100;
/** The shortest gap between passes (50 ms and 250 ms measured alike in a flood). */
export const CHECKPOINT_PASS_BUSY_MS = 250;
/** A WAL that held still this long with pages uncopied is copied; the gap after a failed pass. */
export const CHECKPOINT_PASS_IDLE_MS = 2000;

/**
 * Log ids per expiry span (store/inbox-spans.ts): a span's row is rewritten once per group commit
 * that appends to it, and an expiry reads at most this many ids from a span it only partly expires.
 * The spans listing rows stored before migration 7 are this size too (that migration's SQL).
 */
export const INBOX_SPAN_IDS = 4096;

/**
 * Rows under ack watermarks (store/inbox-log.ts) are removed from the files in transactions of about
 * this many rows (~1 µs each: a few ms a chunk), once the writer has been quiet for
 * INBOX_COMPACT_IDLE_MS, and under steady load after a commit at least every INBOX_COMPACT_MAX_WAIT_MS
 * unless a drain is reading pages (~40k rows/s: a writer never quiet still keeps up with the acks
 * of what it stores).
 */
export const INBOX_COMPACT_CHUNK = 8192;
export const INBOX_COMPACT_IDLE_MS = 50;
export const INBOX_COMPACT_MAX_WAIT_MS = 200;
/**
 * Largest dedupe filter a shard hands the writer at shutdown to keep for the next start
 * (store/filter-images.ts). Writing it must fit in a shutdown step (SHUTDOWN_STEP_TIMEOUT_MS)
 * after the last commit: measured ~10 ms a MiB (64 MiB: 640 ms; 256 MiB: 2.4 s, too long). A
 * larger one is rebuilt from the store at the next start (~2.3M keys a second, session 35).
 */
export const DEDUPE_IMAGE_MAX_BYTES = 128 * 1024 * 1024;
/** Dedupe keys per page when a shard rebuilds its filter from the store. */
export const DEDUPE_SCAN_PAGE = 20_000;

/** TTL expiry runs every ttl/10, within these bounds. */
export const EXPIRE_EVERY_MIN_MS = 1000;
export const EXPIRE_EVERY_MAX_MS = 60_000;

// ---- logging ----

/** Garbage on a port: log the first few, then every Nth, so a flood cannot flood the log. */
export const GARBAGE_LOG_FIRST = 5;
export const GARBAGE_LOG_EVERY = 1000;

// ---- v1 bundles (protocol/v1-bundle.ts) ----

/**
 * Largest server BUNDLE message: a backlog page or one turn's queued frames are split past this,
 * so a client never needs a receive buffer bigger than about a page.
 */
export const BUNDLE_MAX_BYTES = 1024 * 1024;

/**
 * A backlog page's flow-ready (the owner's cue to send the next page) waits until the socket holds
 * at most this many bytes in user space. Writing a page of 6,553 WebSocket messages into a socket
 * still holding 400–560 KB took the shard 7–10 ms against 0.7–1.0 ms into a drained one (issue 14,
 * BENCHMARKS.md); the writer has the next page read ahead meanwhile, so waiting costs one hop.
 */
export const PAGE_FLOW_RESUME_BYTES = 64 * 1024;

/**
 * A flow waiting for its socket to drain re-checks the socket's buffer this soon, then twice as late
 * each time up to FLOW_RECHECK_MAX_MS, until it clears (gateway/flow-recheck.ts). Bun's drain event
 * does not come when the buffer is written out on the read path (a client's ack uncorks the socket):
 * a v1 drain waited for it for good (issue 14, notes/hot-stall.md). The cap bounds what a slow
 * reader, which may wait for many seconds, costs: a few checks a second.
 */
export const FLOW_RECHECK_FIRST_MS = 1;
export const FLOW_RECHECK_MAX_MS = 200;

/**
 * Longest a queued frame waits for the end of its event-loop turn (issue 14, paced latency). Under
 * load one turn reads every ready socket (up to ~1,000 at once) and takes tens of ms; frames
 * queued at its start would wait all of it. Past this hold, the next message read flushes what is
 * queued first. Short enough to stay well under the relay's p99, long enough that a turn's frames
 * to one connection still share a write.
 */
export const OUTBOX_HOLD_MS = 0.5;

// ---- idle collection (observe/idle-gc.ts, issue 14) ----

/** How often a worker looks at its JS heap to decide whether a burst just ended. */
export const IDLE_GC_EVERY_MS = 500;
/**
 * Heap growth since the last collection that counts as a burst. 10,000 logins leave ~5–7 MB of
 * garbage in a shard's heap (structured-clone copies, login frames, drain replies); ordinary idle
 * work (pings, timers) grows it by far less than this between JSC's own collections.
 */
export const IDLE_GC_BURST_BYTES = 4 * 1024 * 1024;
/** Growth within one look below which the thread counts as quiet (the burst is over). */
export const IDLE_GC_QUIET_BYTES = 256 * 1024;
/**
 * Still looks (heap growth under IDLE_SHRINK_STILL_BYTES) after an idle collection before the
 * thread also shrinks (`Bun.shrink()`, see observe/idle-gc.ts). Its cost is recompiling the hot
 * functions when traffic comes back, so it waits for a thread that is idle, not merely quieter;
 * light traffic grows the heap by more than IDLE_SHRINK_STILL_BYTES a look and never shrinks.
 */
export const IDLE_SHRINK_STILL_LOOKS = 1;
/** Growth within one look below which a thread counts as still (an idle shard or writer: a few KB). */
export const IDLE_SHRINK_STILL_BYTES = 32 * 1024;
