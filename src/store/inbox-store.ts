// Synchronous, single-connection inbox store, owned by the storage-writer
// thread. Nothing here is async and nothing is shared across threads.
//
// Drizzle vs bun:sqlite: drizzle defines the schema and runs the cold queries
// (prepared once). Per-message paths use bun:sqlite prepared statements on the
// same connection. Side-by-side per-call cost, in-memory DB (CPU only), Bun
// 1.4.5 on this 2-core VM:
//   - fetch: drizzle 0.88-0.99 us/row vs raw 0.38-0.41 us/row (2.3x);
//   - reserveSeqs upsert: drizzle 2.9-3.0 us vs raw 2.2 us per call (+30%);
//   - append insert: drizzle 2.2-2.3 us vs raw 1.9-2.0 us per row (+15%; on a
//     file the commit dominates and this is within noise).
// Also, drizzle's bun-sqlite driver types run() as void, so writes whose
// changed-row count we need (append, deletes, expire) use a bun:sqlite
// Statement, whose run() returns { changes }.

import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { eq, sql } from "drizzle-orm";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import { WAL_AUTOCHECKPOINT_BYTES } from "../limits.ts";
import type { StoredRow } from "../router/wire.ts";
import { migrate, SCHEMA_VERSION, userVersion } from "./migrations.ts";
import { type BodyBlob, type FrameRow, InboxLog, type ValueRow } from "./inbox-log.ts";
import { SentIds } from "./sent-ids.ts";
import { FilterImages } from "./filter-images.ts";
import { users } from "./schema.ts";

export type InboxRow = StoredRow;

export type AppendResult = "stored" | "duplicate" | "full";

export type UserState = { seqReserved: number; lastSeen: number };

export type InboxStoreOptions = {
  /** Rows per recipient before append answers "full". Infinity = no cap. */
  maxInboxPerUser: number;
  /** Bytes of the dedupe runs' filters kept in memory (sent-runs.ts); unset: all of them. */
  runFilterBytes?: number;
  /**
   * Called before an existing file's schema is migrated (not a new file's): a migration may move
   * every row of a large store, and whoever waits for the open should know to wait longer.
   */
  onMigrate?: (from: number, to: number) => void;
  /** expire() deletes rows older than this; 0 disables expiry. */
  ttlMs: number;
  /**
   * NORMAL (default): in WAL mode a commit is durable against a process crash
   * (SIGKILL, OOM kill) because the WAL frames are in the OS page cache when
   * COMMIT returns; only an OS crash / power loss can lose the last commits,
   * and the file stays consistent. That is the durability Iris promises.
   * FULL also fsyncs the WAL on every commit: survives power loss, at the
   * price of one fsync per group commit.
   */
  synchronous?: "NORMAL" | "FULL";
  /** How long a statement waits for a lock held by another connection. */
  busyTimeoutMs?: number;
  /** SQLite page cache for this connection. */
  cacheSizeKiB?: number;
  /**
   * WAL pages before an automatic checkpoint. SQLite's default (1000) makes
   * nearly every 1000-row commit across many recipients also checkpoint:
   * measured 17-23k rows/s vs 34-36k rows/s at 16384 (64 MiB WAL at 4 KiB
   * pages). The checkpoint runs inside the commit that crosses the limit, so
   * that commit takes longer (worst seen: ~150-400 ms). Default: 64 MiB of
   * pages at the file's page size.
   */
  walAutocheckpointPages?: number;
  /**
   * Page size of a file this opens for the first time (a file that has tables keeps its own).
   * 16 KiB: a flood's group commit writes fewer, fuller pages to the WAL than at SQLite's 4 KiB
   * (store alone, 10,000 inboxes: see docs/BENCHMARKS.md, "the writer's cost per stored row").
   */
  pageSizeBytes?: number;
  /** Recipients whose row count is cached; the oldest entry is dropped past it. */
  countCacheMax?: number;
};

