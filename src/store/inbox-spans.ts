// Expiry's index of the inbox log (issue 14, migration 7): stretches of log ids with the lowest
// and highest receive time (ts) of the rows appended in them. A ts index cost one more B-tree
// insert per stored row and was read only by expiry; a span is one small row rewritten once per
// group commit (the appends of one commit extend the open span), and the rows an expiry deletes
// are found by id range inside the few spans whose lowest ts is under its cutoff. As ts grows with
// the log (receive time, stored in about commit order), only the oldest spans and at most a few
// straddling ones are read.
//
// Invariant: every row of inbox_log has its id in some span's lo..hi, and lies within that span's
// [minTs, maxTs]. Spans never overlap. Deleting rows never breaks it (a span may cover ids that
// are gone); a span is removed only when expiry removed every row it covers.

import type { Database, Statement } from "bun:sqlite";
import { INBOX_SPAN_IDS } from "../limits.ts";

/** One span: log ids lo..hi, the lowest and highest ts of its rows. */
export interface Span {
  lo: number;
  hi: number;
  minTs: number;
  maxTs: number;
}

type SpanRow = [number, number, number, number];

export class InboxSpans {
  /** The span new rows extend, as it is in the open transaction (null: the next row starts one). */
  #open: Span | null = null;
  /** The open span changed since it was last written. */
  #dirty = false;
  readonly #save: Statement;
  readonly #last: Statement;
  readonly #older: Statement;
  readonly #drop: Statement;
  readonly #raise: Statement;

  constructor(db: Database) {
    this.#save = db.prepare("INSERT OR REPLACE INTO inbox_spans (lo, hi, min_ts, max_ts) VALUES (?, ?, ?, ?)");
    this.#last = db.prepare("SELECT lo, hi, min_ts, max_ts FROM inbox_spans ORDER BY lo DESC LIMIT 1");
    this.#older = db.prepare("SELECT lo, hi, min_ts, max_ts FROM inbox_spans WHERE min_ts < ? ORDER BY lo");
    this.#drop = db.prepare("DELETE FROM inbox_spans WHERE lo = ?");
    this.#raise = db.prepare("UPDATE inbox_spans SET min_ts = ? WHERE lo = ?");
  }

  /** Reads the last span from the file (at open, after a rollback): new rows may extend it. */
  load(): void {
    const r = this.#last.values()[0] as SpanRow | undefined;
    this.#open = r === undefined ? null : { lo: r[0], hi: r[1], minTs: r[2], maxTs: r[3] };
    this.#dirty = false;
  }

  /** The highest id any span covers (0: none): new rows get ids above it. */
  topId(): number {
    return this.#open?.hi ?? 0;
  }

  /** A row with log id `id` (above every id so far) and receive time `ts` was appended. */
  add(id: number, ts: number): void {
    const s = this.#open;
    if (s !== null && id - s.lo < INBOX_SPAN_IDS) {
      if (id > s.hi) s.hi = id;
      if (ts < s.minTs) s.minTs = ts;
      if (ts > s.maxTs) s.maxTs = ts;
    } else {
      this.#flush();
      this.#open = { lo: id, hi: id, minTs: ts, maxTs: ts };
    }
    this.#dirty = true;
  }

  /** Writes the open span if it changed: call before the transaction that added rows commits. */
  save(): void {
    this.#flush();
  }

  /** Spans holding a row with ts < cutoff, oldest first (the open span saved first). */
  older(cutoff: number): Span[] {
    this.#flush();
    return (this.#older.values(cutoff) as SpanRow[]).map((r) => ({ lo: r[0], hi: r[1], minTs: r[2], maxTs: r[3] }));
  }

  /** Expiry deleted every row of `s` with ts < cutoff: drop it if nothing newer was in it, else raise its bound. */
  expired(s: Span, cutoff: number): void {
    const open = this.#open !== null && this.#open.lo === s.lo ? this.#open : null;
    if (s.maxTs < cutoff && open === null) {
      this.#drop.run(s.lo);
      return;
    }
    // Every row left in it has ts >= cutoff (the open span keeps growing: never dropped here).
    this.#raise.run(cutoff, s.lo);
    if (open !== null && open.minTs < cutoff) open.minTs = cutoff;
  }

  #flush(): void {
    const s = this.#open;
    if (s === null || !this.#dirty) return;
    this.#save.run(s.lo, s.hi, s.minTs, s.maxTs);
    this.#dirty = false;
  }
}
