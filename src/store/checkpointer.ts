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
// The planning (whether to pass now) is pure (PassPlanner, fed the WAL index's header by the
// worker); the SQLite call is behind CheckpointDb.

import { Database } from "bun:sqlite";
import {
  CHECKPOINT_PASS_BUSY_MS,
  CHECKPOINT_PASS_BYTES,
  CHECKPOINT_PASS_IDLE_MS,
  WAL_AUTOCHECKPOINT_BYTES,
} from "../limits.ts";
import type { WalIndex } from "./wal-index.ts";

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

/** One pass: what it found and how long it took. */
export type PassResult =
  | { t: "passed"; wal: WalState; ms: number }
  | { t: "failed"; error: unknown; ms: number };

/**
 * When to pass, from the WAL index looked at every CHECKPOINT_WATCH_MS (store/wal-index.ts):
 * - as soon as about `passPages` pages wait to be copied (a flood: a pass every ~1 s here);
 * - once the WAL has held still for CHECKPOINT_PASS_IDLE_MS with pages still uncopied (traffic
 *   stopped: copy the rest, so reads come from the file and the next commit restarts the WAL).
 *   Live traffic that keeps adding a few MB a second waits for the first rule: a page that commits
 *   keep changing (the log's last page, an index leaf) is copied fewer times than on a clock;
 * - at every look once the WAL is within `passPages` of the writer's own checkpoint
 *   (WAL_AUTOCHECKPOINT_BYTES): under steady traffic the WAL restarts only there, in a commit of
 *   the writer's that copies whatever still waits (with the first rule alone, up to `passPages`:
 *   ~1,000 pages at live saturation and in a flood, iris_store_wal_writer_copied_pages_total);
 * - blind (no index to read), every CHECKPOINT_PASS_BUSY_MS, the pace a flood needs.
 * Away from the writer's checkpoint, passes are CHECKPOINT_PASS_BUSY_MS apart at least (a reader
 * that pins pages, or another checkpoint holding the lock, must not make it spin); after a failure
 * (a full disk, an I/O error), CHECKPOINT_PASS_IDLE_MS: the writer's own checkpoint and its
 * disk-full handling stay in charge, and a log line every idle gap is enough. Pages a pass could
 * not copy wait as if the WAL had held still since that pass.
 */
export class PassPlanner {
  private lastPassAt = Number.NEGATIVE_INFINITY;
  private notBefore = Number.NEGATIVE_INFINITY;
  private framesSeen = -1;
  private stillSince = 0;

  constructor(
    private readonly passPages: number,
    /** The writer's autocheckpoint in pages (WAL_AUTOCHECKPOINT_BYTES / the page size). */
    private readonly limitPages: number,
  ) {}

  private nearLimit(frames: number): boolean {
    return frames + this.passPages >= this.limitPages;
  }

  /** Whether to pass now, given the WAL index read at `now` (null: none to read). */
  due(look: WalIndex | null, now: number): boolean {
    if (look !== null && look.frames !== this.framesSeen) {
      this.framesSeen = look.frames;
      this.stillSince = now;
    }
    if (now < this.notBefore) return false;
    if (look === null) return true; // blind: as often as passes may go
    const waiting = look.frames - look.copied;
    if (waiting <= 0) return false;
    return waiting >= this.passPages || this.nearLimit(look.frames) ||
      now - Math.max(this.stillSince, this.lastPassAt) >= CHECKPOINT_PASS_IDLE_MS;
  }

  /** A pass ran at `now` with this result. */
  passed(r: PassResult, now: number): void {
    this.lastPassAt = now;
    let gap = CHECKPOINT_PASS_BUSY_MS;
    if (r.t === "failed") gap = CHECKPOINT_PASS_IDLE_MS;
    else if (!r.wal.busy && this.nearLimit(r.wal.walPages)) gap = 0; // the next look may pass again
    this.notBefore = now + gap;
  }
}

export class Checkpointer {
  constructor(
    private readonly db: CheckpointDb,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Runs one PASSIVE checkpoint; never throws (a failure is a result). */
  pass(): PassResult {
    const t0 = this.clock();
    try {
      const wal = this.db.checkpointPassive();
      return { t: "passed", wal, ms: this.clock() - t0 };
    } catch (error) {
      return { t: "failed", error, ms: this.clock() - t0 };
    }
  }
}

/**
 * The checkpointer's own connection on the store's file, and the call behind CheckpointDb. Never
 * creates the file: the writer made and migrated it. Throws if the file cannot be opened.
 */
export function openCheckpointDb(
  path: string,
): { conn: Database; db: CheckpointDb; passPages: number; limitPages: number } {
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
    return {
      conn,
      db,
      passPages: Math.ceil(CHECKPOINT_PASS_BYTES / page),
      limitPages: Math.ceil(WAL_AUTOCHECKPOINT_BYTES / page),
    };
  } catch (e) {
    conn.close();
    throw e;
  }
}
