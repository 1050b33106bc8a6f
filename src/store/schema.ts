// Drizzle table definitions for the inbox store.
//
// Drizzle cannot express STRICT or WITHOUT ROWID, so those live only in the
// migration SQL (migrations.ts); tests/unit/store.test.ts checks that the
// created schema matches these definitions column by column and index by index.

import { customType, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

// bun:sqlite returns BLOBs as Uint8Array and binds Uint8Array as BLOB, so the
// column maps 1:1 without the Buffer copy that drizzle's blob({ mode: "buffer" })
// would make.
const bytes = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType() {
    return "blob";
  },
});

/**
 * Every stored message, appended in commit order (issue 14, migration 4): a rowid table (in the
 * SQL: STRICT, not WITHOUT ROWID), so a group commit writes only its last pages whatever inboxes
 * its rows go to. Found per user through inboxIndex and the store's in-memory tail.
 */
export const inboxLog = sqliteTable(
  "inbox_log",
  {
    id: integer("id").primaryKey(),
    recipient: text("recipient").notNull(),
    // Per-recipient sequence number, assigned by the caller (never by SQLite).
    seq: integer("seq").notNull(),
    sender: text("sender").notNull(),
    // Sender-chosen id; "" for legacy clients, which are never deduplicated. Not unique here:
    // the dedupe window (sent_log) holds every stored row's key; see migration 3.
    msgId: text("msg_id").notNull(),
    // Server receive time, ms since epoch.
    ts: integer("ts").notNull(),
    body: bytes("body").notNull(),
    // The row's v1 DELIVER frame up to its body (migration 6); NULL for rows stored before it.
    head: bytes("head"),
  },
  // No ts index (migration 7): TTL expiry finds old rows through inboxSpans.
);

/**
 * Stretches of inbox_log ids (lo..hi) with the lowest and highest ts of the rows appended in them:
 * expiry reads only the spans holding a row older than its cutoff (store/inbox-spans.ts).
 */
export const inboxSpans = sqliteTable("inbox_spans", {
  lo: integer("lo").primaryKey(),
  hi: integer("hi").notNull(),
  minTs: integer("min_ts").notNull(),
  maxTs: integer("max_ts").notNull(),
});

/**
 * (recipient, seq) -> log id, for the log rows up to inboxIndexed.upto. WITHOUT ROWID (in the SQL);
 * written in sorted batches (store/inbox-log.ts), not per row.
 */
export const inboxIndex = sqliteTable(
  "inbox_index",
  {
    recipient: text("recipient").notNull(),
    seq: integer("seq").notNull(),
    id: integer("id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.recipient, t.seq] })],
);

/** One row: the highest log id inboxIndex covers; the log rows above it are the tail. */
export const inboxIndexed = sqliteTable("inbox_indexed", {
  one: integer("one").primaryKey(),
  upto: integer("upto").notNull(),
});

/**
 * Per-user ack watermark: that user's rows with seq <= upto are deleted, and removed from the log
 * and index later, in chunks (store/inbox-log.ts). A row only while such rows remain. WITHOUT ROWID.
 */
export const inboxAcked = sqliteTable("inbox_acked", {
  recipient: text("recipient").primaryKey(),
  upto: integer("upto").notNull(),
});

/** Per-recipient bookkeeping. WITHOUT ROWID (in the SQL): keyed by text id. */
export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  // Highest sequence number ever handed out (or seen) for this recipient.
  seqReserved: integer("seq_reserved").notNull().default(0),
  // Last time the user was seen, ms since epoch.
  lastSeen: integer("last_seen").notNull().default(0),
});

/**
 * The durable dedupe window, as an append-only log: every (recipient, sender, msg_id) accepted
 * within it and its seq, in the order the writer committed them (id). A rowid table (in the SQL:
 * STRICT, not WITHOUT ROWID) so a group commit appends to its last pages. Indexed by sorted runs
 * in sent_run_keys, which the store builds and drops itself (store/sent-runs.ts).
 */