const DEFAULTS = {
  synchronous: "NORMAL",
  busyTimeoutMs: 5000,
  cacheSizeKiB: 64 * 1024,
  pageSizeBytes: 16384,
  countCacheMax: 262_144,
} as const;

type Tx = ReturnType<Database["transaction"]>;

/** What the store keeps per recipient: exact row count, and the highest seq ever stored (a bound). */
type Counted = { n: number; max: number };

export class InboxStore {
  readonly #db: Database;
  readonly #orm: BunSQLiteDatabase;
  readonly #maxInbox: number;
  readonly #ttlMs: number;
  readonly #countCacheMax: number;
  /**
   * Per recipient (as this connection sees it), lazily loaded: the exact row count, and a seq no
   * stored row exceeds, so an append above it needs no lookup to rule out a duplicate.
   */
  readonly #counts = new Map<string, Counted>();
  /**
   * Per user, a seq that users.seq_reserved is known to be at least (in the file or the open
   * transaction): an append at or below it needs no upsert. In a flood into thousands of inboxes
   * that upsert touched one users row per row stored; owners store only seqs they reserved.
   * Learned from the users row at a user's first append, not at a reservation: every login
   * reserves, and an idle logged-in user's entry (~160 bytes of this thread's heap) bought
   * nothing (issue 14). A known user's later reservations still move it.
   */
  readonly #reservedAtLeast = new Map<string, number>();
  /** Exact total row count, or undefined until first asked for. */
  #total: number | undefined = undefined;
  readonly #tx: Tx;
  #closed = false;
  /** The durable dedupe window, on the same connection (and so in the same transactions). */
  readonly sent: SentIds;
  /** Each shard's dedupe filter from the last clean shutdown, read once at the next start. */
  readonly filterImages: FilterImages;

  /** The rows: an append-ordered log with a per-user index (inbox-log.ts). */
  readonly #log: InboxLog;
  // Hot-path statements (bun:sqlite, see header).
  readonly #bumpReserved: Statement;
  readonly #seqReserved: Statement<{ seq_reserved: number }, [string]>;
  readonly #reserve: Statement<{ seq_reserved: number; last_seen: number }, [string, number]>;
  // Cold paths: drizzle, prepared once.
  readonly #q: ReturnType<typeof prepareColdQueries>;

