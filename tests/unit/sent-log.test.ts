// The durable dedupe window as a log with sorted runs (store/sent-ids.ts, store/sent-runs.ts):
// lookups in the tail and in runs, reopen, expiry by whole runs, rollback, the filter-rebuild
// pages, and the migration from the keyed table (schema version 2) keeping every key and row.

import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEDUPE_RUN_KEYS, DEDUPE_RUN_SLICES } from "../../src/limits.ts";
import type { SentKey } from "../../src/router/wire.ts";
import { sentKeyHash } from "../../src/router/sent-filter.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { keyHashes } from "../../src/store/sent-runs.ts";
import { foldHash } from "../../src/store/key-columns.ts";
import { filterAdd, newRunFilter } from "../../src/store/run-filter.ts";
import { eachPackKey, packColumn, packsAfterSql } from "../../src/store/sent-packs.ts";
import { packRemember } from "../../src/router/packed-keys.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "../../src/store/migrations.ts";

const root = mkdtempSync(join(tmpdir(), `iris-sentlog-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let fileNo = 0;
const freshPath = () => join(root, `case-${++fileNo}.db`);
const open = (path: string) => InboxStore.open(path, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
const T0 = 1_700_000_000_000;
const WINDOW = 3_600_000;

function key(i: number, ts = T0 + i): SentKey {
  return { recipient: `r${i % 97}`, sender: `s${i % 13}`, msgId: `id-${i}`, seq: i + 1, ts };
}

function rememberAll(store: InboxStore, keys: SentKey[]): void {
  store.transaction(() => store.sent.remember(keys));
}

function buildRun(store: InboxStore): void {
  store.transaction(() => store.sent.buildRun());
}

const find = (s: InboxStore, k: SentKey, since = 0) => s.sent.lookup(k.recipient, k.sender, k.msgId, since);

describe("dedupe log", () => {
  test("tail lookups: the first seq wins, `since` bounds the age, other keys are unknown", () => {
    const store = open(freshPath());
    const k = key(1);
    rememberAll(store, [k, { ...k, seq: 99, ts: k.ts + 5 }]);
    expect(find(store, k)).toBe(2);
    expect(find(store, k, k.ts)).toBe(2);
    expect(find(store, k, k.ts + 1)).toBe(0);
    expect(find(store, { ...k, msgId: "other" })).toBe(0);
    expect(find(store, { ...k, recipient: "r2" })).toBe(0);
    // Separators matter: ("ab", "c") is not ("a", "bc").
    rememberAll(store, [{ recipient: "ab", sender: "c", msgId: "x", seq: 7, ts: T0 }]);
    expect(store.sent.lookup("a", "bc", "x", 0)).toBe(0);
    expect(store.sent.count()).toBe(3);
    store.close();
  });

  test("keys sharing a 53-bit hash in the tail: each answers its own seq, before and after the tail gets its map", () => {
    const store = open(freshPath());
    const b = key(2);
    const [h1, h2] = sentKeyHash(b.recipient, b.sender, b.msgId);
    // Key 1 logged under key 2's hashes (as a collision would be), ahead of key 2 itself.
    rememberAll(store, [{ ...key(1), seq: 11, h1, h2 }, { ...b, seq: 22, h1, h2 }, key(3)]);
    for (let round = 0; round < 70; round++) expect(find(store, b)).toBe(22); // past TAIL_SCANS_BEFORE_MAP
    expect(find(store, key(3))).toBe(4);
    expect(find(store, key(4))).toBe(0);
    store.close();
  });

  test("a run's keys sharing a hash across several slices: a lookup reads on to the one it asks for", () => {
    const store = open(freshPath());
    const x = key(5000);
    const [h1, h2] = sentKeyHash(x.recipient, x.sender, x.msgId);
    // 700 other keys logged under x's hashes (as collisions would be), then x: x's pair is the
    // last of a group spanning three slices and more, past what one probe query reads.
    const forged = Array.from({ length: 700 }, (_, i) => ({ ...key(i), h1, h2 }));
    rememberAll(store, [...forged, x, key(6000)]);
    buildRun(store);
    expect(store.sent.runCount()).toBe(1);
    expect(find(store, x)).toBe(5001);
    expect(find(store, key(6000))).toBe(6001);
    expect(find(store, key(7000))).toBe(0);
    store.close();
  });

  test("a key recorded twice answers its first seq: in the tail before and after a lookup, and in a run", () => {
    const store = open(freshPath());
    const a = key(1);
    const b = key(2);
    rememberAll(store, [a, { ...a, seq: 50 }]);
    expect(find(store, a)).toBe(2); // the tail's keyed view is built here, on the first lookup
    rememberAll(store, [b, { ...b, seq: 60 }, { ...a, seq: 70 }]); // and kept up to date after it
    expect([find(store, a), find(store, b)]).toEqual([2, 3]);
    buildRun(store);
    expect(store.sent.runCount()).toBe(1);
    expect([find(store, a), find(store, b)]).toEqual([2, 3]);
    store.close();
  });

  test("tail lookups answer the same before and after the tail gets its map (64 scans), with keys added between", () => {
    const store = open(freshPath());
    const first = new Map<string, number>(); // key → its first seq
    const id = (k: SentKey) => `${k.recipient}\0${k.sender}\0${k.msgId}`;
    let seq = 0;
    const add = (n: number) => {
      const batch = Array.from({ length: n }, (_, i) => ({ ...key((seq + i) % 150), seq: seq + i + 1 })); // repeats keys
      seq += n;
      for (const k of batch) if (!first.has(id(k))) first.set(id(k), k.seq);
      rememberAll(store, batch);
    };
    add(100);
    for (let look = 0; look < 150; look++) { // scans for the first 64, then the map, kept up to date
      if (look % 10 === 0) add(30);
      const k = key(look % 170); // 150 keys known, 20 never
      expect(find(store, k)).toBe(first.get(id(k)) ?? 0);
    }
    expect(first.size).toBe(150);
    store.close();
  });

  test("a full tail becomes a run; keys are found in runs and tail, also after reopen", () => {
    const path = freshPath();
    const store = open(path);
    const n = DEDUPE_RUN_KEYS + 10;
    const keys = Array.from({ length: n }, (_, i) => key(i));
    rememberAll(store, keys.slice(0, DEDUPE_RUN_KEYS));
    expect(store.sent.due(T0, WINDOW)).toBe(true);
    buildRun(store);
    expect(store.sent.runCount()).toBe(1);
    rememberAll(store, keys.slice(DEDUPE_RUN_KEYS));
    expect(store.sent.due(T0, WINDOW)).toBe(false);
    for (const i of [0, 1, 5000, DEDUPE_RUN_KEYS - 1, DEDUPE_RUN_KEYS, n - 1]) {
      expect(find(store, keys[i]!)).toBe(i + 1);
    }
    expect(find(store, key(n + 1))).toBe(0);
    store.close();

    const again = open(path);
    expect(again.sent.runCount()).toBe(1);
    expect(again.sent.count()).toBe(n);
    for (const i of [0, 77, DEDUPE_RUN_KEYS - 1, DEDUPE_RUN_KEYS, n - 1]) expect(find(again, keys[i]!)).toBe(i + 1);
    again.close();
  });

  test("keys that carry their owner's hashes are indexed as the writer would hash them: tail, run, reopen", () => {
    const withHashes = (k: SentKey): SentKey => {
      const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId);
      return { ...k, h1, h2 };
    };
    for (const i of [0, 1, 96, 12345]) {
      const k = key(i), h = withHashes(k);
      expect(foldHash(h.h1!, h.h2!)).toBe(keyHashes(k.recipient, k.sender, k.msgId).h);
    }
    const path = freshPath();
    const store = open(path);
    const n = DEDUPE_RUN_KEYS + 10;
    const keys = Array.from({ length: n }, (_, i) => withHashes(key(i)));
    rememberAll(store, keys.slice(0, DEDUPE_RUN_KEYS));
    buildRun(store);
    rememberAll(store, keys.slice(DEDUPE_RUN_KEYS));
    const probe = [0, 1, 5000, DEDUPE_RUN_KEYS - 1, DEDUPE_RUN_KEYS, n - 1];
    for (const i of probe) expect(find(store, key(i))).toBe(i + 1); // looked up by text: hashed here
    store.close();
    const again = open(path); // the tail is read back from the file and hashed there
    for (const i of probe) expect(find(again, key(i))).toBe(i + 1);
    again.close();
  });

  test("many runs: every key is found, also after reopen (filters read back from the file)", () => {
    const path = freshPath();
    const store = open(path);
    const keys = Array.from({ length: 4000 }, (_, i) => key(i));
    for (let r = 0; r < 40; r++) {
      rememberAll(store, keys.slice(r * 100, (r + 1) * 100));
      buildRun(store);
    }
    expect(store.sent.runCount()).toBe(40);
    for (let i = 0; i < keys.length; i += 7) expect(find(store, keys[i]!)).toBe(i + 1);
    store.close();
    const again = open(path);
    for (let i = 0; i < keys.length; i++) expect(find(again, keys[i]!)).toBe(i + 1);
    for (let i = 0; i < 500; i++) expect(find(again, { ...keys[i]!, msgId: `absent-${i}` })).toBe(0);
    again.close();
  });

  test("the runs' filters in memory are bounded: the oldest are let go, their keys still found, also after reopen and expiry", () => {
    const path = freshPath();
    const bounded = (p: string) =>
      InboxStore.open(p, { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0, runFilterBytes: 1000 });
    const store = bounded(path);
    const keys = Array.from({ length: 4000 }, (_, i) => key(i));
    for (let r = 0; r < 40; r++) {
      rememberAll(store, keys.slice(r * 100, (r + 1) * 100));
      buildRun(store);
    }
    // 100 keys at 10 bits: 125 bytes a run, so the newest 8 keep theirs.
    expect(store.sent.runFilters()).toEqual({ bytes: 1000, unfiltered: 32 });
    for (let i = 0; i < keys.length; i++) expect(find(store, keys[i]!)).toBe(i + 1);
    for (let i = 0; i < 500; i++) expect(find(store, { ...keys[i]!, msgId: `absent-${i}` })).toBe(0);
    store.close();
    const again = bounded(path);
    expect(again.sent.runFilters()).toEqual({ bytes: 1000, unfiltered: 32 });
    for (let i = 0; i < keys.length; i += 3) expect(find(again, keys[i]!)).toBe(i + 1);
    // Expiry drops the oldest (unfiltered) runs first: the count follows.
    again.transaction(() => again.sent.expire(T0 + 1000, 1_000_000));
    expect(again.sent.runCount()).toBe(30);
    expect(again.sent.runFilters()).toEqual({ bytes: 1000, unfiltered: 22 });
    again.close();
    const all = open(path); // unbounded: every filter back from the file
    // The 30 runs left are the open group again, its filter rebuilt from their slices (2 MiB).
    expect(all.sent.runFilters()).toEqual({ bytes: 30 * 125 + 2 ** 21, unfiltered: 0 });
    all.close();
  });

  test("an old tail is due by age, so a quiet store still expires", () => {
    const store = open(freshPath());
    rememberAll(store, [key(1, T0)]);
    expect(store.sent.due(T0 + WINDOW / DEDUPE_RUN_SLICES - 1, WINDOW)).toBe(false);
    expect(store.sent.due(T0 + WINDOW / DEDUPE_RUN_SLICES + 1, WINDOW)).toBe(true);
    store.close();
  });

  test("expiry drops whole runs older than the cutoff, never a run with a younger key, never the tail", () => {
    const store = open(freshPath());
    const old = Array.from({ length: 50 }, (_, i) => key(i, T0 + i));
    rememberAll(store, old);
    buildRun(store);
    const mixed = [key(100, T0), key(101, T0 + WINDOW)];
    rememberAll(store, mixed);
    buildRun(store);
    const tail = key(200, T0);
    rememberAll(store, [tail]);
    expect(store.sent.count()).toBe(53);

    const cutoff = T0 + 1000;
    expect(store.transaction(() => store.sent.expire(cutoff, 5000))).toBe(50);
    expect(store.sent.runCount()).toBe(1);
    expect(store.sent.count()).toBe(3);
    expect(find(store, old[0]!)).toBe(0);
    expect(find(store, mixed[0]!)).toBe(101); // its run holds a key younger than the cutoff
    expect(find(store, tail)).toBe(201);
    expect(store.transaction(() => store.sent.expire(cutoff, 5000))).toBe(0);
    expect(store.sent.count()).toBe(3);
    store.close();
  });

  test("a rolled-back transaction leaves no key behind, in memory or in a run", () => {
    const store = open(freshPath());
    rememberAll(store, [key(1)]);
    expect(() =>
      store.transaction(() => {
        store.sent.remember([key(2)]);
        store.sent.buildRun();
        throw new Error("boom");
      })
    ).toThrow("boom");
    expect(find(store, key(2))).toBe(0);
    expect(find(store, key(1))).toBe(2);
    expect(store.sent.runCount()).toBe(0);
    expect(store.sent.count()).toBe(1);
    store.close();
  });

  test("filter-rebuild pages go by log id and skip keys older than `since`", () => {
    const store = open(freshPath());
    rememberAll(store, [key(1, T0), key(2, T0 + 10), key(3, T0 + 20)]);
    buildRun(store);
    rememberAll(store, [key(4, T0 + 30)]);
    const first = store.sent.page(0, T0 + 5, 2);
    expect(first.map((r) => r[3])).toEqual(["id-2", "id-3"]);
    const next = store.sent.page(first[1]![0], T0 + 5, 2);
    expect(next.map((r) => [r[1], r[2], r[3], r[4]])).toEqual([["r4", "s4", "id-4", T0 + 30]]);
    store.close();
  });
});

describe("a key's text read by id (packs kept decoded)", () => {
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => key(from + i));

  test("retries of keys in many packs, again and again, past what is kept decoded: each finds its own seq", () => {
    const store = open(freshPath());
    // 40 packs of 1,000 keys: more than the 16,384 keys kept decoded, in the tail and in a run.
    for (let p = 0; p < 40; p++) rememberAll(store, range(p * 1000, 1000));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 40_000; i += 7) expect(find(store, key(i))).toBe(i + 1);
      for (let i = 39_999; i >= 0; i -= 501) expect(find(store, key(i))).toBe(i + 1);
    }
    expect(find(store, key(40_000))).toBe(0);
    store.close();
  });

  test("retries of keys in many small packs, past how many are kept decoded: each finds its own seq", () => {
    const store = open(freshPath());
    for (let p = 0; p < 200; p++) rememberAll(store, range(p * 2, 2)); // 200 packs of 2 keys
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 400; i += 3) expect(find(store, key(i))).toBe(i + 1);
      for (let i = 399; i >= 0; i -= 5) expect(find(store, key(i))).toBe(i + 1);
    }
    store.close();
  });

  test("a pack read inside a transaction that rolls back is not used for the keys given its ids next", () => {
    const store = open(freshPath());
    rememberAll(store, range(0, 100)); // ids 1..100
    expect(() =>
      store.transaction(() => {
        store.sent.remember(range(200, 50)); // ids 101..150, then gone
        expect(find(store, key(210))).toBe(211); // read by id inside the transaction
        throw new Error("boom");
      })
    ).toThrow("boom");
    rememberAll(store, range(300, 50)); // ids 101..150 again, other keys
    for (let i = 300; i < 350; i++) expect(find(store, key(i))).toBe(i + 1);
    for (let i = 200; i < 250; i++) expect(find(store, key(i))).toBe(0);
    for (let i = 0; i < 100; i += 9) expect(find(store, key(i))).toBe(i + 1);
    store.close();
  });

  test("keys of expired runs are gone, also after their packs were read", () => {
    const store = open(freshPath());
    const old = Array.from({ length: DEDUPE_RUN_KEYS }, (_, i) => key(i, T0));
    rememberAll(store, old);
    for (let i = 0; i < DEDUPE_RUN_KEYS; i += 1000) expect(find(store, old[i]!)).toBe(i + 1);
    buildRun(store);
    const young = range(DEDUPE_RUN_KEYS, 10).map((k) => ({ ...k, ts: T0 + WINDOW }));
    rememberAll(store, young);
    expect(store.transaction(() => store.sent.expire(T0 + 1, 1))).toBe(DEDUPE_RUN_KEYS);
    for (let i = 0; i < DEDUPE_RUN_KEYS; i += 1000) expect(find(store, old[i]!)).toBe(0);
    for (const k of young) expect(find(store, k)).toBe(k.seq);
    store.close();
  });
});

describe("run groups (migration 12)", () => {
  /** `runs` runs of `per` keys, run r's keys at ts T0 + r (so expiry can cut between runs). */
  function buildRuns(store: InboxStore, runs: number, per: number, from = 0): SentKey[] {
    const keys: SentKey[] = [];
    for (let r = from; r < from + runs; r++) {
      const batch = Array.from({ length: per }, (_, i) => key(r * per + i, T0 + r));
      rememberAll(store, batch);
      buildRun(store);
      keys.push(...batch);
    }
    return keys;
  }
  const groupRows = (path: string) => {
    const db = new Database(path, { readonly: true });
    const rows = db.query<{ lo: number; hi: number; keys: number; bytes: number }, []>(
      "SELECT lo, hi, keys, length(filter) AS bytes FROM sent_run_groups ORDER BY lo",
    ).all();
    db.close();
    return rows;
  };

  test("150 runs: two sealed groups of 64 and an open one; every key found, other keys not, also after reopen", () => {
    const path = freshPath();
    const store = open(path);
    const keys = buildRuns(store, 150, 20);
    expect(store.sent.runCount()).toBe(150);
    expect(store.sent.runGroupCount()).toBe(3);
    for (let i = 0; i < keys.length; i++) expect(find(store, keys[i]!)).toBe(i + 1);
    for (let i = 0; i < 3000; i++) expect(find(store, { ...keys[i]!, msgId: `absent-${i}` })).toBe(0);
    store.close();
    // Sealed groups are rows: ids 1..1280 and 1281..2560, their filters folded to 1,280 keys
    // (the smallest power of two with 10 bits a key: 16,384 bits).
    expect(groupRows(path)).toEqual([
      { lo: 1, hi: 1280, keys: 1280, bytes: 2048 },
      { lo: 1281, hi: 2560, keys: 1280, bytes: 2048 },
    ]);
    const again = open(path); // the open group (22 runs) rebuilt from their slices
    expect(again.sent.runGroupCount()).toBe(3);
    for (let i = 0; i < keys.length; i++) expect(find(again, keys[i]!)).toBe(i + 1);
    for (let i = 0; i < 3000; i++) expect(find(again, { ...keys[i]!, msgId: `absent-${i}` })).toBe(0);
    // The rebuilt open group goes on filling and seals at 64 runs, as if the store had not closed.
    const more = buildRuns(again, 42, 20, 150);
    expect(again.sent.runGroupCount()).toBe(3);
    for (let i = 0; i < more.length; i++) expect(find(again, more[i]!)).toBe(keys.length + i + 1);
    again.close();
    expect(groupRows(path).map((g) => [g.lo, g.hi])).toEqual([[1, 1280], [1281, 2560], [2561, 3840]]);
  });

  test("expiry: a group's row goes with its last run; a group partly expired still answers for the runs left", () => {
    const path = freshPath();
    const store = open(path);
    const keys = buildRuns(store, 140, 10);
    // Runs 0..99 are older than the cutoff: the first group whole, 36 runs of the second.
    const dropped = store.transaction(() => store.sent.expire(T0 + 100, 1_000_000));
    expect(dropped).toBe(1000);
    expect(store.sent.runCount()).toBe(40);
    expect(store.sent.runGroupCount()).toBe(2);
    expect(groupRows(path).map((g) => g.lo)).toEqual([641]);
    for (let i = 0; i < keys.length; i++) expect(find(store, keys[i]!)).toBe(i < 1000 ? 0 : i + 1);
    store.close();
    const again = open(path);
    expect(again.sent.count()).toBe(400); // read from the file: the packs' id range after the front went
    for (let i = 0; i < keys.length; i++) expect(find(again, keys[i]!)).toBe(i < 1000 ? 0 : i + 1);
    // The rest of the second group, then the open group: no row and no group left.
    again.transaction(() => again.sent.expire(T0 + 1000, 1_000_000));
    expect(again.sent.runCount()).toBe(0);
    expect(again.sent.runGroupCount()).toBe(0);
    expect(groupRows(path)).toEqual([]);
    again.close();
  });

  test("a rolled-back build that sealed a group leaves no row; the runs before it are the open group again", () => {
    const path = freshPath();
    const store = open(path);
    const keys = buildRuns(store, 63, 5);
    const last = Array.from({ length: 5 }, (_, i) => key(1000 + i));
    expect(() =>
      store.transaction(() => {
        store.sent.remember(last);
        store.sent.buildRun(); // the 64th run seals the group
        throw new Error("boom");
      })
    ).toThrow("boom");
    expect(groupRows(path)).toEqual([]);
    expect(store.sent.runCount()).toBe(63);
    expect(store.sent.runGroupCount()).toBe(1);
    for (let i = 0; i < keys.length; i++) expect(find(store, keys[i]!)).toBe(i + 1);
    for (const k of last) expect(find(store, k)).toBe(0);
    rememberAll(store, last);
    buildRun(store);
    expect(groupRows(path).map((g) => [g.lo, g.hi, g.keys])).toEqual([[1, 320, 320]]);
    for (const k of last) expect(find(store, k)).toBe(k.seq);
    store.close();
  });

  test("runs built before migration 12 stay ungrouped and are found; the newest 63 of them become the open group", () => {
    const path = freshPath();
    const store = open(path);
    const keys = buildRuns(store, 100, 10);
    store.close();
    // Back to schema 11 (no group table, nothing else differs): the reopen runs migration 12.
    const db = new Database(path);
    db.run("DROP TABLE sent_run_groups");
    db.run("PRAGMA user_version = 11");
    db.close();
    const again = open(path);
    // Runs 0..36 without a group, 37..99 the open group; the next build seals it at 64.
    expect(again.sent.runGroupCount()).toBe(1);
    for (let i = 0; i < keys.length; i++) expect(find(again, keys[i]!)).toBe(i + 1);
    for (let i = 0; i < 1000; i++) expect(find(again, { ...keys[i]!, msgId: `absent-${i}` })).toBe(0);
    buildRuns(again, 1, 10, 100);
    expect(groupRows(path).map((g) => [g.lo, g.hi])).toEqual([[371, 1010]]);
    again.close();
    const check = new Database(path, { readonly: true });
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    check.close();
  });
});

describe("migration 3: keyed table to log", () => {
  test("every stored message and every dedupe key survives; the keys are indexed on open", () => {
    const path = freshPath();
    const db = new Database(path, { create: true });
    migrate(db, MIGRATIONS.slice(0, 2));
    const n = DEDUPE_RUN_KEYS + 500;
    const ins = db.prepare("INSERT INTO sent_ids (recipient, sender, msg_id, seq, ts) VALUES (?, ?, ?, ?, ?)");
    const row = db.prepare(
      "INSERT INTO inbox (recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)",
    );
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const k = key(i);
        ins.run(k.recipient, k.sender, k.msgId, k.seq, k.ts);
      }
      for (let s = 1; s <= 300; s++) row.run("bob", s, "alice", `m${s}`, T0 + s, new Uint8Array([s & 255, 1, 2]));
    })();
    db.close();

    const store = open(path);
    // Every key of sent_ids, and every stored row's key the window did not hold (rows stored
    // before it existed): the inbox's unique index on ids is gone, the window stands in for it.
    expect(store.sent.count()).toBe(n + 300);
    expect(store.sent.lookup("bob", "alice", "m300", 0)).toBe(300);
    expect(store.sent.runCount()).toBe(1); // the first DEDUPE_RUN_KEYS, by age; the rest is the tail
    for (let i = 0; i < n; i += 97) expect(find(store, key(i))).toBe(i + 1);
    expect(find(store, key(n - 1))).toBe(n);
    expect(find(store, key(n))).toBe(0);
    const rows = store.fetch("bob", 0, 1000);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect([...rows[299]!.body]).toEqual([300 & 255, 1, 2]);
    store.close();

    const check = new Database(path, { readonly: true });
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    const names = check.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE name LIKE 'sent_%'").all();
    expect(names.map((x) => x.name).sort()).toEqual([
      "sent_log",
      "sent_packs",
      "sent_run_groups",
      "sent_run_keys",
      "sent_run_slices",
      "sent_runs",
    ]);
    check.close();
  });
});

describe("migration 8: the log in packs", () => {
  /** A file at schema 7 with `n` keys in sent_log (ids 1..n), as a build before packs left it. */
  function legacyFile(n: number): string {
    const path = freshPath();
    const db = new Database(path, { create: true });
    migrate(db, MIGRATIONS.slice(0, 7));
    const ins = db.prepare("INSERT INTO sent_log (recipient, sender, msg_id, seq, ts) VALUES (?, ?, ?, ?, ?)");
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const k = key(i);
        ins.run(k.recipient, k.sender, k.msgId, k.seq, k.ts);
      }
    })();
    db.close();
    return path;
  }

  test("reading the packs above an id searches the rowid from the pack holding it, never scanning from the first", () => {
    const path = freshPath();
    open(path).close();
    const db = new Database(path, { readonly: true });
    for (const cols of ["lo, hi, nums", "lo, hi, text, nums"]) {
      const plan = db.query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${packsAfterSql(cols)}`).all().map((r) =>
        r.detail
      );
      expect(plan.filter((d) => d.includes("sent_packs"))).toEqual([
        "SEARCH sent_packs USING INTEGER PRIMARY KEY (rowid>?)",
        "SEARCH sent_packs USING INTEGER PRIMARY KEY (rowid<?)",
      ]);
    }
    db.close();
    // And it reads from inside a pack: packs of 7 keys, pages of 5 keys cut them anywhere.
    const store = open(freshPath());
    const keys = Array.from({ length: 70 }, (_, i) => key(i));
    for (let i = 0; i < keys.length; i += 7) rememberAll(store, keys.slice(i, i + 7));
    const ids: number[] = [];
    for (let after = 0;;) {
      const page = store.sent.hashPage(after, 0, 5, null);
      for (let i = 0; i < page.ts.length; i++) ids.push(page.ts[i]! - T0 + 1);
      if (page.read < 5) break;
      after = page.last;
    }
    expect(ids).toEqual(keys.map((k) => k.seq));
    store.close();
  });

  test("keys from before (sent_log) and after (packs) are found together: tail, one run across both, reopen, pages, expiry", () => {
    const L = 300;
    const path = legacyFile(L);
    let store = open(path);
    const fresh = Array.from({ length: 200 }, (_, i) => key(L + i));
    rememberAll(store, fresh.slice(0, 120));
    rememberAll(store, fresh.slice(120));
    expect(store.sent.count()).toBe(L + 200);
    const all = [...Array.from({ length: L }, (_, i) => key(i)), ...fresh];
    const everyKeyFound = (s: InboxStore) => {
      for (let i = 0; i < all.length; i += 7) expect(find(s, all[i]!)).toBe(i + 1);
      expect(find(s, all.at(-1)!)).toBe(all.length);
      expect(find(s, key(all.length))).toBe(0);
    };
    everyKeyFound(store); // the tail: 300 rows read from sent_log, 200 keys from two packs
    // Pages go by id across the two: the packed keys are numbered after sent_log's.
    const ids: number[] = [];
    for (let after = 0;;) {
      const page = store.sent.page(after, 0, 64);
      ids.push(...page.map((r) => r[0]));
      if (page.length < 64) break;
      after = page.at(-1)![0];
    }
    expect(ids).toEqual(Array.from({ length: L + 200 }, (_, i) => i + 1));
    // The filter rebuild's read gives the same keys as hashes (sent_log's hashed, the packs' as
    // stored), a shard's own only when asked, and pages on from the last key it read.
    const hashed = (mine: ((r: string) => boolean) | null, since = 0) => {
      const got: number[][] = [];
      for (let after = 0;;) {
        const p = store.sent.hashPage(after, since, 64, mine);
        for (let i = 0; i < p.ts.length; i++) got.push([p.hashes[2 * i]!, p.hashes[2 * i + 1]!, p.ts[i]!]);
        if (p.read < 64) break;
        after = p.last;
      }
      return got;
    };
    const expected = (keep: (r: string) => boolean, since = 0) =>
      store.sent.page(0, since, 10_000).filter((r) => keep(r[1])).map((r) => {
        const [h1, h2] = sentKeyHash(r[1], r[2], r[3]);
        return [h1 >>> 0, h2 >>> 0, r[4]];
      });
    expect(hashed(null)).toEqual(expected(() => true));
    expect(hashed(null).length).toBe(L + 200);
    const mine = (r: string) => r.endsWith("1");
    expect(hashed(mine)).toEqual(expected(mine));
    expect(hashed(mine, T0 + L + 150)).toEqual(expected(mine, T0 + L + 150));
    const young = store.sent.page(0, T0 + L + 150, 1000);
    expect(young.map((r) => r[3])).toEqual(fresh.slice(150).map((k) => k.msgId));

    buildRun(store);
    expect(store.sent.runCount()).toBe(1);
    everyKeyFound(store); // in one run over sent_log's ids and both packs
    store.close();
    store = open(path);
    everyKeyFound(store);
    rememberAll(store, [key(all.length)]);
    expect(find(store, key(all.length))).toBe(all.length + 1); // after a reopen, ids go on above the run
    expect(store.transaction(() => store.sent.expire(T0 + 10 * WINDOW, 5000))).toBe(L + 200);
    expect(store.sent.count()).toBe(1);
    expect(find(store, all[0]!)).toBe(0);
    expect(find(store, fresh[0]!)).toBe(0);
    store.close();
    const check = new Database(path, { readonly: true });
    expect(check.query<{ n: number }, []>("SELECT count(*) AS n FROM sent_log").get()?.n).toBe(0);
    expect(check.query<{ n: number }, []>("SELECT count(*) AS n FROM sent_packs").get()?.n).toBe(1);
    check.close();
  });

  test("a tail of packs bigger than a run is indexed on open, a run ending at a pack's end", () => {
    const path = freshPath();
    let store = open(path);
    const keys = Array.from({ length: DEDUPE_RUN_KEYS + 700 }, (_, i) => key(i));
    // Packs of 300 keys, as group commits: none is built into a run while the store is open.
    for (let i = 0; i < keys.length; i += 300) rememberAll(store, keys.slice(i, i + 300));
    store.close();
    store = open(path);
    expect(store.sent.runCount()).toBe(1);
    for (let i = 0; i < keys.length; i += 101) expect(find(store, keys[i]!)).toBe(i + 1);
    store.close();
    const check = new Database(path, { readonly: true });
    const run = check.query<{ lo: number; hi: number }, []>("SELECT lo, hi FROM sent_runs").get()!;
    const ends = check.query<{ hi: number }, []>("SELECT hi FROM sent_packs").all().map((p) => p.hi);
    expect(run.lo).toBe(1);
    expect(ends).toContain(run.hi);
    expect(run.hi).toBeGreaterThanOrEqual(DEDUPE_RUN_KEYS);
    check.close();
  });

  test("keys of any text come back as they went in; a rolled-back pack leaves its ids free", () => {
    const store = open(freshPath());
    const odd: SentKey[] = [
      { recipient: "zoë", sender: "😀", msgId: "a\u0000b", seq: 1, ts: T0 },
      { recipient: "r", sender: "s".repeat(200), msgId: "日本語のid", seq: 2 ** 40, ts: T0 + 1 },
    ];
    rememberAll(store, odd);
    expect(() =>
      store.transaction(() => {
        store.sent.remember([key(7)]);
        throw new Error("boom");
      })
    ).toThrow("boom");
    rememberAll(store, [key(8)]);
    const rows = store.sent.page(0, 0, 10);
    expect(rows.map((r) => [r[0], r[1], r[2], r[3], r[4]])).toEqual([
      [1, "zoë", "😀", "a\u0000b", T0],
      [2, "r", "s".repeat(200), "日本語のid", T0 + 1],
      [3, "r8", "s8", "id-8", T0 + 8],
    ]);
    buildRun(store);
    expect(store.sent.lookup("zoë", "😀", "a\u0000b", 0)).toBe(1);
    expect(store.sent.lookup("r", "s".repeat(200), "日本語のid", 0)).toBe(2 ** 40);
    expect(find(store, key(7))).toBe(0);
    expect(find(store, key(8))).toBe(9);
    store.close();
  });

  test("a damaged pack is a clear error, not keys made up from the wrong characters", () => {
    const packed = packRemember({ t: "remember", keys: [key(1), key(2)] });
    const p = { text: packed.text, nums: new Uint8Array(packColumn(packed.nums).buffer) };
    const rows = (text: string, nums: Uint8Array) => {
      const out: string[] = [];
      eachPackKey(10, text, nums, 0, (r) => (out.push(`${r[0]}:${r[3]}`), true));
      return out;
    };
    expect(rows(p.text, p.nums)).toEqual(["10:id-1", "11:id-2"]);
    expect(() => rows(p.text.slice(0, -1), p.nums)).toThrow("pack 10 is shorter than its lengths");
    expect(() => rows(p.text, p.nums.subarray(0, 41))).toThrow("a number column of 41 bytes");
  });

  test("a remember packed for the port is stored as it came: found in the tail, a run and after reopen, both column kinds", () => {
    const path = freshPath();
    let store = open(path);
    const small = [key(1), key(2)]; // a number[] column (fewer than 24 keys)
    const big = Array.from({ length: 40 }, (_, i) => key(10 + i)); // a Float64Array column
    const ps = packRemember({ t: "remember", keys: small }), pb = packRemember({ t: "remember", keys: big });
    expect([Array.isArray(ps.nums), pb.nums instanceof Float64Array]).toEqual([true, true]);
    store.transaction(() => {
      expect(store.sent.rememberPacked(ps.text, ps.nums)).toBe(2);
      expect(store.sent.rememberPacked(pb.text, pb.nums)).toBe(40);
    });
    const all = [...small, ...big];
    const found = (s: InboxStore) => all.map((k) => find(s, k));
    expect(found(store)).toEqual(all.map((k) => k.seq));
    expect(store.sent.page(0, 0, 100).map((r) => r[3])).toEqual(all.map((k) => k.msgId));
    buildRun(store);
    expect(found(store)).toEqual(all.map((k) => k.seq));
    store.close();
    store = open(path);
    expect(found(store)).toEqual(all.map((k) => k.seq));
    expect(store.sent.count()).toBe(42);
    store.close();
  });
});

