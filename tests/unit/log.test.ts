// The logger: one line per event in text and json, errors as message + code, repeats counted.

import { afterEach, describe, expect, test } from "bun:test";
import { configureLog, configureRepeatLimit, formatLine, log } from "../../src/observe/log.ts";

const captured: string[] = [];
const original = console.error;
function capture() {
  captured.length = 0;
  console.error = (...a: unknown[]) => void captured.push(a.map(String).join(" "));
}
afterEach(() => {
  console.error = original;
  configureLog("info", "main", "text");
  configureRepeatLimit(3, 10_000);
});

function sqliteError(): Error {
  const e = new Error("database or disk is full\n    at line 2 of some source excerpt");
  (e as unknown as { code: string }).code = "SQLITE_FULL";
  return e;
}

describe("log lines", () => {
  test("text: one line, error message and code, no stack", () => {
    configureLog("debug", "writer", "text");
    const line = formatLine("error", "commit failed\nsecond line", { error: sqliteError(), path: "/d b" });
    expect(line.split("\n")).toHaveLength(1);
    expect(line).toMatch(
      / error \[writer\] commit failed \| second line error=.*database or disk is full.*SQLITE_FULL/,
    );
    expect(line).toContain('path="/d b"');
    expect(line).not.toContain("    at ");
  });

  test("json: one object per line with time, level, thread, msg and fields", () => {
    configureLog("info", "shard1", "json");
    const line = formatLine("warn", "store full", { freeBytes: 123, error: sqliteError() });
    expect(line.split("\n")).toHaveLength(1);
    const o = JSON.parse(line);
    expect(o.level).toBe("warn");
    expect(o.thread).toBe("shard1");
    expect(o.msg).toBe("store full");
    expect(o.freeBytes).toBe(123);
    expect(o.error).toContain("SQLITE_FULL");
    expect(Number.isNaN(Date.parse(o.time))).toBe(false);
  });

  test("a repeated error prints a few lines, then one line with the count", async () => {
    configureRepeatLimit(3, 200);
    capture();
    for (let i = 0; i < 50; i++) log.error("commit failed", { error: sqliteError() });
    log.error("something else");
    expect(captured.filter((l) => l.includes("commit failed"))).toHaveLength(3);
    expect(captured.filter((l) => l.includes("something else"))).toHaveLength(1);
    await Bun.sleep(300);
    const summary = captured.filter((l) => l.includes("repeated="));
    expect(summary).toHaveLength(1);
    expect(summary[0]).toContain("repeated=47");
    // A new window prints again.
    log.error("commit failed");
    expect(captured.filter((l) => l.includes("commit failed"))).toHaveLength(5);
  });

  test("info lines are not rate-limited", () => {
    capture();
    for (let i = 0; i < 20; i++) log.info("tick");
    expect(captured).toHaveLength(20);
  });
});
