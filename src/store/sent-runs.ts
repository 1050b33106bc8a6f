// Sorted runs: the lookup index of the dedupe log (sent-ids.ts). A run indexes one contiguous
// range of sent_log ids by a 53-bit hash of the key, in its own table built in one go from keys
// sorted by that hash, so building it writes pages in order instead of dirtying a random page
// of one big index per key. A run is dropped whole (DROP TABLE and one range delete of its log
// rows) once every key in it is older than the window: no per-key expiry, no ts index.

import type { Database, Statement } from "bun:sqlite";
import { sentKeyHash } from "../router/sent-filter.ts";
import { filterAdd, filterHas, newRunFilter } from "./run-filter.ts";

/** One log row, as a run is built from it. */
export interface LogEntry {
  id: number;
  recipient: string;
  sender: string;
  msgId: string;
  seq: number;
  ts: number;
}

/** A built run: the log ids it covers (lo..hi, every id in between), its newest key's ts. */
export interface Run {
  lo: number;
  hi: number;
  maxTs: number;
  keys: number;
  /** Its keys' Bloom filter (run-filter.ts), stored with it in sent_runs. */
  filter: Uint8Array;
}

/** A probe's row: [recipient, sender, msg_id, seq, ts] from the log. */
type ProbeRow = [string, string, string, number, number];

const HASH_LOW_BITS = 2 ** 21;

/** The key's 53-bit hash (a safe integer, the run's sort key) and the two 32-bit ones it folds. */
export function keyHashes(recipient: string, sender: string, msgId: string): { h: number; h1: number; h2: number } {
  const [h1, h2] = sentKeyHash(recipient, sender, msgId);
  return { h: h1 * HASH_LOW_BITS + (h2 & (HASH_LOW_BITS - 1)), h1, h2 };
}

/** Table name of the run starting at log id `lo` (an integer we made: safe to interpolate). */
function runTable(lo: number): string {
  if (!Number.isSafeInteger(lo) || lo < 0) throw new RangeError(`bad run start ${lo}`);
  return `sent_run_${lo}`;
}

export class SentRuns {
  #runs: Run[] = [];
  readonly #probes = new Map<number, Statement<ProbeRow, [number]>>();
  readonly #register: Statement;
  readonly #unregister: Statement;
  readonly #deleteLog: Statement;

  constructor(private readonly db: Database) {
    this.#register = db.prepare("INSERT INTO sent_runs (lo, hi, max_ts, keys, filter) VALUES (?, ?, ?, ?, ?)");
    this.#unregister = db.prepare("DELETE FROM sent_runs WHERE lo = ?");
    this.#deleteLog = db.prepare("DELETE FROM sent_log WHERE id BETWEEN ? AND ?");
  }

  /** Runs, oldest first. */
  get list(): readonly Run[] {
    return this.#runs;
  }

  /** Highest log id any run covers (0: none). */
  get coveredUpTo(): number {
    return this.#runs.at(-1)?.hi ?? 0;
  }

  /** Re-reads the registry (at open, after a rollback): statements are prepared again on use. */
  load(): void {
    this.#finalizeProbes();
    this.#runs = this.db.query<Run, []>(
      "SELECT lo, hi, max_ts AS maxTs, keys, filter FROM sent_runs ORDER BY lo",
    ).all();
  }

  /**
   * Indexes log ids lo..hi from `entries` (every record in that range; a key recorded twice is
   * answered by its first record, as probes read ids in ascending order). Inside a tx.
   */
  build(entries: LogEntry[], lo: number, hi: number): void {
    const table = runTable(lo);
    const filter = newRunFilter(entries.length);
    const hashed = entries.map((e) => {
      const k = keyHashes(e.recipient, e.sender, e.msgId);
      filterAdd(filter, k.h1, k.h2);
      return { h: k.h, id: e.id };
    });
    hashed.sort((a, b) => a.h - b.h || a.id - b.id);
    this.db.run(
      `CREATE TABLE ${table} (h INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (h, id)) STRICT, WITHOUT ROWID`,
    );
    const insert = this.db.prepare(`INSERT INTO ${table} (h, id) VALUES (?, ?)`);
    try {
      for (const e of hashed) insert.run(e.h, e.id);
    } finally {
      insert.finalize();
    }
    let maxTs = 0;
    for (const e of entries) if (e.ts > maxTs) maxTs = e.ts;
    this.#register.run(lo, hi, maxTs, entries.length, filter);
    this.#runs.push({ lo, hi, maxTs, keys: entries.length, filter });
  }

  /** The first record of the key in a run whose keys may be as young as `since`, or null. */
  find(recipient: string, sender: string, msgId: string, since: number): number {
    const { h, h1, h2 } = keyHashes(recipient, sender, msgId);
    for (const run of this.#runs) {
      if (run.maxTs < since) continue; // all of it is older than the window
      if (!filterHas(run.filter, h1, h2)) continue; // certainly not in this run
      for (const r of this.#probe(run.lo).values(h) as ProbeRow[]) {
        if (r[0] === recipient && r[1] === sender && r[2] === msgId && r[4] >= since) return r[3];
      }
    }
    return 0;
  }

  /**
   * Drops the oldest run if all of it is older than `cutoff`: its table, its log rows, its entry.
   * Returns the log rows deleted, or -1 when no run is that old. Inside a tx.
   */
  dropOldest(cutoff: number): number {
    const run = this.#runs[0];
    if (!run || run.maxTs >= cutoff) return -1;
    this.#probes.get(run.lo)?.finalize();
    this.#probes.delete(run.lo);
    const { changes } = this.#deleteLog.run(run.lo, run.hi);
    this.db.run(`DROP TABLE ${runTable(run.lo)}`);
    this.#unregister.run(run.lo);
    this.#runs.shift();
    return changes;
  }

  #probe(lo: number): Statement<ProbeRow, [number]> {
    let p = this.#probes.get(lo);
    if (!p) {
      p = this.db.prepare<ProbeRow, [number]>(
        `SELECT l.recipient, l.sender, l.msg_id, l.seq, l.ts FROM ${runTable(lo)} r ` +
          "JOIN sent_log l ON l.id = r.id WHERE r.h = ? ORDER BY r.id",
      );
      this.#probes.set(lo, p);
    }
    return p;
  }

  #finalizeProbes(): void {
    for (const p of this.#probes.values()) p.finalize();
    this.#probes.clear();
  }
}
