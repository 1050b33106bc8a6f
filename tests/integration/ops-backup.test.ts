// `iris backup` during a flood: restore the copy into a new data dir, start Iris on it, and every
// message acked "stored" before the backup started is there, delivered exactly once.

import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IrisClient } from "../../src/client/index.ts";
import { runOnce } from "../helpers/run-once.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const USERS = 10;
const dirs: string[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("backup and restore", () => {
  test("a backup taken under a flood restores every message acked before it began, once", async () => {
    const root = mkdtempSync(join(tmpdir(), "iris-backup-"));
    dirs.push(root);
    const s = await startServer({ dataDir: join(root, "live") });
    servers.push(s);
    const acked = new Set<string>();
    let stop = false;
    const senders = await Promise.all(Array.from({ length: 3 }, async (_, k) => {
      const c = new IrisClient({ url: s.url, user: `s${k}` });
      await c.connect();
      let i = 0;
      const lane = async () => {
        while (!stop) {
          const key = `s${k}:${i++}`;
          if ((await c.send(`u${i % USERS}`, `${key}|${"z".repeat(512)}`)) === "stored") acked.add(key);
        }
      };
      return { c, run: Promise.all(Array.from({ length: 50 }, lane)) };
    }));
    await until(() => acked.size > 3000, "flood under way", 15_000);
    const before = new Set(acked);
    const out = join(root, "copy.db");
    const r = await runOnce(["backup", "--data-dir", join(root, "live"), "--out", out]);
    const ackedDuring = acked.size - before.size;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/backup written to .*copy\.db \(\d+ bytes, \d+ inbox rows, \d+ ms\)/);
    expect(ackedDuring).toBeGreaterThan(0); // the flood really ran while the copy was made
    // A second backup to the same file is refused: backups never overwrite.
    const again = await runOnce(["backup", "--data-dir", join(root, "live"), "--out", out]);
    expect(again.code).toBe(1);
    expect(again.lines).toHaveLength(1);
    expect(again.lines[0]).toContain("already exists");
    stop = true;
    for (const x of senders) {
      await x.run;
      x.c.close();
    }
    await s.stop();

    // Restore (docs/OPERATIONS.md): a new data dir holding the copy as iris.db.
    const restored = join(root, "restored");
    mkdirSync(restored);
    copyFileSync(out, join(restored, "iris.db"));
    expect(existsSync(join(restored, "iris.db-wal"))).toBe(false);
    const s2 = await startServer({ dataDir: restored });
    servers.push(s2);
    const counts = new Map<string, number>();
    const readers = await Promise.all(Array.from({ length: USERS }, async (_, u) => {
      const c = new IrisClient({ url: s2.url, user: `u${u}`, dedupeWindow: 1 });
      c.onMessage((m) => {
        const key = m.text().split("|")[0]!;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      });
      await c.connect();
      return c;
    }));
    await until(() => [...before].every((k) => counts.has(k)), "every pre-backup ack restored", 20_000);
    await Bun.sleep(300);
    for (const c of readers) c.close();
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    console.log(
      `backup: acked_before=${before.size} acked_during=${ackedDuring} restored=${counts.size} ${r.stdout.trim()}`,
    );
  }, 60_000);

  test("bad backup arguments are one line", async () => {
    const r = await runOnce(["backup", "--data-dir", "/nonexistent-iris-dir"]);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual(["iris: backup: invalid --out: required"]);
    const r2 = await runOnce(["backup", "--data-dir", "/nonexistent-iris-dir", "--out", "/tmp/x-iris.db"]);
    expect(r2.code).toBe(1);
    expect(r2.lines).toHaveLength(1);
    expect(r2.lines[0]).toContain("no database here");
  });
});