  private constructor(db: Database, opts: InboxStoreOptions) {
    this.#db = db;
    this.#orm = drizzle({ client: db });
    this.#maxInbox = opts.maxInboxPerUser;
    this.#ttlMs = opts.ttlMs;
    this.#countCacheMax = opts.countCacheMax ?? DEFAULTS.countCacheMax;
    this.#tx = db.transaction(<T>(fn: () => T): T => {
      const result = fn();
      // A promise would commit at its first await; refuse before COMMIT.
      if (result instanceof Promise) {
        throw new TypeError("InboxStore.transaction callback must be synchronous");
      }
      return result;
    });

    this.#log = new InboxLog(db);
    // Raise seq_reserved to at least ?2; the WHERE skips the write (and the
    // dirty page) in the normal case where the caller reserved the seq first.
    this.#bumpReserved = db.prepare(
      "INSERT INTO users (id, seq_reserved) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET seq_reserved = excluded.seq_reserved WHERE excluded.seq_reserved > users.seq_reserved",
    );
    this.#seqReserved = db.prepare<{ seq_reserved: number }, [string]>("SELECT seq_reserved FROM users WHERE id = ?1");
    // The WHERE keeps the counter a safe JS integer: past 2^53 - 1 the row is
    // left unchanged and nothing is returned.
    // last_seen comes back with it: a box's load needs both (one statement per login, not two).
    this.#reserve = db.prepare<{ seq_reserved: number; last_seen: number }, [string, number]>(
      "INSERT INTO users (id, seq_reserved) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET seq_reserved = users.seq_reserved + excluded.seq_reserved WHERE users.seq_reserved + excluded.seq_reserved <= 9007199254740991 RETURNING seq_reserved, last_seen",
    );
    this.#q = prepareColdQueries(this.#orm);
    this.sent = new SentIds(db, opts.runFilterBytes ?? Infinity);
    this.filterImages = new FilterImages(db);
  }

  static open(path: string, opts: InboxStoreOptions): InboxStore {
    checkOptions(opts);
    const inMemory = path === "" || path === ":memory:";
    if (!inMemory) mkdirSync(dirname(resolve(path)), { recursive: true });
    const db = new Database(path, { create: true, readwrite: true });
    try {
      // busy_timeout first so the journal-mode switch and migrations wait for
      // a lock instead of failing at once.
      const busy = opts.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs;
      db.run(`PRAGMA busy_timeout = ${busy}`);
      // Before WAL mode: it takes effect only while the file is still empty.
      db.run(`PRAGMA page_size = ${opts.pageSizeBytes ?? DEFAULTS.pageSizeBytes}`);
      const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get();
      if (!inMemory && mode?.journal_mode !== "wal") {
        throw new Error(`could not enable WAL on ${path} (got ${mode?.journal_mode})`);
      }
      db.run(`PRAGMA synchronous = ${opts.synchronous ?? DEFAULTS.synchronous}`);
      db.run(`PRAGMA cache_size = -${opts.cacheSizeKiB ?? DEFAULTS.cacheSizeKiB}`);
      // Savepoint sub-journals and expire()'s GROUP BY sorter stay in RAM
      // instead of temp files.
      db.run("PRAGMA temp_store = MEMORY");
      const page = db.query<{ page_size: number }, []>("PRAGMA page_size").get()?.page_size ?? 4096;
      const ckpt = opts.walAutocheckpointPages ?? Math.ceil(WAL_AUTOCHECKPOINT_BYTES / page);
      db.run(`PRAGMA wal_autocheckpoint = ${ckpt}`);
      // After a checkpoint resets the WAL, truncate a WAL that grew past the
      // checkpoint size (e.g. while a reader held it) back to that size.
      db.run(`PRAGMA journal_size_limit = ${ckpt * page}`);
      const from = userVersion(db);
      if (from > 0 && from < SCHEMA_VERSION) opts.onMigrate?.(from, SCHEMA_VERSION);
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    const store = new InboxStore(db, opts);
    try {
      // Reads the dedupe runs and tail now, so a log migrated from the keyed table is indexed at
      // open, before the writer serves, not inside its first group commit.
      store.sent.runCount();
      store.#log.tailRows(); // and the inbox tail, read back from the log
    } catch (err) {
      store.close();
      throw err;
    }
    return store;
  }

  /**
   * Runs fn in one SQLite transaction (BEGIN IMMEDIATE; a SAVEPOINT when
   * nested). Commits when fn returns, rolls back and rethrows when it throws.
   * fn must be synchronous.
   *
   * The store's own multi-statement methods (append, deleteSeqs, setLastSeen,
   * expire) do not open a savepoint when called inside this: a savepoint makes
   * SQLite copy every page it then modifies to a sub-journal, which measured
   * 19k vs 33k rows/s for 1000-row appends. So if one of them throws inside
   * your transaction, it may have done part of its work: let the exception
   * roll the transaction back (the Writer does).
   */
  transaction<T>(fn: () => T): T {
    this.#checkOpen();
    try {
      return this.#tx.immediate(fn) as T;
    } catch (err) {
      this.#dropCaches();
      throw err;
    }
  }

  /** Hands out `count` new sequence numbers for `user`: old+1 .. old+count, and the user's last-seen time. */
  reserveSeqs(user: string, count: number): { first: number; last: number; lastSeen: number } {
    this.#checkOpen();
    checkString(user, "user");
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(`reserveSeqs count must be a positive integer, got ${count}`);
    }
    const row = this.#reserve.get(user, count);
    if (row === null) {
      throw new RangeError(`sequence space exhausted for user ${JSON.stringify(user)}`);
    }
    const last = row.seq_reserved;
    if (this.#reservedAtLeast.has(user)) this.#knowReserved(user, last);
    return { first: last - count + 1, last, lastSeen: row.last_seen };
  }

  /**
   * Stores rows; returns one result per row, in order. Rows are processed in
   * order, so a later row in the same call sees the earlier ones.
   * - duplicate: (recipient, seq) already stored; or, on the "full" path only,
   *   a non-empty (recipient, sender, msgId) in the dedupe window (the writer
   *   remembers each stored row's key in the same transaction). Checked before
   *   "full", so a retried send is acknowledged even when the inbox has filled
   *   since. Ids are not unique in the inbox itself: owners consult the window
   *   before they accept one (migration 3 dropped the index).
   * - full: the recipient already has maxInboxPerUser rows.
   * users.seq_reserved is raised to the highest seq seen per recipient (any
   * outcome), so reservations never hand out a seq a caller already used.
   */
  append(rows: InboxRow[]): AppendResult[] {
    this.#checkOpen();
    for (const row of rows) checkRow(row);
    if (rows.length === 0) return [];
    return this.#atomic(() => {
      const results: AppendResult[] = new Array<AppendResult>(rows.length);
      // Only users with a seq above what is known reserved (owners store seqs they reserved, so
      // rarely any): filling and walking a Map of every recipient of the batch was ~4% of the
      // store micro's samples in the flood (issue 14).
      let maxSeq: Map<string, number> | null = null;
      let stored = 0;
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        if (r.seq > (this.#reservedAtLeast.get(r.recipient) ?? 0)) {
          const prev = (maxSeq ??= new Map()).get(r.recipient);
          if (prev === undefined || r.seq > prev) maxSeq.set(r.recipient, r.seq);
        }
        const c = this.#counted(r.recipient);
        if (c.n >= this.#maxInbox) {
          results[i] = this.#isDuplicate(r, c) ? "duplicate" : "full";
          continue;
        }
        if (r.seq <= c.max && this.#log.has(r.recipient, r.seq)) {
          results[i] = "duplicate";
          continue;
        }
        this.#log.insert(r);
        c.n++;
        if (r.seq > c.max) c.max = r.seq;
        stored++;
        results[i] = "stored";
      }
      this.#log.endAppend();
      for (const [recipient, seq] of maxSeq ?? []) {
        this.#bumpReserved.run(recipient, seq);
        // What the row holds now: the whole reservation this seq came from, so the rest of the
        // block needs no upsert either (one read a user per block, not one upsert a row).
        this.#knowReserved(recipient, this.#seqReserved.get(recipient)?.seq_reserved ?? seq);
      }
      if (this.#total !== undefined) this.#total += stored;
      return results;
    });
  }

  /** Up to `limit` rows of `user` with seq > afterSeq, ascending by seq. */
  fetch(user: string, afterSeq: number, limit: number): InboxRow[] {
    this.#checkFetch(user, afterSeq, limit);
    if (limit === 0) return [];
    return this.#log.fetch(user, afterSeq, limit);
  }

  /** As fetch, as SQLite's value rows [seq, sender, msg_id, ts, body] (inbox-log.ts): for the drain's pages. */
  fetchValues(user: string, afterSeq: number, limit: number): ValueRow[] {
    this.#checkFetch(user, afterSeq, limit);
    if (limit === 0) return [];
    return this.#log.fetchValues(user, afterSeq, limit);
  }

  /** As fetchValues, in the form a drain's page is built from (inbox-log.ts FrameRow). */
  fetchFrameRows(user: string, afterSeq: number, limit: number): FrameRow[] {
    this.#checkFetch(user, afterSeq, limit);
    if (limit === 0) return [];
    return this.#log.fetchFrameRows(user, afterSeq, limit);
  }

  /** The same rows as blobs of whole frames, or null when rows must be read (inbox-log.ts). */
  fetchFrameBlobs(user: string, afterSeq: number, limit: number): Uint8Array[] | null {
    this.#checkFetch(user, afterSeq, limit);
    if (limit === 0) return [];
    return this.#log.fetchFrameBlobs(user, afterSeq, limit);
  }

  /** The same rows as their bodies joined, for a v0 link; null when rows must be read (inbox-log.ts). */
  fetchBodyBlobs(user: string, afterSeq: number, limit: number): BodyBlob[] | null {
    this.#checkFetch(user, afterSeq, limit);
    if (limit === 0) return [];
    return this.#log.fetchBodyBlobs(user, afterSeq, limit);
  }

  #checkFetch(user: string, afterSeq: number, limit: number): void {
    this.#checkOpen();
    checkString(user, "user");
    if (typeof afterSeq !== "number" || Number.isNaN(afterSeq)) {
      throw new TypeError(`afterSeq must be a number, got ${afterSeq}`);
    }
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
    }
  }

  /** Deletes `user`'s rows with seq <= `seq`; returns how many. */
  deleteUpTo(user: string, seq: number): number {
    this.#checkOpen();
    checkString(user, "user");
    if (typeof seq !== "number" || Number.isNaN(seq)) {
      throw new TypeError(`seq must be a number, got ${seq}`);
    }
    return this.#atomic(() => {
      const changes = this.#log.deleteUpTo(user, seq);
      this.#subtract(user, changes);
      return changes;
    });
  }

  /** Deletes the listed seqs of `user` (missing ones are ignored); returns how many. */
  deleteSeqs(user: string, seqs: number[]): number {
    this.#checkOpen();
    checkString(user, "user");
    for (const s of seqs) {
      if (typeof s !== "number" || Number.isNaN(s)) {
        throw new TypeError(`seqs must be numbers, got ${s}`);
      }
    }
    if (seqs.length === 0) return 0;
    return this.#atomic(() => {
      let deleted = 0;
      for (const s of seqs) deleted += this.#log.deleteSeq(user, s);
      this.#subtract(user, deleted);
      return deleted;
    });
  }

  /** Users whose reservation this store has learned (see #reservedAtLeast): a login adds none. */
  reservationsKnown(): number {
    return this.#reservedAtLeast.size;
  }

  /** Rows currently stored for `user` (cached; one COUNT on first touch). */
  count(user: string): number {
    this.#checkOpen();
    checkString(user, "user");
    return this.#counted(user).n;
  }

  /**
   * Rows currently stored for everyone. The first call runs COUNT(*) over the
   * primary key (O(rows), once per open or after a rollback); later calls
   * return a running total kept by append/delete/expire.
   */
  totalCount(): number {
    this.#checkOpen();
    if (this.#total === undefined) {
      this.#total = this.#log.total();
    }
    return this.#total;
  }

  /**
   * Batched upsert of last-seen times. Monotonic: an older ts than the stored
   * one is ignored, so out-of-order batches cannot move it backwards.
   */
  setLastSeen(entries: { user: string; ts: number }[]): void {
    this.#checkOpen();
    for (const e of entries) {
      checkString(e.user, "user");
      checkSafeInt(e.ts, "ts");
    }
    if (entries.length === 0) return;
    this.#atomic(() => {
      for (const e of entries) this.#q.setLastSeen.run({ id: e.user, ts: e.ts });
    });
  }

  /** Admin view of one inbox: rows, body bytes, and the oldest row's receive time (0 when empty). */
  inboxFigures(user: string): { rows: number; bytes: number; oldestTs: number } {
    this.#checkOpen();
    checkString(user, "user");
    return this.#log.sizes(user);
  }

  getUser(user: string): UserState | null {
    this.#checkOpen();
    checkString(user, "user");
    return this.#q.getUser.get({ id: user }) ?? null;
  }

  /** Deletes rows with ts < nowMs - ttlMs (no-op when ttlMs is 0); returns how many. */
  expire(nowMs: number): number {
    this.#checkOpen();
    checkSafeInt(nowMs, "nowMs");
    if (this.#ttlMs <= 0) return 0;
    const cutoff = nowMs - this.#ttlMs;
    return this.#atomic(() => {
      // Per-recipient counts, so cached counts stay exact.
      let changes = 0;
      for (const [recipient, n] of this.#log.expire(cutoff)) {
        changes += n;
        const cached = this.#counts.get(recipient);
        if (cached !== undefined) cached.n -= n;
      }
      if (this.#total !== undefined) this.#total -= changes;
      return changes;
    });
  }

  /** Are deleted rows waiting under an ack watermark to be removed from the files (inbox-log.ts)? */
  inboxCompactDue(): boolean {
    if (this.#closed) return false; // a timer that outlived the store has nothing to do
    return this.#log.compactDue();
  }

  /**
   * Removes up to about `rows` deleted rows (under ack watermarks) from the log and its index. Call
   * inside transaction(). Counts do not change: those rows were counted out when acked.
   */
  compactInbox(rows: number): number {
    this.#checkOpen();
    return this.#log.compact(rows);
  }

  /** Is the inbox log's tail due to enter the per-user index (inbox-log.ts)? */
  inboxIndexDue(): boolean {
    this.#checkOpen();
    return this.#log.due();
  }

  /**
   * Writes the next slice (about `sliceRows` rows) of the inbox log's tail into the per-user
   * index; the last slice of a batch completes it. Call inside transaction(). Returns rows written.
   */
  buildInboxIndex(sliceRows?: number): number {
    this.#checkOpen();
    return this.#log.buildIndex(sliceRows);
  }

  /**
   * Copies the WAL into the database and truncates it to zero bytes: the disk space the WAL took
   * (up to walAutocheckpointPages pages) goes back to the file system. Throws like any write.
   */
  checkpointTruncate(): void {
    this.#checkOpen();
    this.#db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /** Closes the connection; further calls throw. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#counts.clear();
    this.#reservedAtLeast.clear();
    // true: finalize every statement now so the connection really closes (and
    // the last connection checkpoints and removes the -wal/-shm files).
    this.#db.close(true);
  }

  // --- internals -----------------------------------------------------------

  /** fn atomically: its own transaction at top level, the caller's otherwise (see transaction()). */
  #atomic<T>(fn: () => T): T {
    if (!this.#db.inTransaction) return this.transaction(fn);
    try {
      return fn();
    } catch (err) {
      // The caller's transaction will be rolled back (or SQLite already did).
      this.#dropCaches();
      throw err;
    }
  }

  /**
   * Cached counts may include rows that were rolled back. Dropping them is
   * always correct: they reload from SQLite on next use.
   */
  #dropCaches(): void {
    this.#counts.clear();
    this.#reservedAtLeast.clear();
    this.#total = undefined;
    this.#log.dropCaches();
    this.sent.dropCaches();
  }

  #counted(user: string): Counted {
    const cached = this.#counts.get(user);
    if (cached !== undefined) return cached;
    const f = this.#log.figures(user);
    const c: Counted = { n: f.n, max: f.max };
    if (this.#counts.size >= this.#countCacheMax) {
      // Evict the oldest-inserted entry; it reloads exactly if touched again.
      const oldest = this.#counts.keys().next();
      if (oldest.done !== true) this.#counts.delete(oldest.value);
    }
    this.#counts.set(user, c);
    return c;
  }

  /** seq_reserved of `user` is at least `seq` now; bounded as the counts are (oldest entry out). */
  #knowReserved(user: string, seq: number): void {
    const m = this.#reservedAtLeast;
    if (!m.has(user) && m.size >= this.#countCacheMax) {
      const oldest = m.keys().next();
      if (oldest.done !== true) m.delete(oldest.value);
    }
    if ((m.get(user) ?? 0) < seq) m.set(user, seq);
  }

  #subtract(user: string, n: number): void {
    if (n === 0) return;
    const cached = this.#counts.get(user);
    if (cached !== undefined) cached.n -= n;
    if (this.#total !== undefined) this.#total -= n;
  }

  /** Only on the "full" path: would this row have been a duplicate? */
  #isDuplicate(r: InboxRow, c: Counted): boolean {
    if (r.seq <= c.max && this.#log.has(r.recipient, r.seq)) return true;
    if (r.msgId === "") return false;
    return this.sent.lookup(r.recipient, r.sender, r.msgId, 0) > 0;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("InboxStore is closed");
  }
}

