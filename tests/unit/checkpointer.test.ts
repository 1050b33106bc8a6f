// The WAL's checkpointer (store/checkpointer.ts): when it passes, and what a pass does to a real
// store's file from a second connection while the store keeps writing.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Checkpointer,
  openCheckpointDb,
  PassPlanner,
  type PassResult,
  type WalState,
} from "../../src/store/checkpointer.ts";
import {
  copiedByOthers,
  parseWalIndex,
  WAL_INDEX_HEADER_BYTES,
  type WalIndex,
  WalIndexReader,
} from "../../src/store/wal-index.ts";
import { type InboxRow, InboxStore } from "../../src/store/inbox-store.ts";
import { CHECKPOINT_PASS_BUSY_MS, CHECKPOINT_PASS_BYTES, CHECKPOINT_PASS_IDLE_MS } from "../../src/limits.ts";

const root = mkdtempSync(join(tmpdir(), "iris-checkpointer-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const wal = (walPages: number, copiedPages: number, busy = false): WalState => ({ busy, walPages, copiedPages });

const idx = (frames: number, copied: number, salt = 7): WalIndex => ({ pageSize: 4096, frames, copied, salt });
const passed = (w: WalState = wal(0, 0)): PassResult => ({ t: "passed", wal: w, ms: 1 });

describe("PassPlanner", () => {
  const PASS_PAGES = 256;
  const LIMIT_PAGES = 4096;
  test("passes as soon as about passPages pages wait to be copied, and not before", () => {
    const p = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    expect(p.due(idx(0, 0), 0)).toBe(false);
    expect(p.due(idx(100, 0), 50)).toBe(false);
    expect(p.due(idx(255, 0), 100)).toBe(false);
    expect(p.due(idx(256, 0), 150)).toBe(true);
    // What was copied counts: 300 frames of which 200 copied leave 100 waiting.
    const q = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    expect(q.due(idx(300, 200), 0)).toBe(false);
    expect(q.due(idx(600, 200), 50)).toBe(true);
  });

  test("a flood: passes CHECKPOINT_PASS_BUSY_MS apart at least, however much waits", () => {
    const p = new PassPlanner(PASS_PAGES, 1e9); // the writer's checkpoint far away
    let frames = 0;
    const passes: number[] = [];
    for (let now = 0; now <= 2000; now += 50) {
      frames += 1000; // far past passPages every look
      if (p.due(idx(frames, 0), now)) {
        passes.push(now);
        p.passed(passed(wal(frames, frames)), now);
      }
    }
    expect(passes[0]).toBe(0);
    for (let i = 1; i < passes.length; i++) expect(passes[i]! - passes[i - 1]!).toBe(CHECKPOINT_PASS_BUSY_MS);
  });

  test("a WAL that held still with pages uncopied is copied after CHECKPOINT_PASS_IDLE_MS; one fully copied never", () => {
    const p = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    expect(p.due(idx(40, 0), 1000)).toBe(false);
    expect(p.due(idx(40, 0), 1000 + CHECKPOINT_PASS_IDLE_MS - 50)).toBe(false);
    expect(p.due(idx(40, 0), 1000 + CHECKPOINT_PASS_IDLE_MS)).toBe(true);
    p.passed(passed(wal(40, 40)), 1000 + CHECKPOINT_PASS_IDLE_MS);
    for (let now = 4000; now < 20_000; now += 50) expect(p.due(idx(40, 40), now)).toBe(false);
    // A WAL that keeps growing slowly is not still: it waits for passPages.
    const q = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    let frames = 0;
    for (let now = 0; now < 10_000; now += 50) {
      frames += 1; // 20 pages a second
      expect(q.due(idx(frames, 0), now)).toBe(frames >= PASS_PAGES);
      if (frames >= PASS_PAGES) break;
    }
  });

  test("pages a pass could not copy (a reader pins them) are tried again every idle gap, not every look", () => {
    const p = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    expect(p.due(idx(1000, 0), 0)).toBe(true);
    p.passed(passed(wal(1000, 100)), 0);
    const passes: number[] = [];
    for (let now = 50; now <= 5000; now += 50) {
      if (p.due(idx(1000, 100), now)) {
        passes.push(now);
        p.passed(passed(wal(1000, 100)), now);
      }
    }
    // 900 waiting is over passPages: the busy gap; the same would hold for any stuck count.
    expect(passes[0]).toBe(CHECKPOINT_PASS_BUSY_MS);
    const r = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    expect(r.due(idx(100, 0), 0)).toBe(false);
    expect(r.due(idx(100, 0), CHECKPOINT_PASS_IDLE_MS)).toBe(true);
    r.passed(passed(wal(100, 40)), CHECKPOINT_PASS_IDLE_MS);
    expect(r.due(idx(100, 40), CHECKPOINT_PASS_IDLE_MS + 500)).toBe(false);
    expect(r.due(idx(100, 40), 2 * CHECKPOINT_PASS_IDLE_MS)).toBe(true);
  });

  test("within passPages of the writer's own checkpoint: a pass at every look while anything waits", () => {
    const p = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    let frames = 3600;
    let copied = 3600;
    const passes: number[] = [];
    for (let now = 0; frames < LIMIT_PAGES; now += 100) {
      frames += 40; // 400 pages a second: under passPages between two busy gaps
      if (p.due(idx(frames, copied), now)) {
        passes.push(frames);
        copied = frames;
        p.passed(passed(wal(frames, copied)), now);
      }
    }
    // Below LIMIT_PAGES - PASS_PAGES only the passPages rule (never met here); above it, every look.
    expect(passes[0]).toBe(LIMIT_PAGES - PASS_PAGES);
    for (let i = 1; i < passes.length; i++) expect(passes[i]! - passes[i - 1]!).toBe(40);
    // So what waits when the writer's commit reaches its checkpoint is one look's worth.
    expect(LIMIT_PAGES - passes.at(-1)!).toBeLessThanOrEqual(40);
    // Nothing waiting: no pass, near the limit or not.
    expect(p.due(idx(4000, 4000), 1e6)).toBe(false);
  });

  test("blind (no index to read): a pass every CHECKPOINT_PASS_BUSY_MS; after a failure, the idle gap", () => {
    const p = new PassPlanner(PASS_PAGES, LIMIT_PAGES);
    expect(p.due(null, 0)).toBe(true);
    p.passed(passed(), 0);
    expect(p.due(null, CHECKPOINT_PASS_BUSY_MS - 50)).toBe(false);
    expect(p.due(null, CHECKPOINT_PASS_BUSY_MS)).toBe(true);
    p.passed({ t: "failed", error: new Error("disk I/O error"), ms: 1 }, CHECKPOINT_PASS_BUSY_MS);
    expect(p.due(idx(5000, 0), CHECKPOINT_PASS_BUSY_MS + CHECKPOINT_PASS_IDLE_MS - 50)).toBe(false);
    expect(p.due(idx(5000, 0), CHECKPOINT_PASS_BUSY_MS + CHECKPOINT_PASS_IDLE_MS)).toBe(true);
  });
});

describe("parseWalIndex", () => {
  const header = (
    o: { version?: number; init?: number; page?: number; frames: number; copied: number; salt?: number },
  ) => {
    const b = new Uint8Array(WAL_INDEX_HEADER_BYTES);
    const v = new DataView(b.buffer);
    for (const base of [0, 48]) {
      v.setUint32(base, o.version ?? 3007000, true);
      b[base + 12] = o.init ?? 1;
      v.setUint16(base + 14, o.page ?? 4096, true);
      v.setUint32(base + 16, o.frames, true);
      v.setUint32(base + 32, o.salt ?? 1, true);
    }
    v.setUint32(96, o.copied, true);
    return b;
  };
  test("reads the page size, frames and copied frames", () => {
    expect(parseWalIndex(header({ frames: 383, copied: 100, salt: 0xdeadbeef }))).toEqual({
      pageSize: 4096,
      frames: 383,
      copied: 100,
      salt: 0xdeadbeef,
    });
    expect(parseWalIndex(header({ page: 1, frames: 2, copied: 2 }))).toMatchObject({ pageSize: 65536, frames: 2 });
  });
  test("two header copies that differ are a write in flight; anything else unknown is no index", () => {
    const b = header({ frames: 10, copied: 0 });
    b[16] = 11; // the first copy moved on, the second not yet
    expect(parseWalIndex(b)).toBe("changing");
    expect(parseWalIndex(header({ version: 3007001, frames: 1, copied: 0 }))).toBeNull();
    expect(parseWalIndex(header({ init: 0, frames: 1, copied: 0 }))).toBeNull();
    expect(parseWalIndex(header({ frames: 1, copied: 2 }))).toBeNull();
    expect(parseWalIndex(new Uint8Array(100))).toBeNull();
  });
});

describe("copiedByOthers", () => {
  test("copies between two looks in the same WAL; across a restart, at least what waited in the old one", () => {
    expect(copiedByOthers(idx(500, 100), idx(800, 100))).toBe(0);
    expect(copiedByOthers(idx(500, 100), idx(800, 800))).toBe(700);
    // Restarted (a new salt): the old WAL's 400 waiting pages were copied, then 30 of the new one.
    expect(copiedByOthers(idx(500, 100), idx(60, 30, 8))).toBe(430);
    expect(copiedByOthers(idx(500, 100), idx(900, 0, 8))).toBe(400);
  });
});

describe("Checkpointer", () => {
  test("a failing call is a result, never a throw", () => {
    let fail = true;
    const c = new Checkpointer({
      checkpointPassive: () => {
        if (fail) throw new Error("disk I/O error");
        return wal(4000, 4000);
      },
    });
    const r = c.pass();
    expect(r.t).toBe("failed");
    expect(r.t === "failed" && (r.error as Error).message).toBe("disk I/O error");
    fail = false;
    expect(c.pass()).toMatchObject({ t: "passed", wal: wal(4000, 4000) });
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
    const index = new WalIndexReader(path);
    try {
      const c = new Checkpointer(db);
      // The index says what waits before any pass: every frame, none copied.
      const before = index.read();
      expect(before).not.toBeNull();
      expect(before!.copied).toBe(0);
      expect(before!.frames).toBeGreaterThan(100);
      const first = c.pass();
      if (first.t !== "passed") throw first.error;
      expect(first.wal.busy).toBe(false);
      const page = conn.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
      expect(passPages).toBe(Math.ceil(CHECKPOINT_PASS_BYTES / page));
      // 10,000 rows of 200-byte bodies: over 2 MB of pages, all copied in one pass.
      expect(first.wal.walPages * page).toBeGreaterThan(2_000_000);
      expect(first.wal.copiedPages).toBe(first.wal.walPages);
      expect(statSync(path).size).toBeGreaterThan(fileBefore + 2_000_000);
      expect(first.wal.walPages).toBe(before!.frames);
      expect(index.read()).toMatchObject({ pageSize: page, frames: first.wal.walPages, copied: first.wal.walPages });
      // Nothing new: the same answer.
      const still = c.pass();
      expect(still).toMatchObject({ t: "passed", wal: first.wal });
      // Every page copied: the writer's next transaction writes the WAL from its start again.
      store.transaction(() => store.append(batch(10)));
      const after = c.pass();
      if (after.t !== "passed") throw after.error;
      expect(after.wal.walPages).toBeGreaterThan(0);
      expect(after.wal.walPages).toBeLessThan(first.wal.walPages / 10);
      expect(index.read()).toMatchObject({ frames: after.wal.walPages, copied: after.wal.copiedPages });
      // Every row reads back, through a third connection, from file and WAL together.
      const reader = new Database(path, { readonly: true });
      expect(reader.query<{ n: number }, []>("SELECT count(*) AS n FROM inbox_log").get()!.n).toBe(10_010);
      reader.close();
    } finally {
      index.close();
      conn.close();
      store.close();
    }
  });

  test("on a real store: what the writer's own autocheckpoint copies is seen between two looks", () => {
    const path = join(root, "auto", "inbox.db");
    const store = InboxStore.open(path, { maxInboxPerUser: 100_000, ttlMs: 0, walAutocheckpointPages: 50 });
    const reader = new WalIndexReader(path);
    const body = new Uint8Array(200).fill(3);
    let seq = 0;
    const write = (n: number) =>
      store.transaction(() =>
        store.append(Array.from({ length: n }, () => ({
          recipient: `u${seq % 31}`,
          seq: ++seq,
          sender: "s",
          msgId: `m${seq}`,
          ts: 1_700_000_000_000 + seq,
          body,
        })))
      );
    try {
      write(10);
      const before = reader.read()!;
      expect(before.frames).toBeLessThan(50);
      // Over 50 pages (16 KiB each) in one commit: SQLite checkpoints inside it (the writer's stall).
      write(5000);
      const after = reader.read()!;
      expect(after.frames).toBeGreaterThan(50);
      expect(copiedByOthers(before, after)).toBeGreaterThan(50);
      // The writer's next commit restarts the WAL (a new salt): the copies are still counted.
      write(10);
      const restarted = reader.read()!;
      expect(restarted.salt).not.toBe(after.salt);
      expect(copiedByOthers(before, restarted)).toBeGreaterThanOrEqual(before.frames - before.copied);
    } finally {
      reader.close();
      store.close();
    }
  });

  test("no WAL index to read (no -shm file): none, and the reader looks again later", () => {
    const path = join(root, "late", "inbox.db");
    const reader = new WalIndexReader(path);
    expect(reader.read()).toBeNull();
    const store = InboxStore.open(path, { maxInboxPerUser: 10, ttlMs: 0 });
    try {
      store.transaction(() =>
        store.append([{ recipient: "u", seq: 1, sender: "s", msgId: "m1", ts: 1, body: new Uint8Array(8) }])
      );
      expect(reader.read()!.frames).toBeGreaterThan(0);
    } finally {
      reader.close();
      store.close();
    }
  });

  test("never creates a file that is not there", () => {
    const path = join(root, "absent.db");
    expect(() => openCheckpointDb(path)).toThrow();
    expect(() => statSync(path)).toThrow();
  });
});
