// Schema migrations, embedded as SQL strings because Iris ships as a single
// binary with no migration folder on disk.
//
// Rules: append only, never edit a released migration; version N is stored in
// PRAGMA user_version after migration N commits. Each migration must match
// schema.ts (checked by tests/unit/store.test.ts).

import type { Database } from "bun:sqlite";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Work SQL alone cannot express (tables named by data), run after `sql` in the same transaction. */
  readonly run?: (db: Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "inbox and users",
    // STRICT: a non-integer seq/ts or a non-blob body is an error, not a
    // silently coerced value. WITHOUT ROWID: see schema.ts.
    sql: `
CREATE TABLE inbox (
  recipient TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sender TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (recipient, seq)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX inbox_dedup ON inbox (sender, msg_id, recipient)
  WHERE msg_id <> '';

CREATE INDEX inbox_ts ON inbox (ts);

CREATE TABLE users (
  id TEXT PRIMARY KEY NOT NULL,
  seq_reserved INTEGER NOT NULL DEFAULT 0,
  last_seen INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 2,
    name: "durable dedupe window",
    // Every (recipient, sender, msg_id) accepted within the dedupe window, whether it was
    // delivered live or stored, and the seq it got. The inbox's own unique index only knows rows
    // still in the inbox; this outlives them (acked, deleted, expired) for the whole window.
    sql: `
CREATE TABLE sent_ids (
  recipient TEXT NOT NULL,
  sender TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (recipient, sender, msg_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX sent_ids_ts ON sent_ids (ts);
`,
  },
  {
    version: 3,
    name: "dedupe window as a log with sorted runs",
    // Issue 14: the keyed table dirtied a random page per key in every group commit. The log is
    // appended in id order (a rowid table on purpose: not STRICT-incompatible, not WITHOUT ROWID);
    // sent_runs lists the sorted run tables (sent_run_<lo>) that index it, which the store builds
    // itself (sent-runs.ts): every key copied here is indexed when the store first opens the file.
    // Oldest first, so the runs built from it expire in about the order the keys would have.
    // The inbox's unique index on (sender, msg_id, recipient) goes: it was a second random B-tree
    // write per stored row (measured: 34.7 -> 23.5 µs CPU per row, 830-row commits to 10,000
    // inboxes). Ids are unique through the window, which holds every stored row's key (written in
    // the same transaction; copied here for rows stored before the window existed), and which
    // owners consult before they accept an id.
    sql: `
CREATE TABLE sent_log (
  id INTEGER PRIMARY KEY NOT NULL,
  recipient TEXT NOT NULL,
  sender TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL
) STRICT;

CREATE TABLE sent_runs (
  lo INTEGER PRIMARY KEY NOT NULL,
  hi INTEGER NOT NULL,
  max_ts INTEGER NOT NULL,
  keys INTEGER NOT NULL,
  filter BLOB NOT NULL
) STRICT;

INSERT INTO sent_log (recipient, sender, msg_id, seq, ts)
  SELECT recipient, sender, msg_id, seq, ts FROM sent_ids ORDER BY ts;

INSERT INTO sent_log (recipient, sender, msg_id, seq, ts)
  SELECT recipient, sender, msg_id, seq, ts FROM inbox AS i
  WHERE msg_id <> '' AND NOT EXISTS (
    SELECT 1 FROM sent_ids AS s
    WHERE s.recipient = i.recipient AND s.sender = i.sender AND s.msg_id = i.msg_id
  )
  ORDER BY ts;

DROP TABLE sent_ids;

DROP INDEX inbox_dedup;
`,
  },
  {
    version: 4,
    name: "inbox as an append-ordered log with a per-user index",
    // Issue 14: the (recipient, seq) B-tree dirtied about one random page per row in every group
    // commit. inbox_log is appended in commit order (a rowid table); inbox_index maps (recipient,
    // seq) to a log id and is written in sorted batches (store/inbox-log.ts); inbox_indexed holds
    // the highest log id the index covers (rows above it are the tail, indexed in memory). Every
    // stored row is copied, one user after another in seq order, so each backlog is one stretch of
    // the log, and all of them are indexed here.
    sql: `
CREATE TABLE inbox_log (
  id INTEGER PRIMARY KEY NOT NULL,
  recipient TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sender TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  body BLOB NOT NULL
) STRICT;

CREATE INDEX inbox_log_ts ON inbox_log (ts);

CREATE TABLE inbox_index (
  recipient TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY (recipient, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE inbox_indexed (
  one INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
  upto INTEGER NOT NULL
) STRICT;

INSERT INTO inbox_log (recipient, seq, sender, msg_id, ts, body)
  SELECT recipient, seq, sender, msg_id, ts, body FROM inbox ORDER BY recipient, seq;

INSERT INTO inbox_index (recipient, seq, id) SELECT recipient, seq, id FROM inbox_log;

INSERT INTO inbox_indexed (one, upto) SELECT 1, coalesce(max(id), 0) FROM inbox_log;

DROP TABLE inbox;
`,
  },
  {
    version: 5,
    name: "per-user ack watermarks on the inbox log",
    // Issue 14: a cumulative ack records how far its user's rows are deleted (one row per user)
    // instead of deleting each row then; the rows at or below the mark are removed from the log
    // and the index later, in bounded chunks, when the writer is idle (store/inbox-log.ts). No
    // stored row moves: every message is kept.
    sql: `
CREATE TABLE inbox_acked (
  recipient TEXT PRIMARY KEY NOT NULL,
  upto INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 6,
    name: "each stored row's DELIVER frame head",
    // Issue 14: a row stores its v1 DELIVER frame up to the body (seq, ts, sender, id, body length;
    // protocol/v1-bundle.ts deliverHead), so a drain's page is copies of heads and bodies, with no
    // strings decoded or encoded while the user waits. Rows stored before this have no head (NULL)
    // and are encoded when read, as before: every stored message is kept, none is rewritten.
    sql: `
ALTER TABLE inbox_log ADD COLUMN head BLOB;
`,
  },
  {
    version: 7,
    name: "inbox expiry by log id spans instead of a ts index",
    // Issue 14: the ts index was one more B-tree insert per stored row, read only by expiry.
    // inbox_spans lists stretches of log ids with the lowest and highest receive time of the rows
    // appended in them (store/inbox-spans.ts); expiry scans only the spans that hold a row older
    // than its cutoff, by id range. Rows already stored are listed in spans of 4,096 ids each
    // (the rows migration 4 copied are in user order, not time order: each span's bounds are
    // exact). No stored row moves or changes: every message is kept.
    sql: `
CREATE TABLE inbox_spans (
  lo INTEGER PRIMARY KEY NOT NULL,
  hi INTEGER NOT NULL,
  min_ts INTEGER NOT NULL,
  max_ts INTEGER NOT NULL
) STRICT;

INSERT INTO inbox_spans (lo, hi, min_ts, max_ts)
  SELECT min(id), max(id), min(ts), max(ts) FROM inbox_log GROUP BY (id - 1) / 4096;

DROP INDEX inbox_log_ts;
`,
  },
  {
    version: 8,
    name: "dedupe keys logged a commit at a time",
    // Issue 14: sent_log took one row per key, 1.3-1.8 µs of the writer's 2.4-3.1 µs a key
    // (bench/store-micro.ts settle). A pack is one row per remember: its keys' strings back to
    // back and a column of numbers per key, with log ids lo..hi (store/sent-packs.ts). Keys in
    // sent_log stay there and are read as before; new keys go to packs, numbered after them.
    sql: `
CREATE TABLE sent_packs (
  lo INTEGER PRIMARY KEY NOT NULL,
  hi INTEGER NOT NULL,
  text TEXT NOT NULL,
  nums BLOB NOT NULL
) STRICT;
`,
  },
  {
    version: 9,
    name: "dedupe runs in one table",
    // Session 34: each run was a table of its own (sent_run_<lo>), one per 32,768 keys, so a day's
    // window at a steady 15,000 msgs/s made ~40,000 tables. Measured with 40,000 such tables: the
    // file held 170 MB of empty tables (a page each), opening it took 2 s (SQLite parses every
    // table's schema), and each new run's CREATE TABLE 13 ms. One table keyed by (run, hash, id)
    // keeps a run's keys together and the schema fixed; a run is built at the table's end (its lo
    // is the highest) and dropped as one range.
    sql: `
CREATE TABLE sent_run_keys (
  lo INTEGER NOT NULL,
  h INTEGER NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY (lo, h, id)
) STRICT, WITHOUT ROWID;
`,
    run: (db) => {
      for (const { lo } of db.query<{ lo: number }, []>("SELECT lo FROM sent_runs ORDER BY lo").all()) {
        if (!Number.isSafeInteger(lo) || lo < 0) throw new Error(`sent_runs holds a bad run start ${lo}`);
        db.run(`INSERT INTO sent_run_keys (lo, h, id) SELECT ${lo}, h, id FROM sent_run_${lo} ORDER BY h, id`);
        db.run(`DROP TABLE sent_run_${lo}`);
      }
    },
  },
  {
    version: 10,
    name: "dedupe filter images",
    // Session 35: a start rebuilt each shard's dedupe filter from the whole window (~0.9M keys a
    // second; every send looked up in the store meanwhile). A clean shutdown now leaves each
    // shard's filter here, read once by the next start (store/filter-images.ts). Part 0 of a shard
    // is the image's head (JSON, no bits); parts 1..n its filters' bit words. A rowid table: the
    // rows are few and large.
    sql: `
CREATE TABLE dedupe_filter_images (
  shard INTEGER NOT NULL,
  shards INTEGER NOT NULL,
  part INTEGER NOT NULL,
  meta TEXT NOT NULL,
  bits BLOB NOT NULL
) STRICT;

CREATE INDEX dedupe_filter_images_shard ON dedupe_filter_images (shard, part);
`,
  },
  {
    version: 11,
    name: "dedupe runs in slices",
    // Session 35: a run's keys were a row each of sent_run_keys, 0.7-1.0 µs of the writer's
    // 2.7-3.7 µs a logged key (bench/store-micro.ts settle). A run built from now on is its
    // (hash, id) pairs sorted and cut into slices of 240, a row each keyed by its last pair
    // (run-slices.ts), marked `sliced`. Runs built before stay rows and are read there until they
    // expire: moving them here ran at ~3.3M keys a second, minutes for a day's window at the
    // start of the upgrade.
    sql: `
CREATE TABLE sent_run_slices (
  lo INTEGER NOT NULL,
  last_h INTEGER NOT NULL,
  last_id INTEGER NOT NULL,
  pairs BLOB NOT NULL,
  PRIMARY KEY (lo, last_h, last_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE sent_runs ADD COLUMN sliced INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 12,
    name: "dedupe run groups",
    // Session 37: a lookup checked every run's filter and probed each that said "maybe" (~1%), so
    // its cost grew with the window (~3 ms at ~10,000 runs). A group's filter holds every key of
    // up to 64 consecutive runs (store/sent-runs.ts); a lookup checks a run's own filter only
    // inside a group that may hold the key. A row per sealed group; the open group is rebuilt from
    // its runs' slices at open. Runs built before stay ungrouped until they expire.
    sql: `
CREATE TABLE sent_run_groups (
  lo INTEGER PRIMARY KEY NOT NULL,
  hi INTEGER NOT NULL,
  keys INTEGER NOT NULL,
  max_ts INTEGER NOT NULL,
  filter BLOB NOT NULL
) STRICT;
`,
  },
];

/** Highest schema version this build knows. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

export function userVersion(db: Database): number {
  const row = db.query<{ user_version: number }, []>("PRAGMA user_version")
    .get();
  return row?.user_version ?? 0;
}

/**
 * Applies pending migrations in order, each in its own BEGIN IMMEDIATE
 * transaction together with its user_version bump, so a crash leaves the file
 * at a whole version. Idempotent: re-running on a migrated file does nothing.
 * Returns the version before and after.
 */
export function migrate(
  db: Database,
  migrations: readonly Migration[] = MIGRATIONS,
): { from: number; to: number } {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration #${i} has version ${m.version}, want ${i + 1}`);
    }
  });
  const latest = migrations.length;
  const from = userVersion(db);
  if (from > latest) {
    // A newer build wrote this file; running old code on it could corrupt it.
    throw new Error(
      `database schema version ${from} is newer than this build (${latest})`,
    );
  }
  for (const m of migrations) {
    if (m.version <= from) continue;
    db.transaction(() => {
      // Re-read under the write lock: another process may have migrated first.
      if (userVersion(db) >= m.version) return;
      db.run(m.sql);
      m.run?.(db);
      // PRAGMA does not take bound parameters; version is a checked integer.
      db.run(`PRAGMA user_version = ${m.version}`);
    }).immediate();
  }
  return { from, to: userVersion(db) };
}
