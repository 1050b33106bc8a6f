// The dedupe log's packs (issue 14, migration 8): one sent_packs row per remember, holding every
// key of it with consecutive log ids lo..hi, in the layout the port packs a remember in. A row
// per key in sent_log cost 1.3-1.8 µs of the writer's 2.4-3.1 µs a key (bench/store-micro.ts
// settle); a pack is one row per group commit.
// Keys logged before migration 8 stay in sent_log, with lower ids than every pack: a log id is in
// sent_log or in the pack whose lo..hi holds it. Runs (sent-runs.ts) always cover whole packs, and
// a run is dropped with the packs inside its id range.
// The codec is pure; PackLog holds the statements.

import type { Database, Statement } from "bun:sqlite";
import { float64sOf } from "./blob-words.ts";
import { eachPackedKey, packRemember, REMEMBER_FIELDS } from "../router/packed-keys.ts";
import type { SentKey } from "../router/wire.ts";

/** A key as the log gives it back: [id, recipient, sender, msg_id, seq, ts]. */
export type LogRow = [number, string, string, string, number, number];

/**
 * Per key in `nums`: the port's packed remember (router/packed-keys.ts): recipient, sender and
 * msg_id lengths (UTF-16 units), seq, ts and the key's two hashes, so the writer stores what an
 * owner sent as it came: the Float64Array's bytes in the blob (little-endian on every platform Bun
 * runs on).
 */
const FIELDS = REMEMBER_FIELDS;

/** A packed remember's number column as a Float64Array (packRemember makes a number[] for a few keys). */
export function packColumn(nums: number[] | Float64Array): Float64Array {
  return nums instanceof Float64Array ? nums : Float64Array.from(nums);
}

/** Keys in a pack's number column; throws if the blob is not whole keys (a damaged row). */
export function packKeyCount(nums: Uint8Array): number {
  if (nums.byteLength % (8 * FIELDS) !== 0) throw new Error(`sent_packs: a number column of ${nums.byteLength} bytes`);
  return nums.byteLength / (8 * FIELDS);
}

/** A stored pack's number column as float64s (blob-words.ts); throws if the blob is not whole keys. */
function packNums(nums: Uint8Array): Float64Array {
  packKeyCount(nums);
  return float64sOf(nums);
}

/**
 * Calls `each` for the keys of the pack stored at `lo` whose ids are above `after`, in id order,
 * until it returns false. Throws when the lengths do not add up to the text (a damaged row).
 */
export function eachPackKey(
  lo: number,
  text: string,
  nums: Uint8Array,
  after: number,
  each: (row: LogRow) => boolean,
): void {
  const col = packNums(nums);
  let id = lo;
  eachPackedKey(text, col, (recipient, sender, msgId, i) => {
    const k = id++;
    return k <= after || each([k, recipient, sender, msgId, col[i + 3]!, col[i + 4]!]);
  }, `sent_packs: pack ${lo}`);
}

/**
 * The packs holding ids above ?1, in id order, at most ?2 of them: from the one holding ?1 (the
 * highest lo at or below it, a search of the rowid) on. `WHERE hi > ?1` alone scanned the table
 * from its first pack on every call, so a filter rebuild's pages read the window again and again:
 * 2.4 s for 2.6M keys with no load, 21-24 s under load (session 37).
 */
export function packsAfterSql(columns: string): string {
  return `SELECT ${columns} FROM sent_packs WHERE lo >= (SELECT coalesce(max(lo), 0) FROM sent_packs WHERE lo <= ?1) AND hi > ?1 ORDER BY lo LIMIT CAST(?2 AS INTEGER)`;
}

/**
 * Keys of recently read packs kept decoded for `at`, at most (the newest pack read is kept even
 * if bigger). A lookup that meets a key's hash reads the key's text by id; a burst of retries
 * does that for keys of the same few packs. Each `at` read and decoded its whole pack from the
 * start: after a writer restart the senders' retries of a 20,000-message flood kept the writer
 * busy 5-30 s doing it, and nothing else it was asked (backlog pages) was answered meanwhile.
 */
const DECODED_KEYS_MAX = 16_384;
/**
 * Packs kept decoded, at most: `at` looks through them one by one, and at low rates a pack holds
 * a key or two, so the keys alone would let 16,384 of them pile up.
 */
