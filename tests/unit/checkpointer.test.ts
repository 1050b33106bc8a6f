// The WAL's checkpointer (store/checkpointer.ts): when it passes, and what a pass does to a real
// store's file from a second connection while the store keeps writing.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checkpointer, nextPassDelay, openCheckpointDb, type WalState } from "../../src/store/checkpointer.ts";
import { type InboxRow, InboxStore } from "../../src/store/inbox-store.ts";
import { CHECKPOINT_PASS_BUSY_MS, CHECKPOINT_PASS_BYTES, CHECKPOINT_PASS_IDLE_MS } from "../../src/limits.ts";

const root = mkdtempSync(join(tmpdir(), "iris-checkpointer-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const wal = (walPages: number, copiedPages: number, busy = false): WalState => ({ busy, walPages, copiedPages });

describe("nextPassDelay", () => {
  const PASS_PAGES = 256;
  test("a gap that makes a pass find about passPages new pages, within the busy and idle gaps", () => {
    // 512 pages in 1 s: half the gap.
    expect(nextPassDelay(1000, wal(10, 10), wal(522, 500), PASS_PAGES)).toBe(500);
    // 128 pages in 300 ms: twice the gap.
    expect(nextPassDelay(300, wal(10, 10), wal(138, 138), PASS_PAGES)).toBe(600);
    // A flood: never under the busy gap.
    expect(nextPassDelay(CHECKPOINT_PASS_BUSY_MS, wal(10, 10), wal(5000, 4000), PASS_PAGES)).toBe(
      CHECKPOINT_PASS_BUSY_MS,
    );
    // The WAL restarted since (fewer pages than last time): every page in it is new.
    expect(nextPassDelay(CHECKPOINT_PASS_IDLE_MS, wal(9000, 9000), wal(4000, 4000), PASS_PAGES)).toBe(
      CHECKPOINT_PASS_BUSY_MS,
    );
    // The first pass counts every page in the WAL.
    expect(nextPassDelay(CHECKPOINT_PASS_IDLE_MS, null, wal(4000, 4000), PASS_PAGES)).toBe(CHECKPOINT_PASS_BUSY_MS);
  });

  test("another checkpoint holding the lock: look again soon", () => {
    expect(nextPassDelay(CHECKPOINT_PASS_IDLE_MS, wal(10, 10), wal(10, 10, true), PASS_PAGES)).toBe(
      CHECKPOINT_PASS_BUSY_MS,
    );
  });

  test("a WAL that holds still or grows slowly lengthens the gap up to the idle one", () => {
    const cases: [WalState, WalState][] = [[wal(10, 10), wal(10, 10)], [wal(10, 10), wal(20, 20)], [
      wal(900, 900),
      wal(12, 12),
    ]];
    for (const [prev, now] of cases) {
      let d = CHECKPOINT_PASS_BUSY_MS;
      const seen: number[] = [];
      for (let i = 0; i < 8; i++) seen.push(d = nextPassDelay(d, prev, now, PASS_PAGES));
      expect(seen[0]).toBeGreaterThan(CHECKPOINT_PASS_BUSY_MS);
      expect(seen.at(-1)).toBe(CHECKPOINT_PASS_IDLE_MS);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    }
  });

  test("after a failure, the idle gap", () => {
    expect(nextPassDelay(CHECKPOINT_PASS_BUSY_MS, wal(10, 5), null, PASS_PAGES)).toBe(CHECKPOINT_PASS_IDLE_MS);
  });
});

describe("Checkpointer", () => {
  test("a failing call is a result, never a throw, and the pass after it starts over", () => {
    let fail = true;
    const c = new Checkpointer({
      checkpointPassive: () => {
        if (fail) throw new Error("disk I/O error");
        return wal(4000, 4000);
      },
    }, 256);
    const r = c.pass();
    expect(r.t).toBe("failed");
    expect(r.nextInMs).toBe(CHECKPOINT_PASS_IDLE_MS);
    expect(r.t === "failed" && (r.error as Error).message).toBe("disk I/O error");
    fail = false;
    const ok = c.pass();
    expect(ok).toMatchObject({ t: "passed", wal: wal(4000, 4000), nextInMs: CHECKPOINT_PASS_BUSY_MS });
  });

  test("on a real store: a pass copies the WAL into the file, and the writer's next commit restarts the WAL", () => {
    const path = join(root, "copy", "inbox.db");
    // The writer's autocheckpoint far away, so only the checkpointer copies here.
    const store = InboxStore.open(path, { maxInboxPerUser: 100_000, ttlMs: 0, walAutocheckpointPages: 1_000_000 });
    const body = new Uint8Array(200).fill(7);
    let seq = 0;
    const batch = (n: number): InboxRow[] =>
      Array.from({ length: n }, (_, i) => ({
        recipient: `user-${i % 97}`,
        seq: ++seq,
        sender: "alice",
        msgId: `m${seq}`,
        ts: 1_700_000_000_000 + seq,
        body,
      }));
    for (let i = 0; i < 20; i++) store.transaction(() => store.append(batch(500)));
    const fileBefore = statSync(path).size;
    const { conn, db, passPages } = openCheckpointDb(path);
    try {
      const c = new Checkpointer(db, passPages);
      const first = c.pass();
      if (first.t !== "passed") throw first.error;
      expect(first.wal.busy).toBe(false);
      const page = conn.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
      expect(passPages).toBe(Math.ceil(CHECKPOINT_PASS_BYTES / page));
      // 10,000 rows of 200-byte bodies: over 2 MB of pages, all copied in one pass.
      expect(first.wal.walPages * page).toBeGreaterThan(2_000_000);
      expect(first.wal.copiedPages).toBe(first.wal.walPages);
      expect(statSync(path).size).toBeGreaterThan(fileBefore + 2_000_000);
      // Nothing new: the same answer, and the idle gap.
      const still = c.pass();
      expect(still).toMatchObject({ t: "passed", wal: first.wal, nextInMs: CHECKPOINT_PASS_IDLE_MS });
      // Every page copied: the writer's next transaction writes the WAL from its start again.
      store.transaction(() => store.append(batch(10)));
      const after = c.pass();
      if (after.t !== "passed") throw after.error;
      expect(after.wal.walPages).toBeGreaterThan(0);
      expect(after.wal.walPages).toBeLessThan(first.wal.walPages / 10);
      // Every row reads back, through a third connection, from file and WAL together.
      const reader = new Database(path, { readonly: true });
      expect(reader.query<{ n: number }, []>("SELECT count(*) AS n FROM inbox_log").get()!.n).toBe(10_010);
      reader.close();
    } finally {
      conn.close();
      store.close();
    }
  });

  test("never creates a file that is not there", () => {
    const path = join(root, "absent.db");
    expect(() => openCheckpointDb(path)).toThrow();
    expect(() => statSync(path)).toThrow();
  });
});
