// Bad flags and env values exit non-zero with one clear line naming the setting.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY } from "../helpers/server.ts";

function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([BINARY, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString().trim() };
}

describe("config errors", () => {
  test.each([
    [["--port", "70000"], "--port"],
    [["--port", "abc"], "--port"],
    [["--max-payload", "-1"], "--max-payload"],
    [["--log-level", "loud"], "--log-level"],
    [["--jwt-secret", "short"], "--jwt-secret"],
    [["--nope"], "unknown flag --nope"],
    [["--port"], "--port needs a value"],
    [["stray"], "unexpected argument"],
  ])("%p is refused naming %p", (args, needle) => {
    const r = run(args as string[]);
    expect(r.code).toBe(2);
    expect(r.err.split("\n").length).toBe(1);
    expect(r.err).toContain(needle as string);
  });

  test("env vars are validated too", () => {
    const r = run([], { IRIS_PORT: "-5" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("IRIS_PORT");
  });

  test("binding a public address without auth is refused unless --insecure", () => {
    const r = run(["--host", "0.0.0.0"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--insecure");
  });

  test("--help and --version exit 0", () => {
    expect(run(["--help"]).out).toContain("--auto-tune");
    expect(run(["--version"]).out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test("a port already in use fails with a clear error", async () => {
    const blocker = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("x") });
    const port = blocker.port;
    const dir = mkdtempSync(join(tmpdir(), "iris-cfg-"));
    const r = run(["--port", String(port), "--data-dir", dir]);
    blocker.stop(true);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`port ${port} on 127.0.0.1 is already in use`);
  });
});