const DECODED_PACKS_MAX = 64;

/** A pack's keys decoded, by id - lo. */
interface DecodedPack {
  lo: number;
  hi: number;
  rows: LogRow[];
}

/** The last id any pack holds: the last pack's by lo, as ids are given in order (max(hi) would read every pack). */
const LAST_PACK_HI = "(SELECT hi FROM sent_packs ORDER BY lo DESC LIMIT 1)";

/** The statements over sent_packs (and the legacy sent_log rows where a read must see both). */
export class PackLog {
  readonly #insert: Statement;
  readonly #after: Statement<{ lo: number; hi: number; text: string; nums: Uint8Array }, [number, number]>;
  readonly #afterNums: Statement<{ lo: number; hi: number; nums: Uint8Array }, [number, number]>;
  readonly #holding: Statement<{ lo: number; hi: number; text: string; nums: Uint8Array }, [number]>;
  readonly #legacyAt: Statement<
    { recipient: string; sender: string; msg_id: string; seq: number; ts: number },
    [number]
  >;
  readonly #delete: Statement;
  readonly #deleteLegacy: Statement;
  readonly #maxId: Statement<{ id: number }, []>;
  readonly #count: Statement<{ n: number }, []>;
  /** Packs `at` decoded, least recently used first (DECODED_KEYS_MAX, DECODED_PACKS_MAX). */
  readonly #decoded = new Map<number, DecodedPack>();
  #decodedKeys = 0;

