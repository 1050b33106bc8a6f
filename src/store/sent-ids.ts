// The durable dedupe window (table sent_ids): every (recipient, sender, msg_id) accepted within
// it and the seq it got. Written in the writer's group commits next to the inbox rows; read on
// a possible retry; expired by time in bounded batches. Same connection as the inbox store.

import type { Database, Statement } from "bun:sqlite";
import type { SentKey } from "../router/wire.ts";

/** A key without its seq: what a filter rebuild reads. */
export type SentKeyRow = [recipient: string, sender: string, msgId: string, ts: number];

export class SentIds {
  readonly #insert: Statement;
  readonly #lookup: Statement<{ seq: number }, [string, string, string, number]>;
  readonly #expire: Statement;
  readonly #pageFirst: Statement;
  readonly #pageAfter: Statement;
  readonly #count: Statement<{ n: number }, []>;
  #total: number | undefined;

  constructor(db: Database) {
    this.#insert = db.prepare(
      "INSERT INTO sent_ids (recipient, sender, msg_id, seq, ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.#lookup = db.prepare<{ seq: number }, [string, string, string, number]>(
      "SELECT seq FROM sent_ids WHERE recipient = ? AND sender = ? AND msg_id = ? AND ts >= ?",
    );
    // Bounded: at most ?2 rows per statement, oldest first (the ts index).
    this.#expire = db.prepare(
      "DELETE FROM sent_ids WHERE (recipient, sender, msg_id) IN " +
        "(SELECT recipient, sender, msg_id FROM sent_ids WHERE ts < ?1 ORDER BY ts LIMIT ?2)",
    );
    this.#pageFirst = db.prepare(
      "SELECT recipient, sender, msg_id, ts FROM sent_ids WHERE ts >= ?1 ORDER BY recipient, sender, msg_id LIMIT ?2",
    );
    this.#pageAfter = db.prepare(
      "SELECT recipient, sender, msg_id, ts FROM sent_ids WHERE (recipient, sender, msg_id) > (?1, ?2, ?3) " +
        "AND ts >= ?4 ORDER BY recipient, sender, msg_id LIMIT ?5",
    );
    this.#count = db.prepare<{ n: number }, []>("SELECT count(*) AS n FROM sent_ids");
  }

  /** Records accepted keys (a key already there keeps its first seq); returns how many were new. */
  remember(keys: SentKey[]): number {
    let added = 0;
    for (const k of keys) added += this.#insert.run(k.recipient, k.sender, k.msgId, k.seq, k.ts).changes;
    if (this.#total !== undefined) this.#total += added;
    return added;
  }

  /** The seq a key got if it was accepted at or after `since`, else 0. */
  lookup(recipient: string, sender: string, msgId: string, since: number): number {
    return this.#lookup.get(recipient, sender, msgId, since)?.seq ?? 0;
  }

  /** Deletes up to `limit` keys accepted before `cutoff`; returns how many. */
  expire(cutoff: number, limit: number): number {
    const { changes } = this.#expire.run(cutoff, limit);
    if (this.#total !== undefined) this.#total -= changes;
    return changes;
  }

  /** Keys accepted at or after `since`, in key order, after `after` (null: from the start). */
  page(after: [string, string, string] | null, since: number, limit: number): SentKeyRow[] {
    const rows = after === null
      ? this.#pageFirst.values(since, limit)
      : this.#pageAfter.values(after[0], after[1], after[2], since, limit);
    return rows as SentKeyRow[];
  }

  count(): number {
    this.#total ??= this.#count.get()?.n ?? 0;
    return this.#total;
  }

  /** After a rollback the running total may be off: recount on next use. */
  dropCaches(): void {
    this.#total = undefined;
  }
}
