// Sorted runs: the lookup index of the dedupe log (sent-ids.ts). A run indexes one contiguous
// range of log ids by a 53-bit hash of the key, built in one go from keys sorted by that hash
// into slices of sent_run_slices under the run's own prefix (lo, the highest yet: the table's
// end), so building it writes pages in order instead of dirtying a random page of one big index
// per key. A run is dropped whole (one range delete of its slices and one of its log rows) once
// every key in it is older than the window: no per-key expiry, no ts index. Until migration 9 each
// run was a table of its own (a day's window could hold tens of thousands of them); until
// migration 11 a run's keys were a row each of sent_run_keys (run-slices.ts says what that cost):
// runs built then are read there until they expire.
//
// Runs come in groups (migration 12): a group's Bloom filter holds every key of up to GROUP_RUNS
// consecutive runs, so a lookup checks one filter per group and a run's own filter only inside a
// group that may hold the key. Without groups a lookup checked every run's filter and probed the
// ~1% that answered "maybe": O(runs), ~3 ms a lookup at a day's ~10,000 runs (session 36), and a
// shard rebuilding its filter after a crash looks up every send.

import type { Database, Statement } from "bun:sqlite";
import { sentKeyHash } from "../router/sent-filter.ts";
import { byHashOrder, foldHash, type KeyColumns } from "./key-columns.ts";
import { idsInSlice, type RunSlice, slicePairs, sliceRun } from "./run-slices.ts";
import type { LogRow } from "./sent-packs.ts";
import {
  filterAdd,
  filterHas,
  foldGroupFilter,
  groupFilterAdd,
  groupFilterHas,
  newGroupFilter,
  newRunFilter,
} from "./run-filter.ts";
import { DEDUPE_RUN_KEYS } from "../limits.ts";

/** Runs a group holds at most: past it the group is sealed (stored) and the next run starts one. */
export const GROUP_RUNS = 64;
/** Keys a group's filter is sized for (run-filter.ts newGroupFilter); past them it is sealed too. */
const GROUP_KEYS = GROUP_RUNS * DEDUPE_RUN_KEYS;

/**
 * Consecutive runs under one filter of all their keys (by their 53-bit hash). The open group (the
 * newest, not yet full) lives in memory only: at open it is rebuilt from its runs' slices. A
 * sealed group is a row of sent_run_groups until its last run is dropped.
 */
interface RunGroup {
  lo: number;
  hi: number;
  keys: number;
  maxTs: number;
  filter: Uint8Array;
  /** Runs in the group not dropped yet: the first `live` runs from its first one still listed. */
  live: number;
  /** Runs ever added: the open group seals at GROUP_RUNS (a sealed group read back counts as full). */
  runs: number;
  sealed: boolean;
}

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
  /** Its group (null: built before migration 12, or too old to be rebuilt into the open group at open). */
  group?: RunGroup | null;
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

/** A key's two 32-bit hashes and the 53-bit one folded from them (a safe integer, the run's sort key). */
export interface KeyHashes {
  h: number;
  h1: number;
  h2: number;
}

export function keyHashes(recipient: string, sender: string, msgId: string): KeyHashes {
  const [h1, h2] = sentKeyHash(recipient, sender, msgId);
  return { h: foldHash(h1, h2), h1, h2 };
}

/** A run whose filter is not in memory: filterHas answers "maybe" for every key, so it is probed. */
const NO_FILTER = new Uint8Array(0);

export class SentRuns {
  #runs: Run[] = [];
  /** Groups with a live run, oldest first; the last may be the open one. */
  #groups: RunGroup[] = [];
  #open: RunGroup | null = null;
  readonly #sealGroup: Statement;
  readonly #dropGroup: Statement;
  readonly #runSlices: Statement<{ pairs: Uint8Array }, [number]>;
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
    this.#sealGroup = db.prepare("INSERT INTO sent_run_groups (lo, hi, keys, max_ts, filter) VALUES (?, ?, ?, ?, ?)");
    this.#dropGroup = db.prepare("DELETE FROM sent_run_groups WHERE lo = ?");
    this.#runSlices = db.prepare("SELECT pairs FROM sent_run_slices WHERE lo = CAST(?1 AS INTEGER)");
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

