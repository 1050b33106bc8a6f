// One instance per data dir and per port: a second start is refused with one line; a SIGKILLed
// instance leaves no stale lock behind.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { IrisClient } from "../../src/client/index.ts";
import { runOnce } from "../helpers/run-once.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

const dirs: string[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "iris-inst-"));
  dirs.push(d);
  return d;
}

describe("one instance per data dir and port", () => {
  test("a second instance on the same data dir exits non-zero naming the dir and the holder's PID", async () => {
    const dir = tempDir();
    const first = await startServer({ dataDir: dir });
    servers.push(first);
    const r = await runOnce(["--port", "0", "--data-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toContain(resolve(dir));
    expect(r.lines[0]).toContain(`pid ${first.proc.pid}`);
    expect(r.stdout).not.toContain("ready");
    // The first instance is untouched and still serves.
    expect((await fetch(`${first.http}/readyz`)).status).toBe(200);
  });

  test("a port bound by another process is refused with one line, even though shards use reusePort", async () => {
    const first = await startServer({ shards: 2 });
    servers.push(first);
    const r = await runOnce(["--port", String(first.port), "--data-dir", tempDir()]);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toContain(`port ${first.port}`);
    expect(r.lines[0]).toContain("in use");
  });

  test("the v0 TCP port is checked too", async () => {
    const first = await startServer({ args: ["--tcp-port", "0"] });
    servers.push(first);
    const r = await runOnce(["--port", "0", "--tcp-port", String(first.tcpPort), "--data-dir", tempDir()]);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toContain(`port ${first.tcpPort}`);
  });

  test("after the first instance is SIGKILLed a new one starts at once on the same dir and port", async () => {
    const dir = tempDir();
    const first = await startServer({ dataDir: dir });
    servers.push(first);
    const c = new IrisClient({ url: first.url, user: "a" });
    await c.connect();
    expect(await c.send("offline", "kept")).toBe("stored");
    c.close();
    await first.kill();
    const t0 = performance.now();
    const second = await startServer({ dataDir: dir, args: ["--port", String(first.port)] });
    servers.push(second);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(second.port).toBe(first.port);
    const got: string[] = [];
    const r = new IrisClient({ url: second.url, user: "offline" });
    r.onMessage((m) => got.push(m.text()));
    await r.connect();
    const end = Date.now() + 5000;
    while (got.length < 1 && Date.now() < end) await Bun.sleep(10);
    r.close();
    expect(got).toEqual(["kept"]);
  });
});