describe("migration 9: the dedupe runs in one table", () => {
  test("a schema-8 file's run tables move into sent_run_keys: every key found, the tables gone, expiry by run", () => {
    const path = freshPath();
    const db = new Database(path, { create: true });
    migrate(db, MIGRATIONS.slice(0, 8));
    // Two runs as builds before migration 9 left them: a table each, listed in sent_runs.
    const keys = Array.from({ length: 600 }, (_, i) => key(i));
    const ins = db.prepare("INSERT INTO sent_log (id, recipient, sender, msg_id, seq, ts) VALUES (?, ?, ?, ?, ?, ?)");
    db.transaction(() => {
      keys.forEach((k, i) => ins.run(i + 1, k.recipient, k.sender, k.msgId, k.seq, k.ts));
      for (const [lo, hi] of [[1, 300], [301, 600]] as const) {
        db.run(
          `CREATE TABLE sent_run_${lo} (h INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (h, id)) STRICT, WITHOUT ROWID`,
        );
        const filter = newRunFilter(hi - lo + 1);
        const put = db.prepare(`INSERT INTO sent_run_${lo} (h, id) VALUES (CAST(?1 AS INTEGER), ?2)`);
        for (let id = lo; id <= hi; id++) {
          const k = keys[id - 1]!;
          const { h, h1, h2 } = keyHashes(k.recipient, k.sender, k.msgId);
          filterAdd(filter, h1, h2);
          put.run(h, id);
        }
        put.finalize();
        db.prepare("INSERT INTO sent_runs (lo, hi, max_ts, keys, filter) VALUES (?, ?, ?, ?, ?)")
          .run(lo, hi, keys[hi - 1]!.ts, hi - lo + 1, filter);
      }
    })();
    db.close();

    const store = open(path);
    expect(store.sent.runCount()).toBe(2);
    for (let i = 0; i < keys.length; i++) expect(find(store, keys[i]!)).toBe(i + 1);
    expect(find(store, { ...keys[0]!, msgId: "absent" })).toBe(0);
    // The first run is wholly older than this cutoff, the second is not.
    expect(store.transaction(() => store.sent.expire(T0 + 300, 1_000_000))).toBe(300);
    expect(find(store, keys[0]!)).toBe(0);
    expect(find(store, keys[599]!)).toBe(600);
    store.close();

    const check = new Database(path, { readonly: true });
    const names = check.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE name LIKE 'sent_run%'").all();
    expect(names.map((x) => x.name).sort()).toEqual([
      "sent_run_groups",
      "sent_run_keys",
      "sent_run_slices",
      "sent_runs",
    ]);
    const perRun = check.query<{ lo: number; n: number }, []>("SELECT lo, count(*) AS n FROM sent_run_keys GROUP BY lo")
      .all();
    expect(perRun).toEqual([{ lo: 301, n: 300 }]);
    check.close();
  });
});

