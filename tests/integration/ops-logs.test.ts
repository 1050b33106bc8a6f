// Logs an operator can read, from the real binary: --log-format json gives one JSON object per
// line, and a thread crash is one line with the error's message, never a source excerpt.

import { afterEach, describe, expect, test } from "bun:test";
import { runOnce } from "../helpers/run-once.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});

const stderrLines = (s: RunningServer) =>
  s.output().split("\n").filter((l) => l.trim() !== "" && !l.startsWith("iris ") && !l.startsWith("ready {"));

describe("operator logs", () => {
  test("json format: every line is one object; a shard crash is one line without source", async () => {
    const s = await startServer({ args: ["--log-format", "json", "--log-level", "info", "--chaos"] });
    servers.push(s);
    const chaos = Number(s.output().match(/chaos=(\d+)/)![1]);
    expect((await fetch(`http://127.0.0.1:${chaos}/chaos/shards/0/crash`, { method: "POST" })).status).toBe(200);
    await until(() => s.output().includes("shard restarted"), "shard restart");
    const lines = stderrLines(s);
    expect(lines.length).toBeGreaterThan(2);
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const o of objs) {
      expect(typeof o.time).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(o.level as string);
      expect(typeof o.thread).toBe("string");
      expect(typeof o.msg).toBe("string");
    }
    const crash = objs.find((o) => String(o.error ?? "").includes("chaos: shard crash requested"));
    expect(crash?.thread).toBe("shard0");
    // No source excerpt anywhere: no "N | code" lines, no caret lines, no stack frames.
    expect(s.output()).not.toMatch(/^\s*\d+ \| /m);
    expect(s.output()).not.toMatch(/^\s*at /m);
  });

  test("a bad --log-format is one line and exit 2", async () => {
    const r = await runOnce(["--log-format", "xml"]);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toContain("--log-format (IRIS_LOG_FORMAT)");
  });
});
