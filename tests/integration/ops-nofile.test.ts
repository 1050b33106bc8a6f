// The binary calls raiseNoFileLimit() at start (OPERATIONS.md). Bun 1.4.5 itself already raises
// soft to hard, so the limit alone cannot show the call: the debug line reporting its result does.

import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type RunningServer, startServer } from "../helpers/server.ts";

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});

describe("open files limit", () => {
  test("started with soft 256 / hard 4096: raised at start, the running server has soft 4096", async () => {
    const s = await startServer({ wrap: ["prlimit", "--nofile=256:4096", "--"], args: ["--log-level", "debug"] });
    servers.push(s);
    expect(s.output()).toMatch(/\[main\] open files limit soft=4096/);
    const limits = readFileSync(`/proc/${s.proc.pid}/limits`, "utf8");
    const m = limits.match(/^Max open files\s+(\d+)\s+(\d+)/m);
    expect(Number(m![1])).toBe(4096);
  });
});
