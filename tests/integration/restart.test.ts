// Stored messages survive a graceful restart and a SIGKILL: nothing acked is lost.

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";
import { metric } from "../helpers/v0tcp.ts";
import { Database } from "bun:sqlite";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "../../src/store/migrations.ts";

const dirs: string[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function send(url: string, from: string, to: string, n: number, prefix: string) {
  const c = new IrisClient({ url, user: from });
  await c.connect();
  const acks = await Promise.all(Array.from({ length: n }, (_, i) => c.send(to, `${prefix}${i}`)));
  c.close();
  return acks;
}

async function receive(url: string, user: string, n: number): Promise<IrisMessage[]> {
  const c = new IrisClient({ url, user });
  const got: IrisMessage[] = [];
  c.onMessage((m) => got.push(m));
  await c.connect();
  await until(() => got.length >= n, `${n} messages for ${user} (have ${got.length})`, 20_000);
  await Bun.sleep(150);
  c.close();
  return got;
}

describe("restart", () => {
  for (const [name, signal] of [["graceful SIGTERM", "SIGTERM"], ["SIGKILL", "SIGKILL"]] as const) {
    test(`inboxes survive ${name}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "iris-restart-"));
      dirs.push(dir);
      const s1 = await startServer({ dataDir: dir });
      servers.push(s1);
      const acks = await send(s1.url, "writer", "sleeper", 500, "x");
      expect(acks.every((a) => a === "stored")).toBe(true);
      const code = await s1.stop(signal);
      if (signal === "SIGTERM") expect(code).toBe(0);
      const s2 = await startServer({ dataDir: dir });
      servers.push(s2);
      const got = await receive(s2.url, "sleeper", 500);
      expect(got.map((m) => m.text())).toEqual(Array.from({ length: 500 }, (_, i) => `x${i}`));
      // Sequence numbers after the restart never reuse one the client already saw.
      const more = await send(s2.url, "writer", "sleeper", 1, "after");
      expect(more).toEqual(["stored"]);
      const next = await receive(s2.url, "sleeper", 1);
      expect(next[0]!.seq).toBeGreaterThan(got[got.length - 1]!.seq);
      await s2.stop();
    });
  }

  test("the checkpointer thread copies the WAL while the server stores, and a graceful stop still removes the WAL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iris-restart-"));
    dirs.push(dir);
    const s = await startServer({ dataDir: dir });
    servers.push(s);
    const acks = await send(s.url, "writer", "sleeper", 2000, "c");
    expect(acks.every((a) => a === "stored")).toBe(true);
    // The commits' pages reach the database file from the checkpointer's connection once the WAL
    // has held still for 2 s, not only at the writer's 64 MiB autocheckpoint (which 2,000 short
    // rows never reach: so the writer copied nothing, and our passes are not counted as its).
    await until(async () => (await metric(s.http, "iris_store_wal_copied_pages")) > 0, "a checkpoint pass", 10_000);
    expect(await metric(s.http, "iris_store_wal_checkpoint_passes_total")).toBeGreaterThan(0);
    expect(await metric(s.http, "iris_store_wal_checkpoint_errors_total")).toBe(0);
    await Bun.sleep(300); // a few more looks at the index after the pass
    expect(await metric(s.http, "iris_store_wal_writer_copied_pages_total")).toBe(0);
    expect(await s.stop("SIGTERM")).toBe(0);
    // The checkpointer closed first, so the writer was the last connection and removed the WAL.
    expect(existsSync(join(dir, "iris.db-wal"))).toBe(false);
    const s2 = await startServer({ dataDir: dir });
    servers.push(s2);
    const got = await receive(s2.url, "sleeper", 2000);
    expect(got.map((m) => m.text())).toEqual(Array.from({ length: 2000 }, (_, i) => `c${i}`));
    await s2.stop();
  });

  test("SIGTERM closes clients with 1001 and a reason, and exits 0 promptly", async () => {
    const s = await startServer();
    servers.push(s);
    const ws = new WebSocket(s.url);
    const closed = new Promise<{ code: number; reason: string }>((
      r,
    ) => (ws.onclose = (e) => r({ code: e.code, reason: e.reason })));
    await new Promise((r) => (ws.onopen = r));
    const t0 = Date.now();
    const code = await s.stop("SIGTERM");
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await closed).toEqual({ code: 1001, reason: "server shutting down" });
  });

  test("a file of an older schema is migrated at start, and the writer says so before it waits on it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iris-restart-"));
    dirs.push(dir);
    // A file as an earlier release left it (schema 8), holding one stored message for bob.
    const db = new Database(join(dir, "iris.db"), { create: true });
    db.run("PRAGMA journal_mode = WAL");
    migrate(db, MIGRATIONS.slice(0, 8));
    db.prepare("INSERT INTO inbox_log (recipient, seq, sender, msg_id, ts, body) VALUES (?, ?, ?, ?, ?, ?)")
      .run("bob", 1, "alice", "", Date.now(), new TextEncoder().encode("from before"));
    db.close();
    const s = await startServer({ dataDir: dir, args: ["--log-level", "info"] });
    servers.push(s);
    expect(s.output()).toContain("migrating the store's schema");
    expect(s.output()).toContain(`from=8 to=${SCHEMA_VERSION}`);
    const got = await receive(s.url, "bob", 1);
    expect(got.map((m) => new TextDecoder().decode(m.body))).toEqual(["from before"]);
  });
});
