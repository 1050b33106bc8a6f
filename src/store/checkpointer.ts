// The WAL's checkpoints, moved off the writer's thread (issue 14). SQLite runs an automatic
// checkpoint inside the commit that takes the WAL past wal_autocheckpoint pages (64 MiB here): in a
// flood that commit copied the whole WAL into the database file and stalled the writer 160–240 ms
// every ~2 s (bench/store-micro.ts flood: ~15% of the writer's time), and every send waiting on a
// commit waited with it. A second connection on a thread of its own (host/checkpoint-worker.ts)
// runs PASSIVE checkpoints while the WAL grows fast: PASSIVE never waits for the writer or readers and
// never blocks them, so the writer's own autocheckpoint, kept as the backstop, finds the pages
// already copied and its commit stays short. The WAL still restarts from its start as before: at
// the writer's next transaction once every page is copied, whoever copied them.
//
// The planning (when to pass next) is a pure function; the SQLite call is behind CheckpointDb.

import { Database } from "bun:sqlite";
import { CHECKPOINT_PASS_BUSY_MS, CHECKPOINT_PASS_BYTES, CHECKPOINT_PASS_IDLE_MS } from "../limits.ts";

/** What `PRAGMA wal_checkpoint(PASSIVE)` answers: pages in the WAL, and how many of them are copied. */
export interface WalState {
  /** Another checkpoint held the lock (the writer's autocheckpoint or a TRUNCATE): nothing done. */
  busy: boolean;
  walPages: number;
  copiedPages: number;
}

/** The one call the checkpointer makes (the worker gives it a bun:sqlite connection). */
export interface CheckpointDb {
  checkpointPassive(): WalState;
}

/** One pass: what it found, how long it took, and when the next one is due. */
export type PassResult =
  | { t: "passed"; wal: WalState; ms: number; nextInMs: number }
  | { t: "failed"; error: unknown; ms: number; nextInMs: number };

/**
 * The gap before the next pass, so that a pass copies about `passPages` pages: the last gap scaled
 * by passPages over the pages added in it, between CHECKPOINT_PASS_BUSY_MS (a flood) and
 * CHECKPOINT_PASS_IDLE_MS (live traffic adds a few MB a second, and a longer gap copies a page that
 * commits keep changing, the last page of a log or an index leaf, fewer times). After a failure (a
 * full disk, an I/O error) the idle gap: the writer's own checkpoint and its disk-full handling
 * stay in charge, and a log line every idle gap is enough. The last gap stands for the time the
 * pages were added in (the pass's own few ms are left out).
 */
export function nextPassDelay(
  prevDelay: number,
  prev: WalState | null,
  now: WalState | null,
  passPages: number,
): number {
  if (now === null) return CHECKPOINT_PASS_IDLE_MS;
  // Another checkpoint held the lock: look again soon.
  if (now.busy) return CHECKPOINT_PASS_BUSY_MS;
  // Pages added since the last pass; all of them when the WAL restarted since (it has fewer now).
  const added = prev === null || now.walPages < prev.walPages ? now.walPages : now.walPages - prev.walPages;
  const wanted = added > 0 ? prevDelay * passPages / added : prevDelay * 2;
  return Math.min(CHECKPOINT_PASS_IDLE_MS, Math.max(CHECKPOINT_PASS_BUSY_MS, Math.round(wanted)));
}

export class Checkpointer {
  private last: WalState | null = null;
  private delay = CHECKPOINT_PASS_IDLE_MS;

  constructor(
    private readonly db: CheckpointDb,
    /** Pages a pass should find added (CHECKPOINT_PASS_BYTES / the file's page size). */
    private readonly passPages: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Runs one PASSIVE checkpoint; never throws (a failure is a result). */
  pass(): PassResult {
    const t0 = this.clock();
    let wal: WalState;
    try {
      wal = this.db.checkpointPassive();
    } catch (error) {
      this.delay = nextPassDelay(this.delay, this.last, null, this.passPages);
      this.last = null;
      return { t: "failed", error, ms: this.clock() - t0, nextInMs: this.delay };
    }
    this.delay = nextPassDelay(this.delay, this.last, wal, this.passPages);
    this.last = wal;
    return { t: "passed", wal, ms: this.clock() - t0, nextInMs: this.delay };
  }
}

/**
 * The checkpointer's own connection on the store's file, and the call behind CheckpointDb. Never
 * creates the file: the writer made and migrated it. Throws if the file cannot be opened.
 */
export function openCheckpointDb(path: string): { conn: Database; db: CheckpointDb; passPages: number } {
  const conn = new Database(path, { readwrite: true, create: false });
  try {
    // As the writer's connection: a checkpoint syncs the WAL, then the file; commits do not sync.
    conn.run("PRAGMA synchronous = NORMAL");
    // This connection writes nothing, so it never autocheckpoints itself.
    conn.run("PRAGMA wal_autocheckpoint = 0");
    const q = conn.query<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)");
    const db: CheckpointDb = {
      checkpointPassive(): WalState {
        const r = q.get();
        if (r === null) throw new Error("wal_checkpoint answered no row");
        return { busy: r.busy !== 0, walPages: r.log, copiedPages: r.checkpointed };
      },
    };
    const page = conn.query<{ page_size: number }, []>("PRAGMA page_size").get()?.page_size ?? 4096;
    return { conn, db, passPages: Math.ceil(CHECKPOINT_PASS_BYTES / page) };
  } catch (e) {
    conn.close();
    throw e;
  }
}
