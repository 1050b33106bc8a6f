import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getTableConfig, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { type AppendResult, type InboxRow, InboxStore, type InboxStoreOptions } from "../../src/store/inbox-store.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "../../src/store/migrations.ts";
import {
  dedupeFilterImages,
  inboxAcked,
  inboxIndex,
  inboxIndexed,
  inboxLog,
  inboxSpans,
  sentLog,
  sentPacks,
  sentRunGroups,
  sentRunKeys,
  sentRuns,
  sentRunSlices,
  users,
} from "../../src/store/schema.ts";

const root = mkdtempSync(join(tmpdir(), `iris-store-${crypto.randomUUID().slice(0, 8)}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let fileNo = 0;
/** A fresh database path in a not-yet-existing subdirectory. */
function freshPath(): string {
  fileNo++;
  return join(root, `case-${fileNo}`, "nested", "inbox.db");
}

const OPTS: InboxStoreOptions = { maxInboxPerUser: 1000, ttlMs: 0 };

function open(path: string, opts: Partial<InboxStoreOptions> = {}): InboxStore {
  return InboxStore.open(path, { ...OPTS, ...opts });
}

function row(recipient: string, seq: number, extra: Partial<InboxRow> = {}): InboxRow {
  return {
    recipient,
    seq,
    sender: "alice",
    msgId: `m${seq}`,
    ts: 1_700_000_000_000 + seq,
    body: new TextEncoder().encode(`body ${recipient} ${seq}`),
    ...extra,
  };
}

/** Row count as SQLite sees it, through an independent read-only connection. */
/** Rows in the file that are stored: not at or below their user's ack watermark (inbox_acked). */
function sqlCount(path: string, recipient?: string): number {
  const db = new Database(path, { readonly: true });
  const live = "NOT EXISTS (SELECT 1 FROM inbox_acked AS a WHERE a.recipient = l.recipient AND l.seq <= a.upto)";
  try {
    const q = recipient === undefined
      ? db.query<{ n: number }, []>(`SELECT count(*) AS n FROM inbox_log AS l WHERE ${live}`).get()
      : db.query<{ n: number }, [string]>(
        `SELECT count(*) AS n FROM inbox_log AS l WHERE recipient = ? AND ${live}`,
      ).get(recipient);
    return q?.n ?? -1;
  } finally {
    db.close();
  }
}

function userVersionOf(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? -1;
  } finally {
    db.close();
  }
}

describe("open and migrations", () => {
  test("fresh file: parent dir created, WAL, schema at latest version", () => {
    const path = freshPath();
    const store = open(path);
    store.close();
    expect(existsSync(path)).toBe(true);
    expect(userVersionOf(path)).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);

    const db = new Database(path, { readonly: true });
    // journal_mode=WAL is persistent in the file header.
    expect(db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode).toBe(
      "wal",
    );
    const tables = db.query<{ name: string; sql: string }, []>(
      "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name",
    ).all();
    expect(tables.map((t) => t.name)).toEqual([
      "dedupe_filter_images",
      "inbox_acked",
      "inbox_index",
      "inbox_indexed",
      "inbox_log",
      "inbox_spans",
      "sent_log",
      "sent_packs",
      "sent_run_groups",
      "sent_run_keys",
      "sent_run_slices",
      "sent_runs",
      "users",
    ]);
    for (const t of tables) {
      expect(t.sql).toContain("STRICT");
      // The logs and their small lists are rowid tables on purpose: appended in id order.
      const keyed = t.name === "users" || t.name === "inbox_index" || t.name === "inbox_acked" ||
        t.name === "sent_run_keys" || t.name === "sent_run_slices";
      if (keyed) expect(t.sql).toContain("WITHOUT ROWID");
      else expect(t.sql).not.toContain("WITHOUT ROWID");
    }
    db.close();
  });

  test("migration SQL matches schema.ts (columns, keys, indexes)", () => {
    const path = freshPath();
    open(path).close();
    const db = new Database(path, { readonly: true });
    const dialect = new SQLiteSyncDialect();
    for (
      const table of [
        inboxLog,
        inboxIndex,
        inboxIndexed,
        inboxAcked,
        inboxSpans,
        sentLog,
        sentPacks,
        sentRuns,
        sentRunKeys,
        sentRunSlices,
        sentRunGroups,
        dedupeFilterImages,
        users,
      ]
    ) {
      const cfg = getTableConfig(table);
      type ColInfo = { name: string; type: string; notnull: number; dflt_value: string | null; pk: number };
      const info = db.query<ColInfo, []>(`PRAGMA table_xinfo(${cfg.name})`).all();
      expect(info.map((c) => c.name)).toEqual(cfg.columns.map((c) => c.name));
      for (const col of cfg.columns) {
        const c = info.find((i) => i.name === col.name)!;
        expect(c.type.toLowerCase()).toBe(col.getSQLType().toLowerCase());
        expect(c.notnull === 1).toBe(col.notNull);
        // Drizzle marks an integer primary key as defaulted (SQLite assigns the rowid) with no value.
        const dflt = col.hasDefault && col.default !== undefined ? String(col.default) : null;
        expect(c.dflt_value).toBe(dflt);
      }
      // Primary key: composite from primaryKeys[], or a single column flag.
      const pkFromSql = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
      const pkFromDrizzle = cfg.primaryKeys.length > 0
        ? cfg.primaryKeys[0]!.columns.map((c) => c.name)
        : cfg.columns.filter((c) => c.primary).map((c) => c.name);
      expect(pkFromSql).toEqual(pkFromDrizzle);

      // Secondary indexes: names, uniqueness, column order, partial WHERE.
      const list = db.query<{ name: string; unique: number; origin: string; partial: number }, []>(
        `PRAGMA index_list(${cfg.name})`,
      ).all().filter((i) => i.origin === "c");
      expect(list.map((i) => i.name).sort()).toEqual(cfg.indexes.map((i) => i.config.name).sort());
      for (const idx of cfg.indexes) {
        const l = list.find((i) => i.name === idx.config.name)!;
        expect(l.unique === 1).toBe(idx.config.unique);
        const cols = db.query<{ name: string }, []>(`PRAGMA index_info(${idx.config.name})`).all()
          .map((c) => c.name);
        expect(cols).toEqual(idx.config.columns.map((c) => ("name" in c ? c.name : "?")));
        const created = db.query<{ sql: string }, [string]>(
          "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
        ).get(idx.config.name)!.sql;
        if (idx.config.where === undefined) {
          expect(l.partial).toBe(0);
        } else {
          expect(l.partial).toBe(1);
          const where = dialect.sqlToQuery(idx.config.where).sql;
          expect(created.replace(/\s+/g, " ")).toContain(`WHERE ${where}`);
        }
      }
    }
    db.close();
  });

  test("re-open keeps data and version; migrate is idempotent", () => {
    const path = freshPath();
    const a = open(path);
    expect(a.append([row("bob", 1), row("bob", 2)])).toEqual(["stored", "stored"]);
    expect(a.reserveSeqs("bob", 5)).toEqual({ first: 3, last: 7, lastSeen: 0 }); // append raised it to 2
    a.close();

    const b = open(path);
    expect(b.fetch("bob", 0, 10).map((r) => r.seq)).toEqual([1, 2]);
    expect(b.getUser("bob")?.seqReserved).toBe(7);
    b.close();
    expect(userVersionOf(path)).toBe(SCHEMA_VERSION);

    const db = new Database(path);
    expect(migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    db.close();
  });

  test("a new file gets 16 KiB pages; a file that has tables keeps its own", () => {
    const pageOf = (path: string) => {
      const db = new Database(path, { readonly: true });
      try {
        const q = (p: string) => Object.values(db.query(`PRAGMA ${p}`).get() as object)[0] as number;
        return q("page_size");
      } finally {
        db.close();
      }
    };
    const fresh = freshPath();
    const a = open(fresh);
    a.append([row("bob", 1)]);
    a.close();
    expect(pageOf(fresh)).toBe(16384);
    // A file made at SQLite's default page size (as every file before this option) keeps it.
    const old = freshPath();
    const b = open(old, { pageSizeBytes: 4096 });
    b.append([row("bob", 1)]);
    b.close();
    const c = open(old);
    expect(c.fetch("bob", 0, 10).map((r) => r.seq)).toEqual([1]);
    c.close();
    expect(pageOf(old)).toBe(4096);
    expect(() => open(freshPath(), { pageSizeBytes: 5000 })).toThrow("pageSizeBytes");
  });

  test("refuses a file written by a newer schema", () => {
    const path = freshPath();
    open(path).close();
    const db = new Database(path);
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => open(path)).toThrow(/newer than this build/);
  });

  test("rejects bad options", () => {
    expect(() => open(freshPath(), { maxInboxPerUser: 0 })).toThrow(RangeError);
    expect(() => open(freshPath(), { ttlMs: -1 })).toThrow(RangeError);
    expect(() => open(freshPath(), { synchronous: "OFF" as "FULL" })).toThrow(RangeError);
    expect(() => open(freshPath(), { busyTimeoutMs: 1.5 })).toThrow(RangeError);
  });

  test("synchronous FULL is applied", () => {
    const store = open(freshPath(), { synchronous: "FULL" });
    expect(store.append([row("u", 1)])).toEqual(["stored"]);
    store.close();
  });
});

describe("append and fetch", () => {
  test("fetch is ordered by seq, honours afterSeq and limit", () => {
    const store = open(freshPath());
    const seqs = [5, 1, 4, 2, 3, 10];
    expect(store.append(seqs.map((s) => row("bob", s)))).toEqual(seqs.map(() => "stored"));
    store.append([row("carol", 7)]);
    expect(store.fetch("bob", 0, 100).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 10]);
    expect(store.fetch("bob", 2, 2).map((r) => r.seq)).toEqual([3, 4]);
    expect(store.fetch("bob", 10, 5)).toEqual([]);
    expect(store.fetch("bob", 0, 0)).toEqual([]);
    expect(store.fetch("nobody", 0, 10)).toEqual([]);
    const [first] = store.fetch("bob", 0, 1);
    expect(first).toEqual(row("bob", 1));
    store.close();
  });

  test("ids are not unique in the inbox: the dedupe window is, and a full inbox consults it", () => {
    // Migration 3 dropped the inbox's unique index on (sender, msg_id, recipient): owners check
    // the window before they accept an id, and the writer remembers each stored row's key.
    const store = open(freshPath(), { maxInboxPerUser: 2 });
    expect(store.append([row("bob", 1, { msgId: "x" })])).toEqual(["stored"]);
    expect(store.append([row("bob", 2, { msgId: "x" })])).toEqual(["stored"]);
    expect(store.fetch("bob", 0, 10).map((r) => r.seq)).toEqual([1, 2]);
    // Full: a retry whose key is in the window is a duplicate; one that is not is refused.
    store.sent.remember([{ recipient: "bob", sender: "alice", msgId: "x", seq: 1, ts: 1 }]);
    expect(store.append([row("bob", 3, { msgId: "x" }), row("bob", 4, { msgId: "y" })])).toEqual([
      "duplicate",
      "full",
    ]);
    expect(store.append([row("bob", 5, { msgId: "x", sender: "dave" })])).toEqual(["full"]);
    expect(store.count("bob")).toBe(2);
    store.close();
  });

  test("duplicate by (recipient, seq): a re-sent row is idempotent", () => {
    const path = freshPath();
    const a = open(path);
    const rows = [row("bob", 1), row("bob", 2)];
    expect(a.append(rows)).toEqual(["stored", "stored"]);
    a.close();
    const b = open(path); // as after a restart
    expect(b.append(rows)).toEqual(["duplicate", "duplicate"]);
    // Same seq, different content: the stored row wins.
    expect(b.append([row("bob", 2, { msgId: "", body: new Uint8Array([9]) })])).toEqual(["duplicate"]);
    expect(b.fetch("bob", 0, 10)).toEqual(rows);
    expect(b.count("bob")).toBe(2);
    b.close();
  });

  test("empty msgId is never deduplicated", () => {
    const store = open(freshPath());
    const res = store.append([
      row("bob", 1, { msgId: "" }),
      row("bob", 2, { msgId: "" }),
      row("bob", 3, { msgId: "", body: new Uint8Array() }),
    ]);
    expect(res).toEqual(["stored", "stored", "stored"]);
    expect(store.append([row("bob", 4, { msgId: "" })])).toEqual(["stored"]);
    expect(store.count("bob")).toBe(4);
    store.close();
  });

  test("rejects malformed rows without writing anything", () => {
    const path = freshPath();
    const store = open(path);
    const bad: InboxRow[] = [
      row("bob", 0),
      row("bob", 1.5),
      row("bob", Number.MAX_SAFE_INTEGER + 1),
      row("bob", 1, { ts: Number.NaN }),
      row("bob", 1, { body: "text" as unknown as Uint8Array }),
      row("bob", 1, { msgId: null as unknown as string }),
    ];
    for (const r of bad) {
      expect(() => store.append([row("bob", 1), r])).toThrow();
    }
    expect(store.count("bob")).toBe(0);
    expect(sqlCount(path)).toBe(0);
    expect(store.append([])).toEqual([]);
    store.close();
  });

  test("1 MiB body round-trips byte-exact", () => {
    const path = freshPath();
    const body = new Uint8Array(1024 * 1024);
    crypto.getRandomValues(body.subarray(0, 65536));
    for (let i = 65536; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
    const a = open(path);
    expect(a.append([row("bob", 1, { body })])).toEqual(["stored"]);
    expect(Buffer.compare(a.fetch("bob", 0, 1)[0]!.body, body)).toBe(0);
    a.close();
    const b = open(path);
    const got = b.fetch("bob", 0, 1)[0]!.body;
    expect(got.byteLength).toBe(body.byteLength);
    expect(Buffer.compare(got, body)).toBe(0);
    b.close();
  });

  test("unicode user ids are stored and matched exactly (no normalisation)", () => {
    const path = freshPath();
    const ids = ["Zoë", "Zoe\u0308", "用户", "🦊🚀", "a\u0000b", "مرحبا", ""];
    const a = open(path);
    ids.forEach((id, i) => {
      expect(a.append([row(id, 1, { sender: ids[(i + 1) % ids.length]!, msgId: `ü-${i}` })])).toEqual([
        "stored",
      ]);
      a.reserveSeqs(id, i + 1); // on top of seq 1 from the append
    });
    a.close();
    const b = open(path);
    ids.forEach((id, i) => {
      const got = b.fetch(id, 0, 10);
      expect(got.length).toBe(1);
      expect(got[0]!.recipient).toBe(id);
      expect(got[0]!.sender).toBe(ids[(i + 1) % ids.length]!);
      expect(got[0]!.msgId).toBe(`ü-${i}`);
      expect(b.count(id)).toBe(1);
      expect(b.getUser(id)?.seqReserved).toBe(i + 2);
    });
    expect(b.totalCount()).toBe(ids.length);
    b.close();
  });
});

describe("limits and counts", () => {
  test("full at maxInboxPerUser; duplicate wins over full; cache exact after deletes", () => {
    const path = freshPath();
    const store = open(path, { maxInboxPerUser: 3 });
    expect(store.append([1, 2, 3, 4].map((s) => row("bob", s)))).toEqual([
      "stored",
      "stored",
      "stored",
      "full",
    ]);
    expect(store.append([row("carol", 1)])).toEqual(["stored"]); // per recipient
    // While full: a retry of a stored row is a duplicate (by seq, and by msgId through the
    // dedupe window, where the writer puts every stored row's key).
    store.sent.remember([1, 2, 3].map((s) => ({ recipient: "bob", sender: "alice", msgId: `m${s}`, seq: s, ts: 1 })));
    expect(store.append([row("bob", 2), row("bob", 9, { msgId: "m3" }), row("bob", 5)])).toEqual([
      "duplicate",
      "duplicate",
      "full",
    ]);
    expect(store.count("bob")).toBe(3);

    expect(store.deleteUpTo("bob", 1)).toBe(1);
    expect(store.count("bob")).toBe(sqlCount(path, "bob"));
    expect(store.append([row("bob", 5), row("bob", 6)])).toEqual(["stored", "full"]);
    expect(store.deleteSeqs("bob", [2, 5, 5, 99])).toBe(2);
    expect(store.count("bob")).toBe(1);
    expect(store.count("bob")).toBe(sqlCount(path, "bob"));
    expect(store.append([row("bob", 6), row("bob", 7), row("bob", 8)])).toEqual([
      "stored",
      "stored",
      "full",
    ]);
    expect(store.totalCount()).toBe(sqlCount(path));
    store.close();
  });

  test("count cache is loaded lazily from existing rows and stays exact when evicted", () => {
    const path = freshPath();
    const a = open(path);
    for (let u = 0; u < 10; u++) {
      a.append(Array.from({ length: u + 1 }, (_, i) => row(`u${u}`, i + 1)));
    }
    a.close();
    // Tiny cache: every touch of another user evicts.
    const b = open(path, { maxInboxPerUser: 5, countCacheMax: 2 });
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 10; u++) expect(b.count(`u${u}`)).toBe(Math.min(u + 1, sqlCount(path, `u${u}`)));
    }
    // u9 has 10 rows already (more than the new cap): full.
    expect(b.append([row("u9", 11), row("u0", 2)])).toEqual(["full", "stored"]);
    expect(b.deleteUpTo("u9", 6)).toBe(6);
    expect(b.append([row("u9", 11)])).toEqual(["stored"]);
    for (let u = 0; u < 10; u++) expect(b.count(`u${u}`)).toBe(sqlCount(path, `u${u}`));
    expect(b.totalCount()).toBe(sqlCount(path));
    b.close();
  });

  test("rollback of a caller transaction keeps counts exact", () => {
    const path = freshPath();
    const store = open(path, { maxInboxPerUser: 2 });
    store.append([row("bob", 1)]);
    expect(store.totalCount()).toBe(1);
    expect(() =>
      store.transaction(() => {
        expect(store.append([row("bob", 2)])).toEqual(["stored"]);
        expect(store.count("bob")).toBe(2);
        throw new Error("boom");
      })
    ).toThrow("boom");
    expect(store.count("bob")).toBe(1);
    expect(store.totalCount()).toBe(1);
    expect(store.append([row("bob", 2)])).toEqual(["stored"]); // not falsely full

    // A failed inner step inside a caller transaction rolls back only itself.
    const res = store.transaction(() => {
      store.deleteUpTo("bob", 1);
      try {
        store.transaction(() => {
          store.deleteUpTo("bob", 2);
          throw new Error("inner");
        });
      } catch {
        // keep going
      }
      return store.count("bob");
    });
    expect(res).toBe(1);
    expect(store.count("bob")).toBe(sqlCount(path, "bob"));
    expect(store.totalCount()).toBe(sqlCount(path));
    store.close();
  });

  test("transaction refuses an async callback and rolls it back", () => {
    const store = open(freshPath());
    expect(() =>
      store.transaction(() => {
        store.append([row("bob", 1)]);
        return Promise.resolve(1);
      })
    ).toThrow(TypeError);
    expect(store.count("bob")).toBe(0);
    store.close();
  });

  test("totalCount tracks appends, deletes and expiry", () => {
    const path = freshPath();
    const store = open(path, { ttlMs: 1000 });
    store.append([row("a", 1, { ts: 100 }), row("b", 1, { ts: 5000 })]);
    expect(store.totalCount()).toBe(2);
    store.append([row("a", 2, { ts: 200 }), row("a", 2)]);
    expect(store.totalCount()).toBe(3);
    store.expire(1150); // deletes ts < 150
    expect(store.totalCount()).toBe(2);
    store.deleteSeqs("a", [2]);
    expect(store.totalCount()).toBe(1);
    expect(store.totalCount()).toBe(sqlCount(path));
    store.close();
  });
});

describe("model check", () => {
  test("random ops agree with an in-memory model (results, rows, counts, totals)", () => {
    // Deterministic PRNG so a failure is reproducible.
    let seed = 0x1234abcd;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const MAX = 6;
    const TTL = 50;
    const usersList = ["a", "b", "c", "d"];
    const path = freshPath();
    const store = open(path, { maxInboxPerUser: MAX, ttlMs: TTL, countCacheMax: 2 });
    type Model = Map<string, Map<number, InboxRow>>;
    let model: Model = new Map(usersList.map((u) => [u, new Map()]));
    const clone = (m: Model): Model => new Map([...m].map(([u, rows]) => [u, new Map(rows)]));
    const total = () => [...model.values()].reduce((n, rows) => n + rows.size, 0);
    let now = 1000;
    const seen = { stored: 0, duplicate: 0, full: 0, expired: 0, rolledBack: 0, indexed: 0, compacted: 0 };

    const modelAppend = (r: InboxRow): AppendResult => {
      const rows = model.get(r.recipient)!;
      // Only by seq: ids are the dedupe window's job (empty here: append does not remember keys).
      const dup = rows.has(r.seq);
      const res = dup ? "duplicate" : rows.size >= MAX ? "full" : "stored";
      if (res === "stored") rows.set(r.seq, r);
      seen[res]++;
      return res;
    };
    const randomRow = (): InboxRow =>
      row(usersList[rand(4)]!, 1 + rand(12), {
        sender: rand(2) === 0 ? "x" : "y",
        msgId: rand(3) === 0 ? "" : `id${rand(6)}`,
        ts: now - rand(80),
      });
    const doOp = (op: number) => {
      if (op < 5) {
        const rows = Array.from({ length: 1 + rand(4) }, randomRow);
        expect(store.append(rows)).toEqual(rows.map(modelAppend));
      } else if (op < 6) {
        const u = usersList[rand(4)]!;
        const upTo = rand(12);
        let n = 0;
        for (const seq of [...model.get(u)!.keys()]) if (seq <= upTo) n += Number(model.get(u)!.delete(seq));
        expect(store.deleteUpTo(u, upTo)).toBe(n);
      } else if (op < 7) {
        const u = usersList[rand(4)]!;
        const seqs = [rand(12), rand(12)];
        let n = 0;
        for (const seq of seqs) n += Number(model.get(u)!.delete(seq));
        expect(store.deleteSeqs(u, seqs)).toBe(n);
      } else if (op < 8) {
        // A slice of the inbox log's tail enters its per-user index (store/inbox-log.ts): batches
        // span several ops, deletes, expiry and rollbacks; nothing may change.
        seen.indexed += store.transaction(() => store.buildInboxIndex(1 + rand(3)));
      } else if (op < 9) {
        // A chunk of acked rows leaves the files (under their watermarks): nothing may change.
        seen.compacted += store.transaction(() => store.compactInbox(1 + rand(4)));
      } else {
        now += rand(30);
        let n = 0;
        for (const rows of model.values()) {
          for (const [seq, r] of [...rows]) if (r.ts < now - TTL) n += Number(rows.delete(seq));
        }
        seen.expired += n;
        expect(store.expire(now)).toBe(n);
      }
    };

    for (let step = 0; step < 400; step++) {
      if (rand(10) === 0) {
        // A caller transaction that fails: nothing it did may stick.
        const saved = clone(model);
        expect(() =>
          store.transaction(() => {
            for (let i = 0; i < 3; i++) doOp(rand(10));
            throw new Error("rollback");
          })
        ).toThrow("rollback");
        model = saved;
        seen.rolledBack++;
      } else if (rand(4) === 0) {
        store.transaction(() => {
          for (let i = 0; i < 3; i++) doOp(rand(10));
        });
      } else {
        doOp(rand(10));
      }
      for (const u of usersList) expect(store.count(u)).toBe(model.get(u)!.size);
      expect(store.totalCount()).toBe(total());
      if (step % 50 === 0) {
        expect(sqlCount(path)).toBe(total());
        for (const u of usersList) {
          const want = [...model.get(u)!.values()].sort((x, y) => x.seq - y.seq);
          expect(store.fetch(u, 0, 100)).toEqual(want);
        }
      }
    }
    // The walk must have exercised every outcome, or it proves little.
    for (const v of Object.values(seen)) expect(v).toBeGreaterThan(10);
    store.close();
  });
});

describe("sequences and users", () => {
  test("reserveSeqs is monotonic and persists across reopen", () => {
    const path = freshPath();
    const a = open(path);
    expect(a.reserveSeqs("bob", 1)).toEqual({ first: 1, last: 1, lastSeen: 0 });
    expect(a.reserveSeqs("bob", 10)).toEqual({ first: 2, last: 11, lastSeen: 0 });
    expect(a.reserveSeqs("carol", 3)).toEqual({ first: 1, last: 3, lastSeen: 0 });
    expect(() => a.reserveSeqs("bob", 0)).toThrow(RangeError);
    expect(() => a.reserveSeqs("bob", 1.5)).toThrow(RangeError);
    a.close();
    const b = open(path);
    expect(b.reserveSeqs("bob", 2)).toEqual({ first: 12, last: 13, lastSeen: 0 });
    expect(b.getUser("bob")).toEqual({ seqReserved: 13, lastSeen: 0 });
    b.close();
  });

  test("reserveSeqs refuses to pass 2^53 - 1", () => {
    const store = open(freshPath());
    store.append([row("bob", Number.MAX_SAFE_INTEGER - 1, { ts: 1 })]);
    expect(store.reserveSeqs("bob", 1)).toEqual({
      first: Number.MAX_SAFE_INTEGER,
      last: Number.MAX_SAFE_INTEGER,
      lastSeen: 0,
    });
    expect(() => store.reserveSeqs("bob", 1)).toThrow(/exhausted/);
    expect(store.getUser("bob")?.seqReserved).toBe(Number.MAX_SAFE_INTEGER);
    store.close();
  });

  test("appends under a known reservation skip the upsert; a rolled-back raise is not remembered", () => {
    const path = freshPath();
    const store = open(path, { countCacheMax: 2 });
    store.reserveSeqs("bob", 10);
    store.reserveSeqs("zoe", 5);
    expect(store.reservationsKnown()).toBe(0); // a reservation alone (every login) is not kept
    store.append([row("bob", 1)]); // learns bob's whole reservation from his row
    expect(store.reservationsKnown()).toBe(1);
    store.append([row("bob", 10)]); // under the reservation: seq_reserved stays 10
    expect(store.getUser("bob")?.seqReserved).toBe(10);
    store.reserveSeqs("bob", 10); // a known user's next block moves what is known
    expect(store.reservationsKnown()).toBe(1);
    store.append([row("bob", 20)]);
    expect(store.getUser("bob")?.seqReserved).toBe(20);
    // A raise inside a transaction that rolls back must not be taken as known afterwards.
    expect(() =>
      store.transaction(() => {
        store.append([row("bob", 30)]);
        throw new Error("roll back");
      })
    ).toThrow("roll back");
    expect(store.getUser("bob")?.seqReserved).toBe(20);
    store.append([row("bob", 30)]);
    expect(store.getUser("bob")?.seqReserved).toBe(30);
    // Past the cache's bound the oldest user is forgotten and upserted again (never skipped wrongly).
    store.append([row("carol", 4)]);
    store.append([row("dave", 6)]);
    store.append([row("bob", 31)]);
    expect(store.reserveSeqs("bob", 1)).toEqual({ first: 32, last: 32, lastSeen: 0 });
    expect(store.reserveSeqs("carol", 1)).toEqual({ first: 5, last: 5, lastSeen: 0 });
    store.close();
    expect(open(path).reserveSeqs("dave", 1)).toEqual({ first: 7, last: 7, lastSeen: 0 });
  });

  test("append raises seq_reserved to the highest seq, never lowers it", () => {
    const store = open(freshPath(), { maxInboxPerUser: 2 });
    store.append([row("bob", 7), row("bob", 3)]);
    expect(store.getUser("bob")?.seqReserved).toBe(7);
    expect(store.reserveSeqs("bob", 1)).toEqual({ first: 8, last: 8, lastSeen: 0 });
    store.append([row("bob", 5)]); // full, still counted as a used seq; lower than 8
    expect(store.getUser("bob")?.seqReserved).toBe(8);
    store.append([row("bob", 20)]); // full, higher: raises
    expect(store.getUser("bob")?.seqReserved).toBe(20);
    // One batch mixing a user under a known reservation, then above it, and an unknown user.
    const s2 = open(freshPath());
    s2.reserveSeqs("erin", 10);
    s2.append([row("erin", 3), row("frank", 4), row("erin", 12), row("frank", 2), row("erin", 11)]);
    expect([s2.getUser("erin")?.seqReserved, s2.getUser("frank")?.seqReserved]).toEqual([12, 4]);
    expect(s2.reserveSeqs("erin", 1)).toEqual({ first: 13, last: 13, lastSeen: 0 });
    s2.close();
    store.close();
  });

  test("setLastSeen upserts in a batch, keeps the newest, leaves seqReserved alone", () => {
    const store = open(freshPath());
    expect(store.getUser("bob")).toBeNull();
    store.reserveSeqs("bob", 4);
    store.setLastSeen([
      { user: "bob", ts: 1000 },
      { user: "carol", ts: 2000 },
      { user: "bob", ts: 1500 },
    ]);
    expect(store.getUser("bob")).toEqual({ seqReserved: 4, lastSeen: 1500 });
    expect(store.getUser("carol")).toEqual({ seqReserved: 0, lastSeen: 2000 });
    store.setLastSeen([{ user: "bob", ts: 1200 }]); // older: ignored
    expect(store.getUser("bob")?.lastSeen).toBe(1500);
    store.setLastSeen([{ user: "bob", ts: 3000 }]);
    expect(store.getUser("bob")?.lastSeen).toBe(3000);
    // A reservation (a box's load) returns the last-seen time with the seqs.
    expect(store.reserveSeqs("bob", 2)).toEqual({ first: 5, last: 6, lastSeen: 3000 });
    expect(store.reserveSeqs("dave", 1)).toEqual({ first: 1, last: 1, lastSeen: 0 });
    store.setLastSeen([]);
    expect(() => store.setLastSeen([{ user: "bob", ts: 1.5 }])).toThrow(RangeError);
    store.close();
  });
});

describe("deletion and expiry", () => {
  test("deleteUpTo deletes seq <= n and returns the count", () => {
    const store = open(freshPath());
    store.append([1, 2, 3, 4, 5].map((s) => row("bob", s)));
    store.append([row("carol", 1)]);
    expect(store.deleteUpTo("bob", 3)).toBe(3);
    expect(store.deleteUpTo("bob", 3)).toBe(0);
    expect(store.fetch("bob", 0, 10).map((r) => r.seq)).toEqual([4, 5]);
    expect(store.count("carol")).toBe(1);
    expect(store.deleteUpTo("bob", Number.MAX_SAFE_INTEGER)).toBe(2);
    expect(store.count("bob")).toBe(0);
    store.close();
  });

  test("expire deletes rows older than ttlMs and keeps counts exact", () => {
    const path = freshPath();
    const store = open(path, { ttlMs: 1000, maxInboxPerUser: 3 });
    store.append([
      row("bob", 1, { ts: 1000 }),
      row("bob", 2, { ts: 1999 }),
      row("bob", 3, { ts: 2000 }),
      row("carol", 1, { ts: 500 }),
    ]);
    expect(store.count("bob")).toBe(3); // cached before expiry
    expect(store.expire(3000)).toBe(3); // ts < 2000
    expect(store.fetch("bob", 0, 10).map((r) => r.seq)).toEqual([3]);
    expect(store.count("bob")).toBe(1);
    expect(store.count("carol")).toBe(0);
    expect(store.count("bob")).toBe(sqlCount(path, "bob"));
    expect(store.append([row("bob", 4), row("bob", 5), row("bob", 6)])).toEqual([
      "stored",
      "stored",
      "full",
    ]);
    expect(store.expire(3000)).toBe(0);
    store.close();
  });

  test("ttlMs = 0 disables expiry", () => {
    const store = open(freshPath(), { ttlMs: 0 });
    store.append([row("bob", 1, { ts: 1 })]);
    expect(store.expire(Date.now())).toBe(0);
    expect(store.count("bob")).toBe(1);
    store.close();
  });
});

describe("durability", () => {
  test("a 1000-row transaction is fully visible after reopen", () => {
    const path = freshPath();
    const a = open(path, { maxInboxPerUser: 10_000 });
    const rows: InboxRow[] = [];
    for (let i = 0; i < 1000; i++) rows.push(row(`u${i % 37}`, Math.floor(i / 37) + 1));
    const res = a.transaction(() => a.append(rows));
    expect(res.every((r) => r === "stored")).toBe(true);
    a.close();
    const b = open(path);
    expect(b.totalCount()).toBe(1000);
    let fetched = 0;
    for (let u = 0; u < 37; u++) fetched += b.fetch(`u${u}`, 0, 1000).length;
    expect(fetched).toBe(1000);
    expect(b.fetch("u5", 0, 1000)[3]).toEqual(rows[3 * 37 + 5]!);
    b.close();
  });

  test("committed rows survive SIGKILL of the writing process (WAL + NORMAL)", () => {
    const path = freshPath();
    const storeModule = join(import.meta.dir, "../../src/store/inbox-store.ts");
    const script = `
      const { InboxStore } = await import(${JSON.stringify(storeModule)});
      const s = InboxStore.open(${JSON.stringify(path)}, { maxInboxPerUser: 100000, ttlMs: 0 });
      for (let t = 0; t < 5; t++) {
        const rows = [];
        for (let i = 0; i < 1000; i++) {
          rows.push({ recipient: "u" + (i % 10), seq: t * 100 + Math.floor(i / 10) + 1, sender: "s",
            msgId: t + "-" + i, ts: 1, body: new Uint8Array(100) });
        }
        s.transaction(() => s.append(rows));
      }
      process.kill(process.pid, "SIGKILL");
    `;
    const child = Bun.spawnSync([process.execPath, "-e", script], { stderr: "pipe" });
    expect(child.signalCode).toBe("SIGKILL");
    const store = open(path);
    expect(store.totalCount()).toBe(5000);
    expect(store.count("u3")).toBe(500);
    expect(store.getUser("u3")?.seqReserved).toBe(500);
    store.close();
  });
});

describe("closed store", () => {
  test("calls after close throw; close twice is fine; close really closes", () => {
    const path = freshPath();
    const store = open(path);
    store.append([row("bob", 1)]);
    expect(existsSync(`${path}-wal`)).toBe(true);
    store.close();
    // The last connection to close checkpoints and deletes the WAL.
    expect(existsSync(`${path}-wal`)).toBe(false);
    store.close();
    expect(() => store.count("bob")).toThrow(/closed/);
    expect(() => store.append([row("bob", 1)])).toThrow(/closed/);
  });
});
