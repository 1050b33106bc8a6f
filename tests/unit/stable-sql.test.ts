// The store's statements are planned once (store/stable-sql.ts): the hazard check itself, and
// every statement a real store prepares while it stores, pages, deletes, remembers and looks up
// keys, recorded from the real SQLite connection and checked (a bare `LIMIT ?` or `= ?` with ORDER
// BY in any of them fails this), with the pages still right.

import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StoredRow } from "../../src/router/wire.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { rebindHazard } from "../../src/store/stable-sql.ts";

const root = mkdtempSync(join(tmpdir(), `iris-stable-sql-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const T0 = 1_700_000_000_000;

// [sql, planned again on each binding?]: one table, every case asserted.
const CASES: [string, boolean][] = [
  // A bare parameter in LIMIT or OFFSET.
  ["SELECT a FROM t WHERE b > ? ORDER BY b LIMIT ?", true],
  ["SELECT a FROM t LIMIT ?3", true],
  ["SELECT a FROM t LIMIT 5 OFFSET ?2", true],
  ["SELECT a FROM t ORDER BY b LIMIT CAST(?3 AS INTEGER)", false],
  ["SELECT a FROM t ORDER BY b DESC LIMIT 1", false],
  // A bare parameter compared with = when the query has ORDER BY.
  ["SELECT b FROM t WHERE a = ?1 ORDER BY b", true],
  ["SELECT b FROM t WHERE ? = a ORDER BY b", true],
  ["SELECT b FROM t WHERE a == ?\n  ORDER BY b", true],
  ["SELECT b FROM t WHERE a = CAST(?1 AS TEXT) ORDER BY b", false],
  // Ranges and inequalities are not planned around their values; nor is `=` without ORDER BY.
  ["SELECT b FROM t WHERE id BETWEEN ? AND ? ORDER BY id", false],
  ["SELECT b FROM t WHERE x <= ?4 AND y >= ?2 AND z != ?1 ORDER BY b", false],
  ["SELECT b FROM t WHERE a = ? AND b > ?", false],
];

test("rebindHazard: a bare parameter in LIMIT/OFFSET, or in = under ORDER BY; not CAST, ranges or inequalities", () => {
  expect(CASES.map(([sql]) => [sql, rebindHazard(sql) !== null])).toEqual(CASES);
});

function row(recipient: string, seq: number): StoredRow {
  return {
    recipient,
    seq,
    sender: `s${seq % 3}`,
    msgId: `m${seq}`,
    ts: T0 + seq,
    body: new Uint8Array([seq & 255, 7]),
  };
}

/** Every SQL text prepared on any connection while `run` runs. */
function preparedDuring(run: () => void): string[] {
  const proto = Database.prototype as unknown as Record<"prepare" | "query", (sql: string, ...a: unknown[]) => unknown>;
  const seen: string[] = [];
  const prepare = proto.prepare;
  const query = proto.query;
  proto.prepare = function (this: unknown, sql: string, ...a: unknown[]) {
    seen.push(sql);
    return prepare.call(this, sql, ...a);
  };
  proto.query = function (this: unknown, sql: string, ...a: unknown[]) {
    seen.push(sql);
    return query.call(this, sql, ...a);
  };
  try {
    run();
  } finally {
    proto.prepare = prepare;
    proto.query = query;
  }
  return seen;
}

test("every statement a store prepares is planned once", () => {
  let pages: unknown[] = [];
  const sql = preparedDuring(() => {
    const store = InboxStore.open(join(root, "all.db"), { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
    try {
      store.append(Array.from({ length: 20 }, (_, i) => row("bob", i + 1)));
      store.transaction(() => store.buildInboxIndex());
      store.append([row("bob", 21), row("ann", 1)]);
      pages = [
        store.fetch("bob", 5, 4).map((r) => r.seq),
        store.fetchFrameBlobs("bob", 0, 3)?.length,
        store.fetchBodyBlobs("bob", 18, 10)?.length,
        store.fetchFrameRows("bob", 19, 10).length,
        store.fetchFrameBlobs("nobody", 0, 512),
      ];
      expect(store.deleteUpTo("bob", 10)).toBe(10);
      const keys = Array.from(
        { length: 50 },
        (_, i) => ({ recipient: "bob", sender: "s", msgId: `k${i}`, seq: i + 1, ts: T0 + i }),
      );
      store.transaction(() => store.sent.remember(keys));
      store.transaction(() => store.sent.buildRun());
      expect(store.sent.lookup("bob", "s", "k7", 0)).toBe(8);
      expect(store.sent.lookup("bob", "s", "absent", 0)).toBe(0);
      expect(store.sent.page(0, 0, 10)).toHaveLength(10);
      store.expire(T0 + 5);
    } finally {
      store.close();
    }
  });
  expect(pages).toEqual([[6, 7, 8, 9], 1, 2, 2, []]);
  expect(sql.length).toBeGreaterThan(20); // the store's statements were seen, not none
  const hazards = sql.map((s) => ({ sql: s.replace(/\s+/g, " "), why: rebindHazard(s) })).filter((h) => h.why !== null);
  expect(hazards).toEqual([]);
});
