// The inbox as an append-ordered log with a per-user index (store/inbox-log.ts): rows found in
// the index, in the in-memory tail and in both, the tail read back at open and after a rollback,
// deletes and expiry on both sides, a full batch, and migration 4 from the WITHOUT ROWID inbox
// (schema version 3) keeping every stored message in order.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INBOX_INDEX_BATCH, INBOX_INDEX_SLICE } from "../../src/limits.ts";
import type { StoredRow } from "../../src/router/wire.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { idRuns } from "../../src/store/inbox-log.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "../../src/store/migrations.ts";
import { deliverHead } from "../../src/protocol/v1-bundle.ts";

const root = mkdtempSync(join(tmpdir(), `iris-inboxlog-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let fileNo = 0;
const freshPath = () => join(root, `case-${++fileNo}.db`);
const open = (path: string, ttlMs = 0) => InboxStore.open(path, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs });
const T0 = 1_700_000_000_000;

function row(recipient: string, seq: number, ts = T0 + seq): StoredRow {
  return {
    recipient,
    seq,
    sender: `s${seq % 3}`,
    msgId: `m${seq}`,
    ts,
    body: new Uint8Array([seq & 255, seq >> 8, 7]),
  };
}
const seqs = (rows: StoredRow[]) => rows.map((r) => r.seq);
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const index = (s: InboxStore) => s.transaction(() => s.buildInboxIndex());

describe("inbox log", () => {
  test("a page spans the index and the tail; deletes reach both; the tail is read back at open", () => {
    const path = freshPath();
    let store = open(path);
    store.append(range(1, 10).map((s) => row("bob", s)));
    store.append(range(1, 4).map((s) => row("ann", s)));
    expect(index(store)).toBe(14);
    store.append(range(11, 20).map((s) => row("bob", s)));
    expect(seqs(store.fetch("bob", 5, 10))).toEqual(range(6, 15));
    expect(store.fetch("bob", 0, 100)).toEqual(range(1, 20).map((s) => row("bob", s)));
    expect(store.deleteUpTo("bob", 12)).toBe(12);
    expect(store.deleteSeqs("bob", [14, 99])).toBe(1);
    expect(store.count("bob")).toBe(7);
    store.close();

    store = open(path);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([13, ...range(15, 20)]);
    expect(store.count("bob")).toBe(7);
    expect(store.totalCount()).toBe(11);
    expect(store.inboxFigures("bob")).toEqual({ rows: 7, bytes: 21, oldestTs: T0 + 13 });
    // Index and tail both answer "duplicate" by (recipient, seq), also after the reopen.
    expect(store.append([row("ann", 2), row("bob", 13), row("bob", 21)])).toEqual(["duplicate", "duplicate", "stored"]);
    store.close();
  });

  test("rows that arrive out of seq order come back in seq order, across index and tail", () => {
    const store = open(freshPath());
    store.append([row("bob", 10), row("bob", 4)]);
    index(store);
    store.append([row("bob", 7), row("bob", 2), row("bob", 12), row("bob", 5)]);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([2, 4, 5, 7, 10, 12]);
    expect(seqs(store.fetch("bob", 4, 3))).toEqual([5, 7, 10]);
    expect(store.deleteUpTo("bob", 7)).toBe(4);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([10, 12]);
    store.close();
  });

  test("a rolled-back append leaves nothing in the tail, the index or the log", () => {
    const path = freshPath();
    const store = open(path);
    store.append([row("bob", 1)]);
    expect(() =>
      store.transaction(() => {
        store.append([row("bob", 2), row("bob", 3)]);
        throw new Error("rollback");
      })
    ).toThrow("rollback");
    expect(index(store)).toBe(1);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([1]);
    expect(store.append([row("bob", 2)])).toEqual(["stored"]);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([1, 2]);
    store.close();
    const db = new Database(path, { readonly: true });
    expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM inbox_log").get()?.n).toBe(2);
    expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM inbox_index").get()?.n).toBe(1);
    db.close();
  });

  test("expiry deletes old rows from the index and from the tail, keeping counts exact", () => {
    const store = open(freshPath(), 1000);
    store.append([row("bob", 1, T0), row("bob", 2, T0 + 5000)]);
    index(store);
    store.append([row("bob", 3, T0 + 10), row("bob", 4, T0 + 6000), row("ann", 1, T0)]);
    expect(store.expire(T0 + 2000)).toBe(3);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([2, 4]);
    expect(store.count("bob")).toBe(2);
    expect(store.count("ann")).toBe(0);
    expect(store.totalCount()).toBe(2);
    index(store);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([2, 4]);
    store.close();
  });

  test("a full batch is due; after the build every row is found through the index", () => {
    const store = open(freshPath());
    const rows = range(1, INBOX_INDEX_BATCH).map((n) => row(`u${n % 500}`, 1 + Math.floor(n / 500)));
    store.transaction(() => store.append(rows.slice(0, -1)));
    expect(store.inboxIndexDue()).toBe(false);
    store.append(rows.slice(-1));
    expect(store.inboxIndexDue()).toBe(true);
    // Written a slice of whole users at a time; the last slice completes the batch.
    let written = 0;
    let slices = 0;
    while (store.inboxIndexDue()) {
      written += index(store);
      slices++;
    }
    expect(written).toBe(INBOX_INDEX_BATCH);
    expect(slices).toBeGreaterThanOrEqual(INBOX_INDEX_BATCH / INBOX_INDEX_SLICE);
    const want = rows.filter((r) => r.recipient === "u7");
    expect(store.fetch("u7", 0, 1000)).toEqual(want);
    store.close();
  });

  test("a batch cut short after some slices: reads, counts and deletes stay exact, and it completes", () => {
    const path = freshPath();
    let store = open(path);
    for (const u of ["a", "b", "c", "d"]) store.append(range(1, 3).map((s) => row(u, s)));
    expect(store.transaction(() => store.buildInboxIndex(3))).toBe(3); // user a only
    store.append([row("a", 4)]); // after the batch began: not in it
    expect(store.transaction(() => store.buildInboxIndex(3))).toBe(3); // user b
    expect(store.deleteUpTo("b", 2)).toBe(2); // written by a slice, still in the tail
    expect(store.count("b")).toBe(1);
    store.close(); // the batch never completed: its slices' rows are above the mark
    store = open(path);
    expect(store.totalCount()).toBe(11);
    expect(seqs(store.fetch("a", 0, 100))).toEqual([1, 2, 3, 4]);
    expect(seqs(store.fetch("b", 0, 100))).toEqual([3]);
    expect(store.count("a")).toBe(4);
    expect(store.inboxFigures("a").rows).toBe(4);
    expect(store.inboxIndexDue()).toBe(false); // a cut batch is not remembered: the next one redoes it
    // b's two acked rows are under its watermark: they leave the files (tail, log, index) when
    // compacted, and the batch then indexes the 11 stored rows.
    expect(store.inboxCompactDue()).toBe(true);
    expect(store.transaction(() => store.compactInbox(100))).toBe(2);
    expect(store.inboxCompactDue()).toBe(false);
    expect(store.totalCount()).toBe(11);
    expect(index(store)).toBe(11);
    expect(seqs(store.fetch("a", 0, 100))).toEqual([1, 2, 3, 4]);
    expect(store.deleteSeqs("a", [4])).toBe(1);
    expect(store.deleteUpTo("c", 9)).toBe(3);
    expect(store.count("a")).toBe(3);
    store.close();
    store = open(path);
    expect(store.totalCount()).toBe(7);
    expect(seqs(store.fetch("a", 0, 100))).toEqual([1, 2, 3]);
    expect(seqs(store.fetch("d", 0, 100))).toEqual([1, 2, 3]);
    store.close();
  });

  test("a completed batch keeps in the tail exactly the rows appended while it was written", () => {
    const path = freshPath();
    let store = open(path);
    for (const u of ["a", "b", "c"]) store.append(range(1, 3).map((s) => row(u, s)));
    expect(store.transaction(() => store.buildInboxIndex(3))).toBe(3); // user a
    store.append([row("a", 4), row("d", 1)]); // after the batch began: not in it
    expect(store.transaction(() => store.buildInboxIndex(100))).toBe(6); // b and c: the batch completes
    expect(store.inboxIndexDue()).toBe(false);
    expect(seqs(store.fetch("a", 0, 100))).toEqual([1, 2, 3, 4]);
    expect(store.count("a")).toBe(4);
    // The next batch is the tail the last one left: a's row 4 and d's row 1, nothing else.
    expect(index(store)).toBe(2);
    expect(seqs(store.fetch("a", 0, 100))).toEqual([1, 2, 3, 4]);
    expect(seqs(store.fetch("d", 0, 100))).toEqual([1]);
    store.close();
    store = open(path);
    expect(store.totalCount()).toBe(11);
    expect(seqs(store.fetch("a", 0, 100))).toEqual([1, 2, 3, 4]);
    expect(store.count("d")).toBe(1);
    store.close();
  });

  test("ids of rows deleted at the log's end are never reused below the indexed mark", () => {
    // SQLite would hand out max(id) + 1 again: a new row at or below the mark would be lost from
    // the tail at the next open.
    const path = freshPath();
    let store = open(path);
    store.append(range(1, 5).map((s) => row("bob", s)));
    index(store);
    expect(store.deleteUpTo("bob", 5)).toBe(5);
    store.append([row("bob", 6)]);
    store.close();
    store = open(path);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([6]);
    expect(store.count("bob")).toBe(1);
    store.close();
  });

  test("idRuns: stretches of consecutive ids", () => {
    expect(idRuns([])).toEqual([]);
    expect(idRuns([3, 4, 5, 9, 11, 12])).toEqual([[3, 5], [9, 9], [11, 12]]);
  });
});

describe("migration 4: WITHOUT ROWID inbox to log and index", () => {
  test("every stored message survives, in seq order per user, indexed; the old table is gone", () => {
    const path = freshPath();
    const db = new Database(path, { create: true });
    migrate(db, MIGRATIONS.slice(0, 3));
    const ins = db.prepare("INSERT INTO inbox (recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)");
    const want = new Map<string, StoredRow[]>();
    db.transaction(() => {
      // Interleaved users, each user's seqs out of order with gaps: the copy must sort them.
      for (let i = 0; i < 3000; i++) {
        const r = row(`user-${(i * 7) % 11}`, 1 + ((i * 13) % 3000) * 2, T0 + i);
        r.body = new Uint8Array(1 + (i % 50)).fill(i & 255);
        ins.run(r.recipient, r.seq, r.sender, r.msgId, r.ts, r.body);
        want.set(r.recipient, [...(want.get(r.recipient) ?? []), r]);
      }
      db.run("INSERT INTO users (id, seq_reserved) VALUES ('user-3', 9000)");
    })();
    db.close();

    const store = open(path);
    expect(store.totalCount()).toBe(3000);
    for (const [user, rows] of want) {
      const sorted = [...rows].sort((a, b) => a.seq - b.seq);
      expect(store.count(user)).toBe(rows.length);
      const got: StoredRow[] = [];
      for (let after = 0;;) {
        const page = store.fetch(user, after, 97);
        if (page.length === 0) break;
        got.push(...page);
        after = page[page.length - 1]!.seq;
      }
      expect(got).toEqual(sorted);
    }
    expect(store.getUser("user-3")?.seqReserved).toBe(9000);
    expect(store.inboxIndexDue()).toBe(false);
    store.close();

    const check = new Database(path, { readonly: true });
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    const names = check.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    expect(names.map((x) => x.name)).not.toContain("inbox");
    // Everything migrated is in the index: no tail to read at open.
    const top = check.query<{ m: number }, []>("SELECT max(id) AS m FROM inbox_log").get()?.m;
    expect(check.query<{ upto: number }, []>("SELECT upto FROM inbox_indexed").get()?.upto).toBe(top!);
    expect(check.query<{ n: number }, []>("SELECT count(*) AS n FROM inbox_index").get()?.n).toBe(3000);
    check.close();
  });
});

describe("ack watermarks (migration 5)", () => {
  const raw = (path: string, sql: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.query<{ n: number }, []>(sql).get()?.n ?? -1;
    } finally {
      db.close();
    }
  };
  const logRows = (path: string) => raw(path, "SELECT count(*) AS n FROM inbox_log");
  const marks = (path: string) => raw(path, "SELECT count(*) AS n FROM inbox_acked");

  test("an ack moves a watermark: the rows read as gone at once, across a reopen, and leave the files in chunks", () => {
    const path = freshPath();
    let store = open(path);
    store.append(range(1, 6).map((s) => row("bob", s)));
    index(store); // rows 1..6 in the index
    store.append(range(7, 10).map((s) => row("bob", s))); // 7..10 in the tail
    store.append([row("ann", 1)]);
    expect(store.deleteUpTo("bob", 8)).toBe(8);
    expect(store.deleteUpTo("bob", 8)).toBe(0); // acks are cumulative: nothing more
    expect(logRows(path)).toBe(11); // nothing removed yet: one watermark row written
    expect(marks(path)).toBe(1);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([9, 10]);
    expect([store.count("bob"), store.totalCount(), store.inboxFigures("bob").rows]).toEqual([2, 3, 2]);
    expect(store.deleteSeqs("bob", [3, 9])).toBe(1); // 3 is already gone
    store.close(); // as a kill would leave it: the mark is committed, the rows are not removed
    store = open(path);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([10]);
    expect([store.count("bob"), store.totalCount()]).toEqual([1, 2]);
    expect(store.inboxCompactDue()).toBe(true);
    expect(store.transaction(() => store.compactInbox(3))).toBe(3); // a bounded chunk
    expect(store.inboxCompactDue()).toBe(true);
    expect(store.transaction(() => store.compactInbox(100))).toBe(5);
    expect(store.inboxCompactDue()).toBe(false);
    expect([logRows(path), marks(path)]).toEqual([2, 0]);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([10]);
    expect([store.count("bob"), store.totalCount()]).toEqual([1, 2]);
    store.close();
  });

  test("a row stored again below the mark is found; expiry does not count acked rows twice", () => {
    const path = freshPath();
    const store = open(path, 1000);
    store.append(range(1, 4).map((s) => row("bob", s, T0)));
    expect(store.deleteUpTo("bob", 3)).toBe(3);
    // Below the mark: what the mark covers is removed, the mark dropped, the row stored.
    expect(store.append([row("bob", 2, T0 + 5000)])).toEqual(["stored"]);
    expect(seqs(store.fetch("bob", 0, 100))).toEqual([2, 4]);
    expect([store.count("bob"), logRows(path), marks(path)]).toEqual([2, 2, 0]);
    expect(store.deleteUpTo("bob", 1)).toBe(0);
    expect(store.expire(T0 + 1500)).toBe(1); // row 4 (ts T0); row 2 is newer
    store.append(range(5, 7).map((s) => row("bob", s, T0)));
    expect(store.deleteUpTo("bob", 6)).toBe(3); // 2, 5, 6
    expect(store.expire(T0 + 1500)).toBe(1); // 7 only: 5 and 6 were counted out by the ack
    expect([store.count("bob"), store.totalCount()]).toEqual([0, 0]);
    store.close();
  });

  test("migration 6 from a version 5 file keeps every row; old rows (no head) and new ones drain as the same frames", () => {
    const v5 = freshPath();
    const d5 = new Database(v5, { create: true });
    migrate(d5, MIGRATIONS.slice(0, 5));
    const ins = d5.prepare(
      "INSERT INTO inbox_log (id, recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    const old = range(1, 30).map((s) => row(`u${s % 2}`, s));
    old.forEach((r, i) => ins.run(i + 1, r.recipient, r.seq, r.sender, r.msgId, r.ts, r.body));
    d5.close();
    const store = open(v5);
    const added = range(31, 40).map((s) => row(`u${s % 2}`, s));
    store.transaction(() => store.append(added));
    index(store); // some rows through the index, the rest from the tail
    store.transaction(() => store.append([row("u0", 42), row("u1", 41)]));
    const all = [...old, ...added, row("u0", 42), row("u1", 41)];
    for (const u of ["u0", "u1"]) {
      const want = all.filter((r) => r.recipient === u).sort((a, b) => a.seq - b.seq);
      expect(store.fetch(u, 0, 100)).toEqual(want);
      const frames = store.fetchFrameRows(u, 0, 100);
      expect(frames.map((v) => v[0])).toEqual(want.map((r) => r.seq));
      // Old rows carry their fields, new ones a head (and no strings): both give the codec's frame.
      expect(frames.map((v) => v[1] === null)).toEqual(want.map((r) => r.seq <= 30));
      for (const [i, v] of frames.entries()) {
        const r = want[i]!;
        const head = v[1] as Uint8Array | null ??
          deliverHead(v[0] as number, v[5] as number, v[3] as string, v[4] as string, r.body.byteLength);
        expect([...head, ...(v[2] as Uint8Array)]).toEqual([
          ...deliverHead(r.seq, r.ts, r.sender, r.msgId, r.body.byteLength),
          ...r.body,
        ]);
        if (v[1] !== null) expect(v.slice(3)).toEqual([null, null, null]);
      }
    }
    expect(store.totalCount()).toBe(42);
    store.close();
    const after = new Database(v5, { readonly: true });
    expect(after.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    expect(after.query("SELECT count(*) AS n FROM inbox_log WHERE head IS NULL").get()).toEqual({ n: 30 });
    after.close();
  });

  test("migration 5 from a version 4 file keeps every stored row", () => {
    const v4 = freshPath();
    const d4 = new Database(v4, { create: true });
    migrate(d4, MIGRATIONS.slice(0, 4));
    const ins = d4.prepare(
      "INSERT INTO inbox_log (id, recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    const want = range(1, 50).map((s) => row(`u${s % 3}`, s));
    want.forEach((r, i) => ins.run(i + 1, r.recipient, r.seq, r.sender, r.msgId, r.ts, r.body));
    d4.close(); // the rows are above the index mark (0): the tail, read back from the log at open
    const store = open(v4);
    for (const u of ["u0", "u1", "u2"]) {
      expect(store.fetch(u, 0, 100)).toEqual(want.filter((r) => r.recipient === u));
    }
    expect(store.totalCount()).toBe(50);
    store.close();
    const after = new Database(v4, { readonly: true });
    expect(after.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    expect(after.query("SELECT count(*) AS n FROM inbox_acked").get()).toEqual({ n: 0 });
    after.close();
  });
});
