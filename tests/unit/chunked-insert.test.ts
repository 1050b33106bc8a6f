// Many rows in few statements (store/chunked-insert.ts), and the dedupe log that uses it for a
// remember's keys: every row lands once, in order, with consecutive ids, for counts that cross
// every chunk size; a remember of many keys answers each key's seq from the tail and from a run.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SentKey } from "../../src/router/wire.ts";
import { ChunkedInsert } from "../../src/store/chunked-insert.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";

const root = mkdtempSync(join(tmpdir(), `iris-chunked-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("chunked insert", () => {
  test("n rows in order with consecutive rowids, for counts across the chunk sizes", () => {
    const db = new Database(":memory:");
    db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b INTEGER NOT NULL) STRICT");
    const ins = new ChunkedInsert(db, "INSERT INTO t (a, b)", 2, 8);
    let expected = 0;
    for (const n of [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 100]) {
      const last = ins.run(n, (args, at, i) => {
        args[at] = `v${n}-${i}`;
        args[at + 1] = i;
      });
      expected += n;
      if (n > 0) expect(last).toBe(expected);
      const rows = db.query<{ id: number; a: string; b: number }, [string]>(
        "SELECT id, a, b FROM t WHERE a LIKE ? ORDER BY id",
      ).all(`v${n}-%`);
      expect(rows.map((r) => r.b)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(rows.map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => last - n + 1 + i));
    }
    expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM t").get()?.n).toBe(expected);
    ins.finalize();
    db.close();
  });

  test("a chunk size that is not a power of two is refused", () => {
    const db = new Database(":memory:");
    expect(() => new ChunkedInsert(db, "INSERT INTO t (a)", 1, 12)).toThrow(RangeError);
    db.close();
  });

  test("a remember of many keys: each key's first seq from the tail, from a run, and after reopen", () => {
    const path = join(root, "many.db");
    const open = () => InboxStore.open(path, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
    const store = open();
    const keys: SentKey[] = Array.from({ length: 173 }, (_, i) => ({
      recipient: `r${i % 11}`,
      sender: `s${i % 5}`,
      msgId: `m-${i % 150}`, // the last 23 repeat earlier keys with a later seq
      seq: i + 1,
      ts: 1_700_000_000_000 + i,
    }));
    store.transaction(() => store.sent.remember(keys.slice(0, 60)));
    store.transaction(() => store.sent.remember(keys.slice(60)));
    const firstSeq = (i: number) =>
      keys.findIndex((k) =>
        k.msgId === keys[i]!.msgId && k.recipient === keys[i]!.recipient && k.sender === keys[i]!.sender
      ) + 1;
    const all = (s: InboxStore) => keys.map((k) => s.sent.lookup(k.recipient, k.sender, k.msgId, 0));
    const want = keys.map((_, i) => firstSeq(i));
    expect(all(store)).toEqual(want);
    store.transaction(() => store.sent.buildRun());
    expect(store.sent.runCount()).toBe(1);
    expect(all(store)).toEqual(want);
    expect(store.sent.count()).toBe(173);
    store.close();
    const again = open();
    expect(all(again)).toEqual(want);
    again.close();
  });
});
