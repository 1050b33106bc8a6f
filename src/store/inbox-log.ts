// The inbox as an append-ordered log with a per-user index (issue 14, migration 4).
//
// inbox_log is a rowid table: every stored row is appended at the end, so a group commit writes
// only the log's last pages, whatever inboxes its rows go to. inbox_index maps (recipient, seq)
// to the row's log id. Keyed by recipient, it would dirty one random page per row in every commit
// (the cost the old WITHOUT ROWID inbox had: 17.7 vs 1.5 µs of CPU per row for 830-row commits to
// 10,000 inboxes). So the rows appended since the last index build (the tail) are indexed in
// memory only, and the tail enters inbox_index in one sorted batch once it holds
// INBOX_INDEX_BATCH rows: each index page is then written once per batch, not once per row.
// inbox_indexed records the highest log id the index covers, in the batch's transaction; the tail
// is every live row above it, so the store reads it back from the file at open and after a
// rollback. A batch is written in slices of whole users (INBOX_INDEX_SLICE rows, one transaction
// each, after the writer's commits), so the writer never stalls for a whole batch; index rows above
// the mark, written by a slice before the batch completes, are ignored by reads (their rows are
// still in the tail) and written again, harmlessly, if a crash or rollback cut the batch short.
// A cumulative ack does not delete rows then: it moves the user's watermark (inbox_acked, one row
// per user), and every read, count and lookup treats the rows at or below it as gone. The writer
// removes them from the log and the index later, in bounded chunks when it is idle (compact): a
// drain's deletes no longer sit between its page reads (issue 14). A backlog stored while its user
// was away is one stretch of the log, so a chunk deletes whole pages.

import type { Database, Statement } from "bun:sqlite";
import { INBOX_INDEX_BATCH, INBOX_INDEX_SLICE } from "../limits.ts";
import type { StoredRow } from "../router/wire.ts";
import { deliverHead } from "../protocol/v1-bundle.ts";
import { InboxSpans } from "./inbox-spans.ts";

/** One user's tail: seqs ascending, ids[i] is the log id of seqs[i]. */
interface TailUser {
  seqs: number[];
  ids: number[];
}

export type ValueRow = ReturnType<Statement["values"]>[number];
/**
 * A row as a drain's page reads it: [seq, head, body, sender, msg_id, ts]. head is the stored
 * DELIVER frame head (migration 6); sender, msg_id and ts are read only for a row without one.
 */
export type FrameRow = ValueRow;

/** An index lookup for one user: rows and the highest seq. */
export interface UserFigures {
  n: number;
  max: number;
}

/** Index of the first element > x in an ascending array. */
function upperBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** [lo, hi] runs of consecutive integers in an ascending list. */
export function idRuns(ids: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const id of ids) {
    const last = out[out.length - 1];
    if (last !== undefined && id === last[1] + 1) last[1] = id;
    else out.push([id, id]);
  }
  return out;
}

function toRow(recipient: string, v: ValueRow): StoredRow {
  return {
    recipient,
    seq: v[0] as number,
    sender: v[1] as string,
    msgId: v[2] as string,
    ts: v[3] as number,
    body: v[4] as Uint8Array,
  };
}

export class InboxLog {
  readonly #db: Database;
  #tail = new Map<string, TailUser>();
  #tailRows = 0;
  /** Log ids up to this are in inbox_index (or deleted); the tail is every live row above. */
  #indexedTo = 0;
  /**
   * The next row's log id, set explicitly: SQLite would reuse the ids of deleted rows at the end
   * of the log, and such a row at or below indexedTo would be missed by the tail.
   */
  #nextId = 1;
  /** A batch being written: its users, sorted, the next one's position, and its mark (top log id). */
  #batch: { users: string[]; next: number; mark: number } | null = null;
  /** Ack watermarks (inbox_acked): each user's rows at or below are deleted, not yet removed. */
  #acked = new Map<string, number>();
  /** The tail must be read again from the file (at open, after a rollback). */
  #stale = true;
  readonly #s: ReturnType<typeof prepare>;
  readonly #b: ReturnType<typeof prepareBlobs>;
  /** Expiry's index: id stretches with their ts bounds (inbox-spans.ts, migration 7). */
  readonly #spans: InboxSpans;

  constructor(db: Database) {
    this.#db = db;
    this.#s = prepare(db);
    this.#b = prepareBlobs(db);
    this.#spans = new InboxSpans(db);
  }

