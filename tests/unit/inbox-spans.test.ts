// Expiry through log id spans instead of a ts index (store/inbox-spans.ts, migration 7): every
// stored row lies in a span whose ts bounds hold it, expiry deletes exactly the rows older than
// its cutoff (counts exact), a rollback leaves no span behind, and migration 7 from a version 6
// file (main's schema before it) keeps every stored message and lists each one in a span.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INBOX_SPAN_IDS } from "../../src/limits.ts";
import type { StoredRow } from "../../src/router/wire.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "../../src/store/migrations.ts";

const root = mkdtempSync(join(tmpdir(), `iris-spans-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let fileNo = 0;
const freshPath = () => join(root, `case-${++fileNo}.db`);
const TTL = 1000;
const open = (path: string) => InboxStore.open(path, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: TTL });
const T0 = 1_700_000_000_000;

function row(recipient: string, seq: number, ts: number): StoredRow {
  return { recipient, seq, sender: "s", msgId: `m${seq}`, ts, body: new Uint8Array([seq & 255, 7]) };
}
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** Rows of the log that no span holds (id outside every span, or ts outside its bounds): must be 0. */
function unspanned(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ n: number }, []>(
      "SELECT count(*) AS n FROM inbox_log AS l WHERE NOT EXISTS (SELECT 1 FROM inbox_spans AS s " +
        "WHERE l.id BETWEEN s.lo AND s.hi AND l.ts BETWEEN s.min_ts AND s.max_ts)",
    ).get()!.n;
  } finally {
    db.close();
  }
}

function q<T>(path: string, sql: string): T {
  const db = new Database(path, { readonly: true });
  try {
    return db.query(sql).get() as T;
  } finally {
    db.close();
  }
}

describe("inbox expiry spans", () => {
  test("a group commit extends one span; expiry drops old spans whole and deletes only older rows", () => {
    const path = freshPath();
    const store = open(path);
    // 3 spans' worth of rows, ts rising by 1 ms per 10 rows, in commits of 500.
    const n = INBOX_SPAN_IDS * 2 + 100;
    for (let lo = 1; lo <= n; lo += 500) {
      store.append(range(lo, Math.min(n, lo + 499)).map((s) => row(`u${s % 7}`, s, T0 + Math.floor(s / 10))));
    }
    store.close();
    expect(q<{ n: number }>(path, "SELECT count(*) AS n FROM inbox_spans").n).toBe(3);
    expect(unspanned(path)).toBe(0);
    const s2 = open(path);
    // Cutoff past the first span and into the second: exactly the rows with ts < cutoff go.
    const cut = T0 + Math.floor((INBOX_SPAN_IDS + 500) / 10);
    const older = range(1, n).filter((s) => T0 + Math.floor(s / 10) < cut).length;
    expect(s2.expire(cut + TTL)).toBe(older);
    expect(s2.totalCount()).toBe(n - older);
    const per = range(0, 6).map((u) => range(1, n).filter((s) => s % 7 === u && T0 + Math.floor(s / 10) >= cut).length);
    expect(range(0, 6).map((u) => s2.count(`u${u}`))).toEqual(per);
    expect(s2.fetch("u3", 0, 1)[0]!.ts).toBeGreaterThanOrEqual(cut);
    expect(s2.expire(cut + TTL)).toBe(0);
    s2.close();
    // The first span went whole; the second now starts at the cutoff.
    expect(q<{ n: number; m: number }>(path, "SELECT count(*) AS n, min(min_ts) AS m FROM inbox_spans")).toEqual({
      n: 2,
      m: cut,
    });
    expect(unspanned(path)).toBe(0);
  });

  test("rows out of ts order, a rollback, and rows deleted at the log's end: every row stays in a span", () => {
    const path = freshPath();
    const store = open(path);
    // ts not in id order (as two shards' commits interleave): bounds still hold every row.
    store.append(range(1, 50).map((s) => row("ann", s, T0 + ((s * 37) % 50))));
    expect(() =>
      store.transaction(() => {
        store.append(range(51, 60).map((s) => row("ann", s, T0 - 5000)));
        throw new Error("roll back");
      })
    ).toThrow("roll back");
    store.append(range(51, 60).map((s) => row("ann", s, T0 + 100)));
    // The newest rows deleted and removed from the log: new ids still go above every span.
    expect(store.deleteUpTo("ann", 60)).toBe(60);
    store.transaction(() => store.compactInbox(1000));
    store.append([row("ann", 61, T0 + 200)]);
    store.close();
    expect(unspanned(path)).toBe(0);
    // The rolled-back rows (ts T0 - 5000) left no bound behind.
    expect(q<{ m: number }>(path, "SELECT min(min_ts) AS m FROM inbox_spans").m).toBe(T0);
    expect(q<{ id: number }>(path, "SELECT id FROM inbox_log").id).toBe(61);
    const s2 = open(path);
    expect(s2.expire(T0 + 150 + TTL)).toBe(0); // row 61 is newer
    expect(s2.expire(T0 + 201 + TTL)).toBe(1);
    expect(s2.totalCount()).toBe(0);
    s2.close();
  });

  test("migration 7 from a version 6 file keeps every stored message and lists each in a span", () => {
    const v6 = freshPath();
    const d6 = new Database(v6, { create: true });
    migrate(d6, MIGRATIONS.slice(0, 6));
    const ins = d6.prepare(
      "INSERT INTO inbox_log (id, recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    // As migration 4 left them: user after user, so ts jumps around in id order.
    const want = range(1, INBOX_SPAN_IDS + 904).map((s) => row(`u${s % 3}`, s, T0 + ((s * 7919) % 3000)));
    want.sort((a, b) => a.recipient.localeCompare(b.recipient) || a.seq - b.seq);
    d6.transaction(() => want.forEach((r, i) => ins.run(i + 1, r.recipient, r.seq, r.sender, r.msgId, r.ts, r.body)))();
    d6.close();
    const store = open(v6);
    expect(q<{ n: number }>(v6, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'inbox_log_ts'").n).toBe(0);
    for (const u of ["u0", "u1", "u2"]) {
      expect(store.fetch(u, 0, 10_000)).toEqual(want.filter((r) => r.recipient === u));
    }
    expect(unspanned(v6)).toBe(0);
    expect(q<{ n: number }>(v6, "SELECT count(*) AS n FROM inbox_spans").n).toBe(2);
    // Expiry through the migrated spans finds exactly the old rows.
    const cut = T0 + 1000;
    expect(store.expire(cut + TTL)).toBe(want.filter((r) => r.ts < cut).length);
    expect(store.totalCount()).toBe(want.filter((r) => r.ts >= cut).length);
    store.close();
    const after = new Database(v6, { readonly: true });
    expect(after.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    after.close();
  });
});