/** Drizzle prepared statements for everything off the per-message path. */
function prepareColdQueries(orm: BunSQLiteDatabase) {
  const p = sql.placeholder;
  return {
    getUser: orm
      .select({ seqReserved: users.seqReserved, lastSeen: users.lastSeen })
      .from(users)
      .where(eq(users.id, p("id")))
      .prepare(),
    // Monotonic: an older ts than the stored one leaves the row alone.
    setLastSeen: orm
      .insert(users)
      .values({ id: p("id"), lastSeen: p("ts") })
      .onConflictDoUpdate({
        target: users.id,
        set: { lastSeen: sql`excluded.last_seen` },
        setWhere: sql`excluded.last_seen > ${users.lastSeen}`,
      })
      .prepare(),
  };
}

function checkOptions(opts: InboxStoreOptions): void {
  const max = opts.maxInboxPerUser;
  if (!(max === Number.POSITIVE_INFINITY || (Number.isSafeInteger(max) && max > 0))) {
    throw new RangeError(`maxInboxPerUser must be a positive integer or Infinity, got ${max}`);
  }
  checkSafeInt(opts.ttlMs, "ttlMs");
  if (opts.ttlMs < 0) throw new RangeError(`ttlMs must be >= 0, got ${opts.ttlMs}`);
  if (opts.synchronous !== undefined && opts.synchronous !== "NORMAL" && opts.synchronous !== "FULL") {
    throw new RangeError(`synchronous must be "NORMAL" or "FULL", got ${String(opts.synchronous)}`);
  }
  // These are interpolated into PRAGMA text, so they must be plain integers.
  for (
    const key of ["busyTimeoutMs", "cacheSizeKiB", "walAutocheckpointPages", "countCacheMax", "pageSizeBytes"] as const
  ) {
    const v = opts[key];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
      throw new RangeError(`${key} must be a non-negative integer, got ${v}`);
    }
  }
  checkPageSize(opts.pageSizeBytes);
}

/** SQLite's page sizes: powers of two from 512 to 65,536 (it ignores any other value silently). */
function checkPageSize(v: number | undefined): void {
  if (v === undefined) return;
  if (!(Number.isSafeInteger(v) && v >= 512 && v <= 65536 && (v & (v - 1)) === 0)) {
    throw new RangeError(`pageSizeBytes must be a power of two from 512 to 65536, got ${v}`);
  }
}

function checkRow(r: InboxRow): void {
  checkString(r.recipient, "recipient");
  checkString(r.sender, "sender");
  if (typeof r.msgId !== "string") throw new TypeError("msgId must be a string");
  if (!Number.isSafeInteger(r.seq) || r.seq < 1) {
    throw new RangeError(`seq must be a positive safe integer, got ${r.seq}`);
  }
  checkSafeInt(r.ts, "ts");
  if (!(r.body instanceof Uint8Array)) throw new TypeError("body must be a Uint8Array");
}

function checkString(v: unknown, name: string): void {
  if (typeof v !== "string") throw new TypeError(`${name} must be a string`);
}

function checkSafeInt(v: unknown, name: string): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`${name} must be a safe integer, got ${v}`);
}