export const sentLog = sqliteTable("sent_log", {
  id: integer("id").primaryKey(),
  recipient: text("recipient").notNull(),
  sender: text("sender").notNull(),
  msgId: text("msg_id").notNull(),
  seq: integer("seq").notNull(),
  // Server receive time, ms since epoch.
  ts: integer("ts").notNull(),
});

/**
 * The dedupe log since migration 8: one row per remember (a group commit's keys), the keys' log
 * ids lo..hi (store/sent-packs.ts). `text`: every key's recipient, sender and msg_id back to back;
 * `nums`: per key their lengths (UTF-16 units), seq, ts and two hashes, as little-endian float64s.
 */
export const sentPacks = sqliteTable("sent_packs", {
  lo: integer("lo").primaryKey(),
  hi: integer("hi").notNull(),
  text: text("text").notNull(),
  nums: bytes("nums").notNull(),
});

/** The runs that index sent_log: ids lo..hi each, the newest key's ts (expiry), key count, filter. */
export const sentRuns = sqliteTable("sent_runs", {
  lo: integer("lo").primaryKey(),
  hi: integer("hi").notNull(),
  maxTs: integer("max_ts").notNull(),
  keys: integer("keys").notNull(),
  // The run's Bloom filter (store/run-filter.ts): lookups skip runs that certainly lack the key.
  filter: bytes("filter").notNull(),
  // 1: its keys are in sent_run_slices (built since migration 11); 0: a row each in sent_run_keys.
  sliced: integer("sliced").notNull().default(0),
});

/**
 * Sealed groups of dedupe runs (store/sent-runs.ts, migration 12): runs lo..hi (up to 64 of them),
 * their key count, newest key's ts, and one Bloom filter of all their keys by 53-bit hash.
 */
export const sentRunGroups = sqliteTable("sent_run_groups", {
  lo: integer("lo").primaryKey(),
  hi: integer("hi").notNull(),
  keys: integer("keys").notNull(),
  maxTs: integer("max_ts").notNull(),
  filter: bytes("filter").notNull(),
});

/**
 * Runs built before migration 11: a row per key (run, 53-bit key hash, log id), sorted by hash
 * within a run. WITHOUT ROWID (in the SQL). Read until those runs expire; no run is built here now.
 */
export const sentRunKeys = sqliteTable(
  "sent_run_keys",
  {
    lo: integer("lo").notNull(),
    h: integer("h").notNull(),
    id: integer("id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.lo, t.h, t.id] })],
);

/**
 * Every run's keys as slices (store/run-slices.ts): its (53-bit hash, log id) pairs sorted and cut
 * into blobs of 240, a row each keyed by the run and its last pair, so a lookup reads the first
 * slice at or past a hash. WITHOUT ROWID (in the SQL). Migration 11; before it a row per key
 * (sent_run_keys, migration 9), and before that a table per run.
 */
export const sentRunSlices = sqliteTable(
  "sent_run_slices",
  {
    lo: integer("lo").notNull(),
    lastH: integer("last_h").notNull(),
    lastId: integer("last_id").notNull(),
    pairs: bytes("pairs").notNull(),
  },
  (t) => [primaryKey({ columns: [t.lo, t.lastH, t.lastId] })],
);

/**
 * Each shard's dedupe filter from the last clean shutdown, read once at the next start
 * (store/filter-images.ts). A rowid table in the SQL: a few large rows.
 */
export const dedupeFilterImages = sqliteTable(
  "dedupe_filter_images",
  {
    shard: integer("shard").notNull(),
    shards: integer("shards").notNull(),
    part: integer("part").notNull(),
    meta: text("meta").notNull(),
    bits: bytes("bits").notNull(),
  },
  (t) => [index("dedupe_filter_images_shard").on(t.shard, t.part)],
);

export type UserRecord = typeof users.$inferSelect;
