// The binary starts with mimalloc's purge delay in its environment (tune/allocator.ts), applied by
// re-executing itself once: the same pid serves, and an operator's own value is kept.

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "bun:test";
import { ALLOCATOR_PURGE_DELAY_MS, PURGE_DELAY_ENV_VAR } from "../../tune/allocator.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

/** The environment the process with this pid runs with now (after any execve). */
function environOf(pid: number): Map<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
  const out = new Map<string, string>();
  for (const kv of raw.split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return out;
}

let srv: RunningServer | null = null;
afterEach(async () => {
  await srv?.stop();
  srv = null;
});

describe.skipIf(process.platform !== "linux")("allocator settings at start", () => {
  test("the served process (same pid as spawned) has the purge delay, and answers", async () => {
    srv = await startServer();
    const env = environOf(srv.proc.pid);
    expect(env.get(PURGE_DELAY_ENV_VAR)).toBe(String(ALLOCATOR_PURGE_DELAY_MS));
    expect((await fetch(`${srv.http}/readyz`)).status).toBe(200);
  });

  test("an operator's MIMALLOC_PURGE_DELAY is kept", async () => {
    srv = await startServer({ env: { [PURGE_DELAY_ENV_VAR]: "250" } });
    expect(environOf(srv.proc.pid).get(PURGE_DELAY_ENV_VAR)).toBe("250");
  });
});