  /**
   * Lets the oldest filters go until those held fit the budget: the groups' first, then the runs'.
   * A group without its filter has its runs' filters checked one by one (~0.1 µs each), as before
   * groups; a run without its filter is probed in the file on every lookup (~20 µs).
   */
  #bound(): void {
    for (let i = 0; i < this.#groups.length && this.#filterBytes > this.filterBudget; i++) {
      const g = this.#groups[i]!;
      if (g.filter.length === 0) continue; // an open group let go stays so until it is sealed
      this.#filterBytes -= g.filter.length;
      g.filter = NO_FILTER;
    }
    for (let i = 0; i < this.#runs.length && this.#filterBytes > this.filterBudget; i++) {
      const r = this.#runs[i]!;
      if (r.filter.length === 0) continue;
      this.#filterBytes -= r.filter.length;
      r.filter = NO_FILTER;
      this.#unfiltered++;
    }
  }

  /** Groups with a live run (for tests and figures). */
  get groupCount(): number {
    return this.#groups.length;
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
    this.#loadGroups();
    this.#bound();
  }

  /**
   * Puts each run in its sealed group, and rebuilds the open group from the slices of the newest
   * runs after the last sealed one (fewer than GROUP_RUNS: ~2M pairs read at most). Older runs
   * without a group (built before migration 12) are checked one by one until they expire.
   */
  #loadGroups(): void {
    const sealed = this.db.query<Omit<RunGroup, "live" | "runs" | "sealed">, []>(
      "SELECT lo, hi, keys, max_ts AS maxTs, filter FROM sent_run_groups ORDER BY lo",
    ).all().map((g): RunGroup => ({ ...g, live: 0, runs: GROUP_RUNS, sealed: true }));
    this.#groups = [];
    this.#open = null;
    let gi = 0;
    for (const r of this.#runs) {
      while (gi < sealed.length && sealed[gi]!.hi < r.lo) gi++;
      const g = sealed[gi];
      r.group = g !== undefined && g.lo <= r.lo && r.hi <= g.hi ? g : null;
      if (r.group) r.group.live++;
    }
    for (const g of sealed) {
      if (g.live === 0) continue; // its runs are gone (dropped in the same transaction as its row: not seen)
      this.#groups.push(g);
      this.#filterBytes += g.filter.length;
    }
    let first = this.#runs.length;
    while (first > 0 && this.#runs.length - first < GROUP_RUNS - 1) {
      const r = this.#runs[first - 1]!;
      if (r.group !== null || r.sliced !== 1) break;
      first--;
    }
    for (let i = first; i < this.#runs.length; i++) {
      const r = this.#runs[i]!;
      const g = this.#openGroup(r.lo);
      for (const { pairs } of this.#runSlices.all(r.lo)) {
        const p = slicePairs(pairs);
        for (let k = 0; k < p.length; k += 2) groupFilterAdd(g.filter, p[k]!);
      }
      this.#joinGroup(g, r);
    }
  }

  /** The open group, started at run `lo` if there is none. */
  #openGroup(lo: number): RunGroup {
    if (this.#open !== null) return this.#open;
    const g: RunGroup = {
      lo,
      hi: lo,
      keys: 0,
      maxTs: 0,
      filter: newGroupFilter(),
      live: 0,
      runs: 0,
      sealed: false,
    };
    this.#groups.push(g);
    this.#filterBytes += g.filter.length;
    return this.#open = g;
  }

  /** Counts run `r` (its keys already in the group's filter) into the open group `g`. */
  #joinGroup(g: RunGroup, r: Run): void {
    r.group = g;
    g.hi = r.hi;
    g.keys += r.keys;
    if (r.maxTs > g.maxTs) g.maxTs = r.maxTs;
    g.live++;
    g.runs++;
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
    const run: Run = { lo, hi, maxTs, keys: n, filter, sliced: 1, group: null };
    this.#runs.push(run);
    this.#filterBytes += filter.length;
    const g = this.#openGroup(lo);
    if (g.filter.length > 0) { for (let i = 0; i < n; i++) groupFilterAdd(g.filter, keys.h[i]!); }
    this.#joinGroup(g, run);
    if (g.runs >= GROUP_RUNS || g.keys >= GROUP_KEYS) this.#seal(g);
    this.#bound();
  }

  /** Stores the open group, its filter folded to its keys, and ends it: the next run starts one. */
  #seal(g: RunGroup): void {
    const filter = g.filter.length > 0 ? foldGroupFilter(g.filter, g.keys) : g.filter;
    this.#sealGroup.run(g.lo, g.hi, g.keys, g.maxTs, filter);
    this.#filterBytes += filter.length - g.filter.length;
    g.filter = filter;
    g.sealed = true;
    this.#open = null;
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

  /**
   * The first record of the key in a run whose keys may be as young as `since`, or null.
   * `hashes`: the key's keyHashes, when the caller has them already.
   */
  find(
    recipient: string,
    sender: string,
    msgId: string,
    since: number,
    hashes: KeyHashes = keyHashes(recipient, sender, msgId),
  ): number {
    const { h, h1, h2 } = hashes;
    const runs = this.#runs;
    let maybe: RunGroup | null = null; // the group being checked run by run
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!;
      const g = run.group;
      // A group is met at its first live run and its runs follow it: all skipped when it lacks the key.
      if (g && g !== maybe) {
        if (g.maxTs < since || !groupFilterHas(g.filter, h)) {
          i += g.live - 1;
          continue;
        }
        maybe = g;
      }
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
    const g = run.group;
    if (g && --g.live === 0) {
      if (g.sealed) this.#dropGroup.run(g.lo);
      else this.#open = null;
      this.#groups.shift(); // the oldest group: its runs were the oldest
      this.#filterBytes -= g.filter.length;
    }
    return run.keys;
  }
}