  /** Forget the in-memory tail; it is read from the file on next use. */
  dropCaches(): void {
    this.#stale = true;
    this.#tail.clear();
    this.#tailRows = 0;
    this.#batch = null;
    this.#acked.clear();
  }

  /** Rows waiting in the tail (memory only until the next index build). */
  tailRows(): number {
    this.#fresh();
    return this.#tailRows;
  }

  /** Appends one row (the caller checked it is not a duplicate). */
  insert(r: StoredRow): void {
    this.#fresh();
    // Below the watermark it would read as deleted: remove what the mark covers, then drop the mark.
    if (r.seq <= this.#mark(r.recipient)) this.#purge(r.recipient, Number.POSITIVE_INFINITY);
    const id = this.#nextId++;
    const head = deliverHead(r.seq, r.ts, r.sender, r.msgId, r.body.byteLength);
    this.#s.insert.run(id, r.recipient, r.seq, r.sender, r.msgId, r.ts, r.body, head);
    this.#spans.add(id, r.ts);
    this.#addToTail(r.recipient, r.seq, id);
  }

  /** Writes what insert() kept in memory for the file (the open span): once per append, before COMMIT. */
  endAppend(): void {
    this.#spans.save();
  }

  /** Is (user, seq) stored? */
  has(user: string, seq: number): boolean {
    this.#fresh();
    if (seq <= this.#mark(user)) return false;
    const t = this.#tail.get(user);
    if (t !== undefined) {
      const i = upperBound(t.seqs, seq) - 1;
      if (i >= 0 && t.seqs[i] === seq) return true;
    }
    return this.#s.hasIndexed.get(user, seq) !== null;
  }

  /** How many rows `user` has and the highest seq among them (0 when none). */
  figures(user: string): UserFigures {
    this.#fresh();
    const mark = this.#mark(user);
    const r = this.#s.userFigures.get(user, this.#indexedTo, mark);
    const t = this.#tail.get(user);
    const tailMax = t === undefined ? 0 : t.seqs[t.seqs.length - 1]!;
    const tailN = t === undefined ? 0 : t.seqs.length - upperBound(t.seqs, mark);
    return { n: (r?.n ?? 0) + tailN, max: Math.max(r?.m ?? 0, tailN > 0 ? tailMax : 0) };
  }

  /** Every live row (rows under a watermark are deleted). */
  total(): number {
    this.#fresh();
    let n = this.#s.countAll.get()?.n ?? 0;
    for (const [user, mark] of this.#acked) n -= this.#countRange(user, 0, mark);
    return n;
  }

  /** Up to `limit` rows of `user` with seq > after, ascending by seq: the index and the tail merged. */
  fetch(user: string, after: number, limit: number): StoredRow[] {
    return this.fetchValues(user, after, limit).map((v) => toRow(user, v));
  }

  /**
   * The same rows as SQLite returns them, [seq, sender, msg_id, ts, body]: a drain's page builder
   * reads these directly (no object per row, issue 14).
   */
  fetchValues(user: string, after: number, limit: number): ValueRow[] {
    return this.#fetchRows(user, after, limit, this.#s.fetchIndexed, this.#s.readIds);
  }

  /** The same rows as a drain's page reads them (FrameRow): the stored heads, no strings if stored. */
  fetchFrameRows(user: string, after: number, limit: number): FrameRow[] {
    return this.#fetchRows(user, after, limit, this.#s.fetchIndexedFrames, this.#s.readIdsFrames);
  }

  /**
   * The same rows as fetchFrameRows, as blobs of whole DELIVER frames (stored head + body, back to
   * back) that SQLite joins itself: one value per stretch instead of three per row (issue 14). The
   * indexed rows' blob, then one per run of consecutive tail ids. null when the blobs cannot stand
   * for the rows: a row stored without a head (before migration 6), or a tail row below the last
   * indexed one (rows stored out of seq order: their merge is fetchFrameRows'). The caller checks
   * the frames' order.
   */
  fetchFrameBlobs(user: string, after: number, limit: number): Uint8Array[] | null {
    const all = this.#stretches(user, after, limit, this.#b.blobIndexed, this.#b.blobIds, (r) => r.h === r.n);
    return all && all.map((r) => r.b!);
  }

  /**
   * The same rows for a v0 link (issue 14): per stretch (as fetchFrameBlobs), the rows' bodies joined
   * by SQLite with their seqs and body lengths as JSON arrays, so the page is the bytes a v0 socket
   * gets. Rows stored without a head are read the same way. null when a tail row sits below the last
   * indexed one. The caller checks lengths and order (blob-page.ts pageOfBodyBlobs).
   */
  fetchBodyBlobs(user: string, after: number, limit: number): BodyBlob[] | null {
    return this.#stretches(user, after, limit, this.#b.bodyIndexed, this.#b.bodyIds, () => true);
  }

  /**
   * A page's rows as stretches (fetchFrameBlobs, fetchBodyBlobs): the indexed rows' one, then one
   * per run of consecutive tail ids. null when a stretch is not whole (fewer rows than asked, no
   * blob, or not `usable`), or a tail row sits below the last indexed one (rows stored out of seq
   * order: their merge is fetchFrameRows').
   */
  #stretches<R extends Stretch>(
    user: string,
    after: number,
    limit: number,
    indexed: Statement<R, [string, number, number, number]>,
    byIds: Statement<R, [number, number]>,
    usable: (r: R) => boolean,
  ): R[] | null {
    this.#fresh();
    after = Math.max(after, this.#mark(user));
    const t = this.#tail.get(user);
    const from = t === undefined ? 0 : upperBound(t.seqs, after);
    const ix = indexed.get(user, after, limit, this.#indexedTo)!;
    const out: R[] = [];
    if (ix.n > 0) {
      if (ix.b === null || !usable(ix) || (t !== undefined && from < t.seqs.length && t.seqs[from]! < ix.last!)) {
        return null;
      }
      out.push(ix);
    }
    const tailIds = t === undefined ? [] : t.ids.slice(from, from + limit - ix.n);
    for (const [lo, hi] of idRuns(tailIds)) {
      const r = byIds.get(lo, hi)!;
      if (r.n !== hi - lo + 1 || r.b === null || !usable(r)) return null;
      out.push(r);
    }
    return out;
  }

  #fetchRows(user: string, after: number, limit: number, indexedQ: Statement, idsQ: Statement): ValueRow[] {
    this.#fresh();
    after = Math.max(after, this.#mark(user));
    const indexed = indexedQ.values(user, after, limit, this.#indexedTo);
    const t = this.#tail.get(user);
    if (t === undefined) return indexed;
    const from = upperBound(t.seqs, after);
    if (from >= t.seqs.length) return indexed;
    const ids = t.ids.slice(from, from + limit);
    return mergeBySeq(indexed, this.#readIds(ids, idsQ), limit);
  }

  /**
   * Deletes `user`'s rows with seq <= `seq`; returns how many. Only the watermark is written now:
   * the rows read as gone at once, and compact() removes them later.
   */
  deleteUpTo(user: string, seq: number): number {
    this.#fresh();
    const mark = this.#mark(user);
    if (seq <= mark) return 0;
    const n = this.#countRange(user, mark, seq);
    this.#s.setAcked.run(user, seq);
    this.#acked.set(user, seq);
    return n;
  }

  /** Are there rows under a watermark waiting to be removed? */
  compactDue(): boolean {
    this.#fresh();
    return this.#acked.size > 0;
  }

  /**
   * Removes up to about `budget` rows under the watermarks from the log and the index (whole users
   * first, oldest mark first); a user's mark goes once nothing is left under it. Call inside a
   * transaction. Returns the rows removed (already deleted as far as every read is concerned).
   */
  compact(budget: number): number {
    this.#fresh();
    let n = 0;
    for (const user of [...this.#acked.keys()]) {
      if (n >= budget) break;
      n += this.#purge(user, budget - n);
    }
    return n;
  }

  /** Live rows of `user` with after < seq <= upTo (index rows up to the mark, plus the tail). */
  #countRange(user: string, after: number, upTo: number): number {
    const t = this.#tail.get(user);
    const tailN = t === undefined ? 0 : upperBound(t.seqs, upTo) - upperBound(t.seqs, after);
    return tailN + (this.#s.countIndexed.get(user, after, upTo, this.#indexedTo)?.n ?? 0);
  }

  /** Removes up to `budget` of `user`'s rows under the watermark; drops the mark when none remain. */
  #purge(user: string, budget: number): number {
    const mark = this.#mark(user);
    let n = 0;
    const t = this.#tail.get(user);
    const k = t === undefined ? 0 : Math.min(upperBound(t.seqs, mark), budget);
    if (k > 0) n += this.#dropTail(user, t!, 0, k);
    // LIMIT -1: no limit (an insert below the mark removes all of it at once).
    const limit = Number.isFinite(budget) ? Math.max(0, budget - n) : -1;
    const chunk = this.#s.indexedUpTo.values(user, mark, limit) as [number, number][];
    const ids = chunk.map((v) => v[1]).sort((a, b) => a - b);
    for (const [lo, hi] of idRuns(ids)) this.#s.deleteIds.run(lo, hi);
    if (chunk.length > 0) this.#s.deleteIndexedUpTo.run(user, chunk[chunk.length - 1]![0]);
    // Index rows above the mark (a cut batch's slice) are tail rows too: counted once, above.
    for (const v of chunk) if (v[1] <= this.#indexedTo) n++;
    const left = this.#tail.get(user)?.seqs; // ascending: its first is its lowest
    const tailLeft = left !== undefined && left.length > 0 && left[0]! <= mark;
    if (!tailLeft && this.#s.indexedUpTo.values(user, mark, 1).length === 0) {
      this.#s.deleteAcked.run(user);
      this.#acked.delete(user);
    }
    return n;
  }

  /** `user`'s watermark (0: none). */
  #mark(user: string): number {
    return this.#acked.get(user) ?? 0;
  }

  /** Deletes one row; returns 1 if it was stored. */
  deleteSeq(user: string, seq: number): number {
    this.#fresh();
    if (seq <= this.#mark(user)) return 0; // already deleted
    const t = this.#tail.get(user);
    if (t !== undefined) {
      const i = upperBound(t.seqs, seq) - 1;
      if (i >= 0 && t.seqs[i] === seq) {
        this.#s.deleteIndexed1.run(user, seq); // a slice of a batch may have written it
        return this.#dropTail(user, t, i, i + 1);
      }
    }
    const hit = this.#s.idOf.get(user, seq);
    if (hit === null) return 0;
    this.#s.deleteId.run(hit.id);
    return this.#s.deleteIndexed1.run(user, seq).changes;
  }

  /** Deletes rows with ts < cutoff; returns the deleted count per recipient. */
  expire(cutoff: number): Map<string, number> {
    this.#fresh();
    const per = new Map<string, number>();
    for (const span of this.#spans.older(cutoff)) {
      this.#expireIn(span.lo, span.hi, cutoff, per);
      this.#spans.expired(span, cutoff);
    }
    return per;
  }

  /** Expires the rows with ts < cutoff among log ids lo..hi, counting them into `per`. */
  #expireIn(lo: number, hi: number, cutoff: number, per: Map<string, number>): void {
    for (const [id, recipient, seq] of this.#s.older.values(lo, hi, cutoff) as [number, string, number][]) {
      // Rows under a watermark were counted out when it moved; they only leave the files now.
      if (seq > this.#mark(recipient)) per.set(recipient, (per.get(recipient) ?? 0) + 1);
      this.#s.deleteIndexed1.run(recipient, seq);
      if (id <= this.#indexedTo) continue;
      const t = this.#tail.get(recipient);
      const i = t === undefined ? -1 : upperBound(t.seqs, seq) - 1;
      if (t !== undefined && i >= 0 && t.seqs[i] === seq) this.#forget(recipient, t, i, i + 1);
    }
    this.#s.deleteOlder.run(lo, hi, cutoff);
  }

  /** Admin view: rows, body bytes, oldest receive time (0 when empty). */
  sizes(user: string): { rows: number; bytes: number; oldestTs: number } {
    this.#fresh();
    const mark = this.#mark(user);
    const r = this.#s.indexedSizes.get(user, this.#indexedTo, mark);
    let rows = r?.n ?? 0;
    let bytes = r?.bytes ?? 0;
    let oldest = r?.oldest ?? Number.POSITIVE_INFINITY;
    const t = this.#tail.get(user);
    for (let i = t === undefined ? 0 : upperBound(t.seqs, mark); t !== undefined && i < t.ids.length; i++) {
      const s = this.#s.sizeOf.get(t.ids[i]!);
      if (s === null) continue;
      rows++;
      bytes += s.len;
      oldest = Math.min(oldest, s.ts);
    }
    return { rows, bytes, oldestTs: rows === 0 ? 0 : oldest };
  }

  /** Is the tail big enough to enter the index, or a batch under way? */
  due(): boolean {
    return this.tailRows() >= INBOX_INDEX_BATCH || this.#batch !== null;
  }

  /**
   * Writes the next slice of the batch (starting one from the whole tail if none is under way):
   * whole users, sorted, until `sliceRows` rows. The last slice moves the mark. Call inside a
   * transaction (a rollback reloads the tail and forgets the batch). Returns the rows written.
   */
  buildIndex(sliceRows = INBOX_INDEX_SLICE): number {
    this.#fresh();
    const b = this.#batch ??= { users: [...this.#tail.keys()].sort(), next: 0, mark: this.#nextId - 1 };
    let n = 0;
    while (b.next < b.users.length && n < sliceRows) {
      const user = b.users[b.next++]!;
      const t = this.#tail.get(user);
      for (let i = 0; t !== undefined && i < t.seqs.length; i++) {
        if (t.ids[i]! > b.mark) continue; // appended after the batch began: the next batch's
        this.#s.insertIndexed.run(user, t.seqs[i]!, t.ids[i]!);
        n++;
      }
    }
    if (b.next >= b.users.length) this.#finishBatch(b.mark);
    return n;
  }

  /** Every tail row up to `mark` is in the index: move the mark, drop them from memory. */
  #finishBatch(mark: number): void {
    this.#s.setIndexedTo.run(mark);
    this.#indexedTo = mark;
    this.#batch = null;
    // Counted first, copied only for a user with rows on both sides of the mark (rare: appended
    // while the batch was written). Two arrays and closures per user cost 2-11 ms more at 10,000.
    for (const [user, t] of this.#tail) {
      const ids = t.ids;
      let above = 0;
      for (let i = 0; i < ids.length; i++) if (ids[i]! > mark) above++;
      if (above === ids.length) continue;
      this.#tailRows -= ids.length - above;
      if (above === 0) {
        this.#tail.delete(user);
        continue;
      }
      const kept: TailUser = { seqs: [], ids: [] };
      for (let i = 0; i < ids.length; i++) {
        if (ids[i]! <= mark) continue;
        kept.seqs.push(t.seqs[i]!);
        kept.ids.push(ids[i]!);
      }
      this.#tail.set(user, kept);
    }
  }

  #fresh(): void {
    if (!this.#stale) return;
    this.#indexedTo = this.#s.indexedTo.get()?.upto ?? 0;
    this.#acked.clear();
    for (const [user, upto] of this.#s.acked.values() as [string, number][]) this.#acked.set(user, upto);
    this.#tail.clear();
    this.#tailRows = 0;
    for (const [id, recipient, seq] of this.#s.tail.values(this.#indexedTo) as [number, string, number][]) {
      this.#addToTail(recipient, seq, id);
    }
    this.#spans.load();
    // Above every span too: a new row never falls inside an older span's ids (inbox-spans.ts).
    this.#nextId = Math.max(this.#indexedTo, this.#s.maxId.get()?.m ?? 0, this.#spans.topId()) + 1;
    this.#stale = false;
  }

  #addToTail(user: string, seq: number, id: number): void {
    let t = this.#tail.get(user);
    if (t === undefined) this.#tail.set(user, t = { seqs: [], ids: [] });
    const at = upperBound(t.seqs, seq);
    if (at === t.seqs.length) {
      t.seqs.push(seq);
      t.ids.push(id);
    } else {
      t.seqs.splice(at, 0, seq);
      t.ids.splice(at, 0, id);
    }
    this.#tailRows++;
  }

  /** Deletes tail entries [from, to) of `user` from the log and from memory. */
  #dropTail(user: string, t: TailUser, from: number, to: number): number {
    const ids = t.ids.slice(from, to).sort((a, b) => a - b);
    for (const [lo, hi] of idRuns(ids)) this.#s.deleteIds.run(lo, hi);
    this.#forget(user, t, from, to);
    return to - from;
  }

  #forget(user: string, t: TailUser, from: number, to: number): void {
    t.seqs.splice(from, to - from);
    t.ids.splice(from, to - from);
    this.#tailRows -= to - from;
    if (t.seqs.length === 0) this.#tail.delete(user);
  }

  /** Log rows by id (of one user's tail, seq ascending), read a stretch of consecutive ids at a time. */
  #readIds(ids: number[], q: Statement): ValueRow[] {
    const out: ValueRow[] = [];
    let i = 0;
    while (i < ids.length) {
      let j = i + 1;
      while (j < ids.length && ids[j] === ids[j - 1]! + 1) j++;
      for (const v of q.values(ids[i]!, ids[j - 1]!)) out.push(v);
      i = j;
    }
    return out;
  }
}

const seqOf = (v: ValueRow) => v[0] as number;

/** Two seq-ascending lists of value rows as one, cut at `limit`. */
function mergeBySeq(a: ValueRow[], b: ValueRow[], limit: number): ValueRow[] {
  if (a.length === 0) return b.length > limit ? b.slice(0, limit) : b;
  const out: ValueRow[] = [];
  let i = 0;
  let j = 0;
  while (out.length < limit && (i < a.length || j < b.length)) {
    if (j >= b.length || (i < a.length && seqOf(a[i]!) < seqOf(b[j]!))) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/** A stretch of rows as one blob (#stretches): b is null when there are no rows. */
interface Stretch {
  b: Uint8Array | null;
  n: number;
  /** The highest seq among the indexed rows (the indexed stretch only). */
  last?: number | null;
}

/** A stretch of rows as one blob of frames (fetchFrameBlobs); h counts the rows stored with a head. */
interface FrameBlob extends Stretch {
  h: number;
}

/** A stretch of rows as their bodies joined, with seqs and body lengths as JSON arrays (fetchBodyBlobs). */
export interface BodyBlob extends Stretch {
  /** JSON arrays, one entry per row in the blob's order: seqs and body lengths. */
  s: string;
  z: string;
}

/** FrameRow's columns: the strings only for a row stored without a head (before migration 6). */
function frameColumns(t: string): string {
  const old = (c: string) => `CASE WHEN ${t}head IS NULL THEN ${t}${c} END`;
  return `${t}seq, ${t}head, ${t}body, ${old("sender")}, ${old("msg_id")}, ${old("ts")}`;
}

/** The statements of fetchFrameBlobs. */
function prepareBlobs(db: Database) {
  return {
    // group_concat joins the frames as text bytes (nothing converted: the database is UTF-8 and
    // blobs are taken as they are); the CAST makes the value a blob again. n and h: rows and heads.
    blobIndexed: db.prepare<FrameBlob, [string, number, number, number]>(
      "SELECT CAST(group_concat(f, '') AS BLOB) AS b, count(*) AS n, count(h) AS h, max(q) AS last FROM (" +
        "SELECT l.head || l.body AS f, l.head AS h, x.seq AS q FROM inbox_index AS x JOIN inbox_log AS l ON l.id = x.id " +
        "WHERE x.recipient = CAST(?1 AS TEXT) AND x.seq > ?2 AND x.id <= ?4 ORDER BY x.seq LIMIT CAST(?3 AS INTEGER))",
    ),
    blobIds: db.prepare<FrameBlob, [number, number]>(
      "SELECT CAST(group_concat(head || body, '') AS BLOB) AS b, count(*) AS n, count(head) AS h " +
        "FROM inbox_log WHERE id BETWEEN ? AND ?",
    ),
    // A v0 link's stretches: bodies alone; seqs and lengths in the same aggregate pass (same order).
    bodyIndexed: db.prepare<BodyBlob, [string, number, number, number]>(
      "SELECT CAST(group_concat(f, '') AS BLOB) AS b, json_group_array(q) AS s, json_group_array(z) AS z, " +
        "count(*) AS n, max(q) AS last FROM (" +
        "SELECT l.body AS f, length(l.body) AS z, x.seq AS q FROM inbox_index AS x JOIN inbox_log AS l ON l.id = x.id " +
        "WHERE x.recipient = CAST(?1 AS TEXT) AND x.seq > ?2 AND x.id <= ?4 ORDER BY x.seq LIMIT CAST(?3 AS INTEGER))",
    ),
    bodyIds: db.prepare<BodyBlob, [number, number]>(
      "SELECT CAST(group_concat(body, '') AS BLOB) AS b, json_group_array(seq) AS s, " +
        "json_group_array(length(body)) AS z, count(*) AS n FROM inbox_log WHERE id BETWEEN ? AND ?",
    ),
  };
}

function prepare(db: Database) {
  type N = { n: number };
  return {
    insert: db.prepare(
      "INSERT INTO inbox_log (id, recipient, seq, sender, msg_id, ts, body, head) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    hasIndexed: db.prepare<{ one: number }, [string, number]>(
      "SELECT 1 AS one FROM inbox_index WHERE recipient = ? AND seq = ?",
    ),
    idOf: db.prepare<{ id: number }, [string, number]>("SELECT id FROM inbox_index WHERE recipient = ? AND seq = ?"),
    userFigures: db.prepare<{ n: number; m: number | null }, [string, number, number]>(
      "SELECT count(*) AS n, max(seq) AS m FROM inbox_index WHERE recipient = ? AND id <= ? AND seq > ?",
    ),
    countIndexed: db.prepare<N, [string, number, number, number]>(
      "SELECT count(*) AS n FROM inbox_index WHERE recipient = ? AND seq > ? AND seq <= ? AND id <= ?",
    ),
    indexedUpTo: db.prepare(
      "SELECT seq, id FROM inbox_index WHERE recipient = CAST(?1 AS TEXT) AND seq <= ?2 ORDER BY seq LIMIT CAST(?3 AS INTEGER)",
    ),
    deleteIndexedUpTo: db.prepare("DELETE FROM inbox_index WHERE recipient = ? AND seq <= ?"),
    acked: db.prepare("SELECT recipient, upto FROM inbox_acked"),
    setAcked: db.prepare("INSERT OR REPLACE INTO inbox_acked (recipient, upto) VALUES (?, ?)"),
    deleteAcked: db.prepare("DELETE FROM inbox_acked WHERE recipient = ?"),
    countAll: db.prepare<N, []>("SELECT count(*) AS n FROM inbox_log"),
    fetchIndexed: db.prepare(
      "SELECT l.seq, l.sender, l.msg_id, l.ts, l.body FROM inbox_index AS x JOIN inbox_log AS l ON l.id = x.id " +
        "WHERE x.recipient = CAST(?1 AS TEXT) AND x.seq > ?2 AND x.id <= ?4 ORDER BY x.seq LIMIT CAST(?3 AS INTEGER)",
    ),
    readIds: db.prepare("SELECT seq, sender, msg_id, ts, body FROM inbox_log WHERE id BETWEEN ? AND ? ORDER BY id"),
    fetchIndexedFrames: db.prepare(
      `SELECT ${frameColumns("l.")} FROM inbox_index AS x JOIN inbox_log AS l ON l.id = x.id ` +
        "WHERE x.recipient = CAST(?1 AS TEXT) AND x.seq > ?2 AND x.id <= ?4 ORDER BY x.seq LIMIT CAST(?3 AS INTEGER)",
    ),
    readIdsFrames: db.prepare(`SELECT ${frameColumns("")} FROM inbox_log WHERE id BETWEEN ? AND ? ORDER BY id`),
    deleteIndexed1: db.prepare("DELETE FROM inbox_index WHERE recipient = ? AND seq = ?"),
    deleteId: db.prepare("DELETE FROM inbox_log WHERE id = ?"),
    deleteIds: db.prepare("DELETE FROM inbox_log WHERE id BETWEEN ? AND ?"),
    older: db.prepare("SELECT id, recipient, seq FROM inbox_log WHERE id BETWEEN ? AND ? AND ts < ?"),
    deleteOlder: db.prepare("DELETE FROM inbox_log WHERE id BETWEEN ? AND ? AND ts < ?"),
    indexedSizes: db.prepare<{ n: number; bytes: number | null; oldest: number | null }, [string, number, number]>(
      "SELECT count(*) AS n, sum(length(l.body)) AS bytes, min(l.ts) AS oldest " +
        "FROM inbox_index AS x JOIN inbox_log AS l ON l.id = x.id WHERE x.recipient = ? AND x.id <= ? AND x.seq > ?",
    ),
    sizeOf: db.prepare<{ len: number; ts: number }, [number]>(
      "SELECT length(body) AS len, ts FROM inbox_log WHERE id = ?",
    ),
    insertIndexed: db.prepare("INSERT INTO inbox_index (recipient, seq, id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
    maxId: db.prepare<{ m: number | null }, []>("SELECT max(id) AS m FROM inbox_log"),
    indexedTo: db.prepare<{ upto: number }, []>("SELECT upto FROM inbox_indexed WHERE one = 1"),
    setIndexedTo: db.prepare("INSERT OR REPLACE INTO inbox_indexed (one, upto) VALUES (1, ?)"),
    tail: db.prepare("SELECT id, recipient, seq FROM inbox_log WHERE id > ? ORDER BY id"),
  };
}
