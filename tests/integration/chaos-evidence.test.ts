// A failing chaos run keeps its evidence (client files, every server line, the stores, run.log and
// the verdict) under $TMPDIR/iris-chaos-failed/<scenario>-<stamp>-<pid> and names that path in its
// verdict line; a passing run leaves nothing behind (the chaos smoke checks that for every scenario).

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { evidenceFate, FAILED_DIR, failedEvidencePath } from "../../chaos/lib/evidence.ts";

const RUN = resolve(import.meta.dir, "../../chaos/run.ts");
const tmp = mkdtempSync(join(tmpdir(), "iris-evidence-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("a failure is always kept; a pass is removed unless --keep 1", () => {
  expect(evidenceFate(false, false)).toBe("keepFailed");
  expect(evidenceFate(false, true)).toBe("keepFailed");
  expect(evidenceFate(true, false)).toBe("remove");
  expect(evidenceFate(true, true)).toBe("keep");
});

test("a failed run's place: the scenario, a UTC stamp and the runner's pid under iris-chaos-failed", () => {
  const at = new Date(Date.UTC(2026, 11, 1, 9, 5, 7, 123));
  expect(failedEvidencePath("/t", "split-brain", at, 42)).toBe("/t/iris-chaos-failed/split-brain-20261201T090507Z-42");
});

test("a run that fails for real keeps its evidence and prints where", async () => {
  // `--users 0`: the scenario's documented client count set to none, so no traffic is sent, which
  // the verdict counts as a failure ("no traffic was sent", chaos/lib/verdict.ts). The server,
  // its shard kills and the whole cleanup run as in any run; `--seconds 3` holds the chaos phase
  // 3 s instead of the short run's 8 (the evidence is the same).
  const proc = Bun.spawn([process.execPath, RUN, "sniper", "--short", "--users", "0", "--seconds", "3"], {
    env: { ...process.env, TMPDIR: tmp },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
    killSignal: "SIGTERM",
  });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  const line = out.trim().split("\n").pop() ?? "";
  expect(code).toBe(1);
  expect(line).toStartWith("FAIL sniper ");
  expect(line).toContain('why="no traffic was sent"');
  const path = line.match(/ evidence=(\S+)$/)?.[1];
  expect(path).toBeDefined();
  expect(path!.startsWith(join(tmp, FAILED_DIR, "sniper-"))).toBe(true);
  expect(readFileSync(join(path!, "verdict.txt"), "utf8").trim()).toBe(line.replace(/ evidence=\S+$/, ""));
  expect(readFileSync(join(path!, "run.log"), "utf8")).toContain("server pid");
  const servers = readdirSync(join(path!, "servers"));
  const log = servers.find((f) => /^server-\d+\.log$/.test(f));
  expect(log).toBeDefined();
  expect(statSync(join(path!, "servers", log!)).size).toBeGreaterThan(0);
  const data = servers.find((f) => f.startsWith("data-"));
  expect(data).toBeDefined();
  expect(existsSync(join(path!, "servers", data!, "iris.db"))).toBe(true);
  // Nothing else of the run is left in the temp dir: the evidence was moved, the rest removed.
  expect(readdirSync(tmp)).toEqual([FAILED_DIR]);
}, 150_000);
