// The durable dedupe window: every (recipient, sender, msg_id) accepted within it and the seq it
// got. Written in the writer's group commits next to the inbox rows; read on a possible retry;
// expired by time in bounded steps. Same connection as the inbox store.
//
// Layout (issue 14): an append-only log (sent_log, in id order) plus sorted runs (sent-runs.ts).
// A group commit only appends to the log's last pages; with one index keyed by the key, every
// key dirtied a random B-tree page and the commit wrote it to the WAL (measured 12.5-16.8 µs of
// CPU per key at 60 keys per commit vs 1.9 µs for the log alone). The keys appended since the
// last run (the tail) are also held in memory and looked up there; the tail becomes a run when it
// holds DEDUPE_RUN_KEYS keys, or when its oldest key is a DEDUPE_RUN_SLICES-th of the window old.
// Since migration 8 the log is appended a remember at a time, one sent_packs row each
// (sent-packs.ts); keys logged before stay in sent_log, read where a read needs them.

import type { Database, Statement } from "bun:sqlite";
import { DEDUPE_RUN_KEYS, DEDUPE_RUN_SLICES } from "../limits.ts";
import type { SentKey } from "../router/wire.ts";
import { packRemember, REMEMBER_FIELDS } from "../router/packed-keys.ts";
import { sentKeyHash } from "../router/sent-filter.ts";
import { type LogRow, packColumn, PackLog } from "./sent-packs.ts";
import { type KeyHashes, keyHashes, SentRuns } from "./sent-runs.ts";
import { KeyColumns } from "./key-columns.ts";
import { TailIndex } from "./tail-index.ts";

/** A key as a filter rebuild reads it, with its log id (the page cursor). */
export type SentKeyRow = [id: number, recipient: string, sender: string, msgId: string, ts: number];

/** A page of the filter rebuild (hashPage): the kept keys' hashes (two each) and times. */
export interface HashPage {
  hashes: Uint32Array;
  ts: Float64Array;
  last: number;
  read: number;
}

export class SentIds {
  readonly #db: Database;
  readonly #runs: SentRuns;
  readonly #packs: PackLog;
  /** sent_log rows (keys logged before migration 8) after an id, for the tail. */
  readonly #tailPage: Statement<LogRow, [number, number]>;
  readonly #page: Statement;
  /** The log id the next key gets (read from the file with the tail). */
  #nextId = 1;
  /**
   * Every record appended after the last run, in id order (a run indexes them all), as columns:
   * no object or string per key (key-columns.ts).
   */
  readonly #tail = new KeyColumns();
  /** The tail's first record of each 53-bit hash, kept on every add (tail-index.ts). */
  readonly #tailIndex = new TailIndex(this.#tail);
  /** Log id where the tail starts (0 until a row is appended after the last run). */
  #tailLo = 0;
  #tailHi = 0;
  #tailMinTs = Number.POSITIVE_INFINITY;
  /** Tail and runs must be read again from the file (at open, after a rollback). */
  #stale = true;
  #total: number | undefined;

