// Sorted runs: the lookup index of the dedupe log (sent-ids.ts). A run indexes one contiguous
// range of log ids by a 53-bit hash of the key, built in one go from keys sorted by that hash
// into slices of sent_run_slices under the run's own prefix (lo, the highest yet: the table's
// end), so building it writes pages in order instead of dirtying a random page of one big index
// per key. A run is dropped whole (one range delete of its slices and one of its log rows) once
// every key in it is older than the window: no per-key expiry, no ts index. Until migration 9 each
// run was a table of its own (a day's window could hold tens of thousands of them); until
// migration 11 a run's keys were a row each of sent_run_keys (run-slices.ts says what that cost):
// runs built then are read there until they expire.

import type { Database, Statement } from "bun:sqlite";
import { sentKeyHash } from "../router/sent-filter.ts";
import { byHashOrder, foldHash, type KeyColumns } from "./key-columns.ts";
import { idsInSlice, type RunSlice, slicePairs, sliceRun } from "./run-slices.ts";
import type { LogRow } from "./sent-packs.ts";
import { filterAdd, filterHas, newRunFilter } from "./run-filter.ts";

/** A built run: the log ids it covers (lo..hi, every id in between), its newest key's ts. */
export interface Run {
  lo: number;
  hi: number;
  maxTs: number;
  keys: number;
  /** Its keys' Bloom filter (run-filter.ts), stored with it in sent_runs. */
  filter: Uint8Array;
  /**
   * 1: its keys are slices of sent_run_slices (every run built since migration 11); 0: a row each
   * in sent_run_keys (built before it, read as they are until they expire: moving them at the
   * upgrade would take minutes for a large window, ~3.3M keys a second).
   */
  sliced: number;
}

/** What a run reads and drops of the log (sent-packs.ts PackLog): a key by id, an id range. */
export interface RunLog {
  at(id: number): LogRow | null;
  deleteRange(lo: number, hi: number): void;
}

/**
 * Slices a probe reads at a time: the first whose last hash is at or past the key's, and more
 * only while that hash goes on past a slice's end (a few keys sharing a 53-bit hash: rare).
 */
const PROBE_SLICES = 2;

/** The key's 53-bit hash (a safe integer, the run's sort key) and the two 32-bit ones it folds. */
export function keyHashes(recipient: string, sender: string, msgId: string): { h: number; h1: number; h2: number } {
  const [h1, h2] = sentKeyHash(recipient, sender, msgId);
  return { h: foldHash(h1, h2), h1, h2 };
}

/** A run whose filter is not in memory: filterHas answers "maybe" for every key, so it is probed. */
const NO_FILTER = new Uint8Array(0);

export class SentRuns {
  #runs: Run[] = [];
  /** A run's slices from the first that may hold a hash on (run-slices.ts), in order. */
  readonly #probe: Statement<{ pairs: Uint8Array }, [number, number, number, number]>;
  readonly #insertSlice: Statement;
  readonly #register: Statement;
  readonly #unregister: Statement;
  readonly #dropKeys: Statement;
  /** Runs built before migration 11: their ids under a hash, ascending, and their rows' drop. */
  readonly #probeRows: Statement<[number], [number, number]>;
  readonly #dropRows: Statement;
  /** Bytes of the runs' filters held in memory, and the runs whose filter was let go. */
  #filterBytes = 0;
  #unfiltered = 0;