  constructor(db: Database) {
    this.#insert = db.prepare("INSERT INTO sent_packs (lo, hi, text, nums) VALUES (?1, ?2, ?3, ?4)");
    this.#after = db.prepare(packsAfterSql("lo, hi, text, nums"));
    this.#afterNums = db.prepare(packsAfterSql("lo, hi, nums"));
    this.#holding = db.prepare("SELECT lo, hi, text, nums FROM sent_packs WHERE lo <= ?1 ORDER BY lo DESC LIMIT 1");
    this.#legacyAt = db.prepare("SELECT recipient, sender, msg_id, seq, ts FROM sent_log WHERE id = ?1");
    this.#delete = db.prepare("DELETE FROM sent_packs WHERE lo BETWEEN ?1 AND ?2");
    this.#deleteLegacy = db.prepare("DELETE FROM sent_log WHERE id BETWEEN ?1 AND ?2");
    this.#maxId = db.prepare(
      `SELECT max((SELECT coalesce(max(id), 0) FROM sent_log), coalesce(${LAST_PACK_HI}, 0)) AS id`,
    );
    // The packs' ids are one unbroken range: given in order, a rolled-back pack's ids given again,
    // and deleted only from the front (a dropped run's range). So their count is its length;
    // sum(hi - lo + 1) read every pack, ~25 ms a million keys at each start (session 37).
    this.#count = db.prepare(
      `SELECT (SELECT count(*) FROM sent_log) + coalesce(${LAST_PACK_HI} - (SELECT lo FROM sent_packs ORDER BY lo LIMIT 1) + 1, 0) AS n`,
    );
  }

  /** Stores `keys` with ids lo.. (one row, packed as the port packs them). */
  insert(lo: number, keys: SentKey[]): void {
    const p = packRemember({ t: "remember", keys });
    this.insertPacked(lo, p.text, packColumn(p.nums));
  }

  /** Stores a pack as an owner sent it (checked by the port's guard) with ids lo..; returns its key count. */
  insertPacked(lo: number, text: string, nums: Float64Array): number {
    const n = nums.length / FIELDS;
    this.#forget(lo, lo + n - 1); // ids of a rolled-back pack are given again
    this.#insert.run(lo, lo + n - 1, text, new Uint8Array(nums.buffer, nums.byteOffset, nums.byteLength));
    return n;
  }

  /**
   * Calls `each` for every packed key above id `after`, in id order, with its pack's first id,
   * until it returns false.
   */
  each(after: number, each: (row: LogRow, packLo: number) => boolean): void {
    const PAGE = 64; // packs read at a time
    for (let cursor = after;;) {
      const packs = this.#after.all(cursor, PAGE);
      for (const p of packs) {
        let more = true;
        eachPackKey(p.lo, p.text, p.nums, after, (r) => (more = each(r, p.lo)));
        if (!more) return;
        cursor = p.hi;
      }
      if (packs.length < PAGE) return;
    }
  }

  /**
   * The filter rebuild's and the tail's read (issue 14): for every packed key above id `after`, in
   * id order, its id, the two hashes, ts and seq stored with it, its pack's first id, and its
   * recipient when `withRecipient` (a shard of several keeps only its own users' keys), until
   * `each` returns false. No key is decoded into
   * strings and, without recipients, the packs' text is not read at all: 2-3× faster than each().
   */
  eachHashed(
    after: number,
    withRecipient: boolean,
    each: (id: number, h1: number, h2: number, ts: number, recipient: string, seq: number, packLo: number) => boolean,
  ): void {
    const PAGE = 64; // packs read at a time
    for (let cursor = after;;) {
      const packs: { lo: number; hi: number; nums: Uint8Array; text?: string }[] = withRecipient
        ? this.#after.all(cursor, PAGE)
        : this.#afterNums.all(cursor, PAGE);
      for (const p of packs) {
        const col = packNums(p.nums);
        const text = p.text ?? "";
        let at = 0;
        for (let i = 0, id = p.lo; i < col.length; i += FIELDS, id++) {
          const len = col[i]!;
          const end = at + len + col[i + 1]! + col[i + 2]!;
          if (withRecipient && end > text.length) {
            throw new Error(`sent_packs: pack ${p.lo} is shorter than its lengths`);
          }
          if (
            id > after &&
            !each(
              id,
              col[i + 5]!,
              col[i + 6]!,
              col[i + 4]!,
              withRecipient ? text.slice(at, at + len) : "",
              col[i + 3]!,
              p.lo,
            )
          ) {
            return;
          }
          at = end;
        }
        cursor = p.hi;
      }
      if (packs.length < PAGE) return;
    }
  }

  /** The key logged with `id` (in sent_log or a pack), or null. */
  at(id: number): LogRow | null {
    for (const d of this.#decoded.values()) {
      if (id < d.lo || id > d.hi) continue;
      this.#decoded.delete(d.lo); // most recently used: last
      this.#decoded.set(d.lo, d);
      return d.rows[id - d.lo] ?? null;
    }
    const l = this.#legacyAt.get(id);
    if (l) return [id, l.recipient, l.sender, l.msg_id, l.seq, l.ts];
    const p = this.#holding.get(id);
    if (!p || id > p.hi) return null;
    const rows: LogRow[] = [];
    eachPackKey(p.lo, p.text, p.nums, p.lo - 1, (r) => rows.push(r) > 0);
    this.#keep({ lo: p.lo, hi: p.hi, rows });
    return rows[id - p.lo] ?? null;
  }

  /** Deletes the keys with ids lo..hi, in sent_log and in the packs inside it (a dropped run's range). */
  deleteRange(lo: number, hi: number): void {
    this.#forget(lo, hi);
    this.#deleteLegacy.run(lo, hi);
    this.#delete.run(lo, hi);
  }

  /** After a rollback: a decoded pack may be one that is no longer stored (its ids given again). */
  dropDecoded(): void {
    this.#decoded.clear();
    this.#decodedKeys = 0;
  }

  #keep(d: DecodedPack): void {
    this.#decoded.set(d.lo, d);
    this.#decodedKeys += d.rows.length;
    for (const [lo, old] of this.#decoded) {
      const within = this.#decodedKeys <= DECODED_KEYS_MAX && this.#decoded.size <= DECODED_PACKS_MAX;
      if (within || old === d) break;
      this.#decoded.delete(lo);
      this.#decodedKeys -= old.rows.length;
    }
  }

  /** Forgets decoded packs with an id in lo..hi. */
  #forget(lo: number, hi: number): void {
    for (const [k, d] of this.#decoded) {
      if (d.hi < lo || d.lo > hi) continue;
      this.#decoded.delete(k);
      this.#decodedKeys -= d.rows.length;
    }
  }

  /** Highest log id in use, in sent_log or a pack (0: none). */
  maxId(): number {
    return this.#maxId.get()?.id ?? 0;
  }

  /** Keys in the log, both forms. */
  count(): number {
    return this.#count.get()?.n ?? 0;
  }
}