  /** `runFilterBytes`: the runs' filters kept in memory (sent-runs.ts). */
  constructor(db: Database, runFilterBytes = Infinity) {
    this.#db = db;
    this.#packs = new PackLog(db);
    this.#runs = new SentRuns(db, this.#packs, runFilterBytes);
    this.#tailPage = db.prepare<LogRow, [number, number]>(
      "SELECT id, recipient, sender, msg_id, seq, ts FROM sent_log WHERE id > ?1 ORDER BY id LIMIT CAST(?2 AS INTEGER)",
    );
    this.#page = db.prepare(
      "SELECT id, recipient, sender, msg_id, ts FROM sent_log WHERE id > ?1 AND ts >= ?2 ORDER BY id LIMIT CAST(?3 AS INTEGER)",
    );
  }

  /** Records accepted keys (a key already known keeps its first seq); returns how many were logged. */
  remember(keys: SentKey[]): number {
    if (keys.length === 0) return 0;
    const p = packRemember({ t: "remember", keys }); // hashes the keys that come without them
    return this.rememberPacked(p.text, p.nums);
  }

  /**
   * remember() for keys as an owner packed them for the port (router/packed-keys.ts, checked by
   * the port's guard): stored as they came, no key object made (issue 14).
   */
  rememberPacked(text: string, column: number[] | Float64Array): number {
    this.#fresh();
    if (column.length === 0) return 0;
    const nums = packColumn(column);
    const lo = this.#nextId;
    const n = this.#packs.insertPacked(lo, text, nums);
    this.#nextId = lo + n; // after the insert: a failed one leaves the ids free (and the tx rolls back)
    for (let i = 0, id = lo; i < nums.length; i += REMEMBER_FIELDS, id++) {
      this.#addToTail(id, nums[i + 5]!, nums[i + 6]!, nums[i + 3]!, nums[i + 4]!);
    }
    if (this.#total !== undefined) this.#total += n;
    return n;
  }

  /** The last log id given (0 when the log is empty): a filter image ends there (filter-images.ts). */
  get lastId(): number {
    this.#fresh();
    return this.#nextId - 1;
  }

  /** The seq a key got if it was accepted at or after `since`, else 0. */
  lookup(recipient: string, sender: string, msgId: string, since: number): number {
    this.#fresh();
    const hashes = keyHashes(recipient, sender, msgId); // once, for the runs and the tail
    const seq = this.#runs.find(recipient, sender, msgId, since, hashes);
    if (seq > 0) return seq;
    const t = this.#tailFirst(recipient, sender, msgId, hashes);
    return t >= 0 && this.#tail.ts[t]! >= since ? this.#tail.seq[t]! : 0;
  }

  /** The position of the tail's first record of the key, or -1. */
  #tailFirst(recipient: string, sender: string, msgId: string, { h }: KeyHashes): number {
    const tail = this.#tail;
    const from = this.#tailIndex.first(h);
    if (from < 0) return -1;
    // Later records with the same hash: the same key again, or (rarely) another key it collides with.
    for (let i = from; i < tail.n; i++) {
      if (tail.h[i] === h && this.#isKey(tail.id[i]!, recipient, sender, msgId)) return i;
    }
    return -1;
  }

  /**
   * Whether log id `id` holds this key: its text is read from the log (the tail keeps none), on a
   * 53-bit hash match only, which a real retry or a rare collision makes.
   */
  #isKey(id: number, recipient: string, sender: string, msgId: string): boolean {
    const r = this.#packs.at(id);
    return r !== null && r[1] === recipient && r[2] === sender && r[3] === msgId;
  }

  /** Is the tail big or old enough to become a run (see header)? */
  due(now: number, windowMs: number): boolean {
    this.#fresh();
    if (this.#tail.n >= DEDUPE_RUN_KEYS) return true;
    return this.#tail.n > 0 && this.#tailMinTs < now - windowMs / DEDUPE_RUN_SLICES;
  }

  /** Turns the tail into a run. Call inside a tx (the writer: after a commit, in its own). */
  buildRun(): void {
    this.#fresh();
    if (this.#tail.n === 0) return;
    this.#runs.build(this.#tail, this.#tailLo, this.#tailHi);
    this.#clearTail();
  }

  /**
   * Drops whole runs older than `cutoff`, oldest first, until at least `limit` keys went (one run
   * at least, if one is old enough); returns how many. Keys in the tail wait until it is a run.
   */
  expire(cutoff: number, limit: number): number {
    this.#fresh();
    let deleted = 0;
    while (deleted < limit) {
      const n = this.#runs.dropOldest(cutoff);
      if (n < 0) break;
      deleted += n;
    }
    if (this.#total !== undefined) this.#total -= deleted;
    return deleted;
  }

  /** Keys accepted at or after `since`, in log order, after log id `after` (sent_log's first, then the packs'), as text: what hashPage reads as hashes. */
  page(after: number, since: number, limit: number): SentKeyRow[] {
    const rows = this.#page.values(after, since, limit) as SentKeyRow[];
    if (rows.length === limit) return rows;
    this.#packs.each(after, (r) => {
      if (r[5] >= since) rows.push([r[0], r[1], r[2], r[3], r[5]]);
      return rows.length < limit;
    });
    return rows;
  }

  /**
   * A page of the filter rebuild: the keys after log id `after` accepted at or after `since`, at
   * most `limit` of them, as their two hashes and ts; only those whose recipient `mine` keeps
   * (null: all). `last`: the id of the last key read (the next page's `after`); `read`: keys read,
   * kept or not (fewer than `limit`: the log's end).
   */
  hashPage(after: number, since: number, limit: number, mine: ((recipient: string) => boolean) | null): HashPage {
    const hashes = new Uint32Array(2 * limit);
    const ts = new Float64Array(limit);
    let n = 0, read = 0, last = after;
    const keep = (id: number, h1: number, h2: number, t: number): void => {
      hashes[2 * n] = h1;
      hashes[2 * n + 1] = h2;
      ts[n++] = t;
      last = id;
    };
    // Keys logged before migration 8 (lower ids than every pack), hashed here.
    for (const [id, recipient, sender, msgId, t] of this.#page.values(after, since, limit) as SentKeyRow[]) {
      read++;
      last = id;
      if (mine === null || mine(recipient)) keep(id, ...sentKeyHash(recipient, sender, msgId), t);
    }
    if (read < limit) {
      this.#packs.eachHashed(after, mine !== null, (id, h1, h2, t, recipient) => {
        if (t < since) return true;
        read++;
        last = id;
        if (mine === null || mine(recipient)) keep(id, h1, h2, t);
        return read < limit;
      });
    }
    return { hashes: hashes.slice(0, 2 * n), ts: ts.slice(0, n), last, read };
  }

  count(): number {
    this.#total ??= this.#packs.count();
    return this.#total;
  }

  /** Runs currently built (for tests and figures). */
  runCount(): number {
    this.#fresh();
    return this.#runs.list.length;
  }

  /** Groups of runs with a live run (sent-runs.ts; for tests and figures). */
  runGroupCount(): number {
    this.#fresh();
    return this.#runs.groupCount;
  }

  /** The runs' filters in memory: their bytes, and the runs whose filter was let go (probed on every lookup). */
  runFilters(): { bytes: number; unfiltered: number } {
    this.#fresh();
    return { bytes: this.#runs.filterBytes, unfiltered: this.#runs.unfiltered };
  }

  /** After a rollback the tail, the runs and the running total may be off: read them again. */
  dropCaches(): void {
    this.#total = undefined;
    this.#stale = true;
    this.#packs.dropDecoded();
  }

  #addToTail(id: number, h1: number, h2: number, seq: number, ts: number): void {
    if (this.#tailLo === 0) this.#tailLo = id;
    this.#tailHi = id;
    const tail = this.#tail;
    tail.push(id, h1, h2, seq, ts);
    // First record of a hash only: a key recorded twice keeps its first seq.
    this.#tailIndex.add(tail.n - 1);
    if (ts < this.#tailMinTs) this.#tailMinTs = ts;
  }

  #clearTail(): void {
    this.#tail.clear();
    this.#tailIndex.clear();
    this.#tailLo = 0;
    this.#tailHi = 0;
    this.#tailMinTs = Number.POSITIVE_INFINITY;
  }

  /**
   * Reads runs and tail from the file. A long tail (a file migrated from the keyed table, or a
   * crash before a build) is indexed here, a run per DEDUPE_RUN_KEYS rows, in one transaction.
   */
  #fresh(): void {
    if (!this.#stale) return;
    this.#stale = false;
    this.#runs.load();
    this.#clearTail();
    this.#nextId = this.#packs.maxId() + 1;
    const covered = this.#runs.coveredUpTo;
    const reindex = (): void => {
      for (let after = covered;;) {
        const rows = this.#tailPage.values(after, DEDUPE_RUN_KEYS) as LogRow[];
        for (const r of rows) {
          const { h1, h2 } = keyHashes(r[1], r[2], r[3]);
          this.#addToTail(r[0], h1, h2, r[4], r[5]);
        }
        if (rows.length < DEDUPE_RUN_KEYS) break;
        after = this.#tailHi;
        this.#runs.build(this.#tail, this.#tailLo, this.#tailHi);
        this.#clearTail();
      }
      // Packs hold higher ids than sent_log, and a run covers whole packs: those above `covered`
      // are the rest of the tail. A full tail becomes a run at a pack's end.
      this.#packs.eachHashed(covered, false, (id, h1, h2, ts, _recipient, seq, packLo) => {
        if (id === packLo && this.#tail.n >= DEDUPE_RUN_KEYS) {
          this.#runs.build(this.#tail, this.#tailLo, this.#tailHi);
          this.#clearTail();
        }
        this.#addToTail(id, h1, h2, seq, ts);
        return true;
      });
    };
    try {
      if (this.#db.inTransaction) reindex();
      else this.#db.transaction(reindex).immediate();
    } catch (err) {
      this.#stale = true;
      throw err;
    }
  }
}