  /**
   * `log` reads a logged key by id and deletes id ranges, wherever they are (sent_log or packs).
   * `filterBudget`: past it the oldest runs' filters are let go (kept in the file), oldest first:
   * a retry is most likely soon after its send, so the newest runs keep theirs.
   */
  constructor(private readonly db: Database, private readonly log: RunLog, private readonly filterBudget = Infinity) {
    this.#register = db.prepare(
      "INSERT INTO sent_runs (lo, hi, max_ts, keys, filter, sliced) VALUES (?, ?, ?, ?, ?, 1)",
    );
    this.#unregister = db.prepare("DELETE FROM sent_runs WHERE lo = ?");
    this.#dropKeys = db.prepare("DELETE FROM sent_run_slices WHERE lo = CAST(?1 AS INTEGER)");
    this.#probeRows = db.prepare<[number], [number, number]>(
      "SELECT id FROM sent_run_keys WHERE lo = CAST(?1 AS INTEGER) AND h = CAST(?2 AS INTEGER) ORDER BY id",
    );
    this.#dropRows = db.prepare("DELETE FROM sent_run_keys WHERE lo = CAST(?1 AS INTEGER)");
    // Row-value order: slices at or after (h, 0) in (last_h, last_id) order; the first may hold h.
    this.#probe = db.prepare(
      "SELECT pairs FROM sent_run_slices WHERE lo = CAST(?1 AS INTEGER) AND (last_h, last_id) >= (CAST(?2 AS INTEGER), CAST(?3 AS INTEGER)) ORDER BY last_h, last_id LIMIT CAST(?4 AS INTEGER)",
    );
    this.#insertSlice = db.prepare("INSERT INTO sent_run_slices (lo, last_h, last_id, pairs) VALUES (?1, ?2, ?3, ?4)");
  }

  /** Runs, oldest first. */
  get list(): readonly Run[] {
    return this.#runs;
  }

  get filterBytes(): number {
    return this.#filterBytes;
  }

  get unfiltered(): number {
    return this.#unfiltered;
  }

  /** Lets the oldest filters go until those held fit the budget. */
  #bound(): void {
    for (let i = 0; i < this.#runs.length && this.#filterBytes > this.filterBudget; i++) {
      const r = this.#runs[i]!;
      if (r.filter.length === 0) continue;
      this.#filterBytes -= r.filter.length;
      r.filter = NO_FILTER;
      this.#unfiltered++;
    }
  }

  /** Highest log id any run covers (0: none). */
  get coveredUpTo(): number {
    return this.#runs.at(-1)?.hi ?? 0;
  }

  /** Re-reads the registry (at open, after a rollback). */
  load(): void {
    this.#runs = this.db.query<Run, []>(
      "SELECT lo, hi, max_ts AS maxTs, keys, filter, sliced FROM sent_runs ORDER BY lo",
    ).all();
    this.#filterBytes = 0;
    this.#unfiltered = 0;
    for (const r of this.#runs) {
      if (r.filter.length === 0) this.#unfiltered++;
      this.#filterBytes += r.filter.length;
    }
    this.#bound();
  }

  /**
   * Indexes log ids lo..hi from `keys` (every record in that range; a key recorded twice is
   * answered by its first record, as probes read ids in ascending order). Inside a tx.
   */
  build(keys: KeyColumns, lo: number, hi: number): void {
    if (!Number.isSafeInteger(lo) || lo < 0) throw new RangeError(`bad run start ${lo}`);
    const n = keys.n;
    const filter = newRunFilter(n);
    let maxTs = 0;
    for (let i = 0; i < n; i++) {
      filterAdd(filter, keys.h1[i]!, keys.h2[i]!);
      if (keys.ts[i]! > maxTs) maxTs = keys.ts[i]!;
    }
    const order = byHashOrder(keys);
    this.#storeSlices(lo, sliceRun(n, (k) => keys.h[order[k]!]!, (k) => keys.id[order[k]!]!));
    this.#register.run(lo, hi, maxTs, n, filter);
    this.#runs.push({ lo, hi, maxTs, keys: n, filter, sliced: 1 });
    this.#filterBytes += filter.length;
    this.#bound();
  }

  /** Writes a run's slices (its pairs sorted by hash, then id). Inside a tx. */
  #storeSlices(lo: number, slices: RunSlice[]): void {
    for (const s of slices) {
      this.#insertSlice.run(
        lo,
        s.lastH,
        s.lastId,
        new Uint8Array(s.pairs.buffer, s.pairs.byteOffset, s.pairs.byteLength),
      );
    }
  }

  /** The ids `run` holds under hash `h`, ascending: the first record of a key comes first. */
  #idsUnder(run: Run, h: number): number[] {
    const lo = run.lo;
    if (run.sliced === 0) return (this.#probeRows.values(lo, h) as [number][]).map(([id]) => id);
    const ids: number[] = [];
    for (let after = 0;;) {
      const rows = this.#probe.all(lo, h, after, PROBE_SLICES);
      for (let i = 0; i < rows.length; i++) {
        if (!idsInSlice(slicePairs(rows[i]!.pairs), h, ids)) return ids;
      }
      if (rows.length < PROBE_SLICES) return ids;
      after = ids[ids.length - 1]! + 1; // the hash goes on past these slices: the ones after its last id
    }
  }

  /** The first record of the key in a run whose keys may be as young as `since`, or null. */
  find(recipient: string, sender: string, msgId: string, since: number): number {
    const { h, h1, h2 } = keyHashes(recipient, sender, msgId);
    for (const run of this.#runs) {
      if (run.maxTs < since) continue; // all of it is older than the window
      if (!filterHas(run.filter, h1, h2)) continue; // certainly not in this run
      for (const id of this.#idsUnder(run, h)) {
        const r = this.log.at(id);
        if (r && r[1] === recipient && r[2] === sender && r[3] === msgId && r[5] >= since) return r[4];
      }
    }
    return 0;
  }

  /**
   * Drops the oldest run if all of it is older than `cutoff`: its keys, its log rows and packs
   * (a run covers whole packs), its entry. Returns the keys it held, or -1 when no run is that
   * old. Inside a tx.
   */
  dropOldest(cutoff: number): number {
    const run = this.#runs[0];
    if (!run || run.maxTs >= cutoff) return -1;
    this.log.deleteRange(run.lo, run.hi);
    (run.sliced === 0 ? this.#dropRows : this.#dropKeys).run(run.lo);
    this.#unregister.run(run.lo);
    this.#runs.shift();
    if (run.filter.length === 0) this.#unfiltered--;
    this.#filterBytes -= run.filter.length;
    return run.keys;
  }
}
