// Broken or foreign files at start: each is refused with one line naming the path and what to
// do, exit 1, and the files are left exactly as they were.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IrisClient } from "../../src/client/index.ts";
import { runOnce } from "../helpers/run-once.ts";
import { startServer } from "../helpers/server.ts";

let root = "";
let goodDb = ""; // a real Iris database with a few hundred stored messages, cleanly closed

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

function sh(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
}

/** A data dir holding a copy of the good database. */
function dirWithDb(name: string): { dir: string; db: string } {
  const dir = join(root, name);
  mkdirSync(dir);
  const db = join(dir, "iris.db");
  copyFileSync(goodDb, db);
  return { dir, db };
}

async function expectRefused(dir: string, path: string, words: RegExp) {
  const r = await runOnce(["--port", "0", "--data-dir", dir]);
  expect(r.code).toBe(1);
  if (r.lines.length !== 1) console.error(r.stderr);
  expect(r.lines).toHaveLength(1);
  expect(r.lines[0]).toContain(path);
  expect(r.lines[0]).toMatch(words);
  expect(r.stdout).not.toContain("ready");
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "iris-files-"));
  const s = await startServer({ dataDir: join(root, "seed") });
  const c = new IrisClient({ url: s.url, user: "sender" });
  await c.connect();
  const body = "x".repeat(2000);
  const acks = await Promise.all(Array.from({ length: 300 }, (_, i) => c.send(`u${i % 7}`, body + i)));
  expect(acks.every((a) => a === "stored")).toBe(true);
  c.close();
  expect(await s.stop()).toBe(0);
  goodDb = join(root, "seed", "iris.db");
  expect(existsSync(`${goodDb}-wal`) ? statSync(`${goodDb}-wal`).size : 0).toBe(0);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("broken or foreign files at start", () => {
  test("the data dir path is a file", async () => {
    const file = join(root, "plainfile");
    writeFileSync(file, "not a dir\n");
    await expectRefused(file, file, /is a file, not a directory.*--data-dir/);
    expect(readFileSync(file, "utf8")).toBe("not a dir\n");
  });

  test("a read-only data dir (read-only mount)", async () => {
    const { dir, db } = dirWithDb("ro");
    const before = sha(db);
    // A read-only bind mount of the dir onto itself: refused even for root.
    sh(["mount", "--bind", dir, dir]);
    try {
      sh(["mount", "-o", "remount,bind,ro", dir]);
      await expectRefused(dir, dir, /not writable.*read-only.*writable/);
    } finally {
      sh(["umount", dir]);
    }
    expect(sha(db)).toBe(before);
    expect(existsSync(join(dir, "iris.lock"))).toBe(false);
  });

  test("a database that is not SQLite (garbage)", async () => {
    const dir = join(root, "garbage");
    mkdirSync(dir);
    const db = join(dir, "iris.db");
    writeFileSync(db, crypto.getRandomValues(new Uint8Array(8192)));
    const before = sha(db);
    await expectRefused(dir, db, /not a SQLite database.*backup/);
    expect(sha(db)).toBe(before);
  });

  test("a truncated database", async () => {
    const { dir, db } = dirWithDb("truncated");
    truncateSync(db, Math.floor(statSync(db).size / 2));
    const before = sha(db);
    await expectRefused(dir, db, /truncated.*backup/);
    expect(sha(db)).toBe(before);
  });

  test("a corrupt database (pages overwritten in the middle)", async () => {
    const { dir, db } = dirWithDb("corrupt");
    const bytes = readFileSync(db);
    const page = bytes.readUInt16BE(16);
    // Overwrite pages 3..6 (b-tree pages of the inbox) with a byte pattern SQLite cannot parse.
    bytes.fill(0xa5, page * 2, page * 6);
    writeFileSync(db, bytes);
    const before = sha(db);
    await expectRefused(dir, db, /corrupt|cannot be read/);
    expect(sha(db)).toBe(before);
  });

  test("a 20 MiB corrupt database is caught at start (quick_check up to --startup-check-mb, default 256)", async () => {
    const dir = join(root, "bigcorrupt");
    const s = await startServer({ dataDir: dir });
    const c = new IrisClient({ url: s.url, user: "sender" });
    await c.connect();
    const body = "y".repeat(8000);
    for (let k = 0; k < 5; k++) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => c.send(`v${i % 5}`, body + k + ":" + i)));
    }
    c.close();
    expect(await s.stop()).toBe(0);
    const db = join(dir, "iris.db");
    expect(statSync(db).size).toBeGreaterThan(16 * 1048576);
    const bytes = readFileSync(db);
    const page = bytes.readUInt16BE(16);
    bytes.fill(0xa5, page * 2, page * 6);
    writeFileSync(db, bytes);
    const before = sha(db);
    await expectRefused(dir, db, /is corrupt.*backup/);
    expect(sha(db)).toBe(before);
  }, 60_000);

  test("a database from a newer Iris (schema version above ours)", async () => {
    const { dir, db } = dirWithDb("newer");
    const h = new Database(db);
    h.run("PRAGMA user_version = 99");
    h.close();
    const before = sha(db);
    await expectRefused(dir, db, /newer Iris \(schema version 99, this build knows \d+\).*newer iris binary/);
    expect(sha(db)).toBe(before);
  });

  test("the good database still starts (the checks do not refuse a healthy file)", async () => {
    const { dir } = dirWithDb("healthy");
    const s = await startServer({ dataDir: dir });
    expect((await fetch(`${s.http}/readyz`)).status).toBe(200);
    expect(await s.stop()).toBe(0);
  });
});