describe("migration 11: the dedupe runs in slices", () => {
  test("a schema-10 file's runs stay rows until they expire; runs built after it are slices; lookups read both", () => {
    const path = freshPath();
    const db = new Database(path, { create: true });
    migrate(db, MIGRATIONS.slice(0, 10));
    // One run of 1,000 keys as migration 9's builds wrote it, a row per key; 300 of them stored
    // under key 399's hash (as colliding keys would be), so a lookup of key 399 reads all of them.
    const keys = Array.from({ length: 1000 }, (_, i) => key(i));
    const real = (i: number) => keyHashes(keys[i]!.recipient, keys[i]!.sender, keys[i]!.msgId).h;
    const hashOf = (i: number) => (i >= 100 && i < 400 ? real(399) : real(i));
    const ins = db.prepare("INSERT INTO sent_log (id, recipient, sender, msg_id, seq, ts) VALUES (?, ?, ?, ?, ?, ?)");
    const put = db.prepare("INSERT INTO sent_run_keys (lo, h, id) VALUES (1, CAST(?1 AS INTEGER), ?2)");
    db.transaction(() => {
      keys.forEach((k, i) => ins.run(i + 1, k.recipient, k.sender, k.msgId, k.seq, k.ts));
      const filter = newRunFilter(keys.length);
      keys.forEach((k, i) => {
        const { h1, h2 } = keyHashes(k.recipient, k.sender, k.msgId);
        filterAdd(filter, h1, h2);
        put.run(hashOf(i), i + 1);
      });
      db.prepare("INSERT INTO sent_runs (lo, hi, max_ts, keys, filter) VALUES (1, 1000, ?, 1000, ?)").run(
        keys[999]!.ts,
        filter,
      );
    })();
    put.finalize();
    db.close();

    const store = open(path);
    expect(store.sent.runCount()).toBe(1);
    const found = (from: number, to: number) => {
      for (let i = from; i < to; i++) if (i < 100 || i >= 399) expect(find(store, keys[i]!)).toBe(i + 1);
    };
    found(0, 1000);
    expect(find(store, { ...keys[0]!, msgId: "absent" })).toBe(0);
    // A run built now is slices, beside the old one.
    const more = Array.from({ length: 500 }, (_, i) => key(1000 + i, T0 + 5000 + i));
    rememberAll(store, more);
    buildRun(store);
    expect(store.sent.runCount()).toBe(2);
    for (let i = 0; i < more.length; i += 7) expect(find(store, more[i]!)).toBe(1001 + i);
    found(0, 1000);
    // The old run expires whole: its rows go, the new run stays.
    expect(store.transaction(() => store.sent.expire(T0 + 2000, 1_000_000))).toBe(1000);
    expect(find(store, keys[999]!)).toBe(0);
    expect(find(store, more[0]!)).toBe(1001);
    store.close();

    const check = new Database(path, { readonly: true });
    expect(check.query<{ n: number }, []>("SELECT count(*) AS n FROM sent_run_keys").get()!.n).toBe(0);
    const slices = check.query<{ lo: number; n: number }, []>(
      "SELECT lo, sum(length(pairs)) / 16 AS n FROM sent_run_slices GROUP BY lo",
    ).all();
    expect(slices).toEqual([{ lo: 1001, n: 500 }]);
    expect(check.query<{ lo: number; sliced: number }, []>("SELECT lo, sliced FROM sent_runs").all()).toEqual([
      { lo: 1001, sliced: 1 },
    ]);
    check.close();
  });
});
