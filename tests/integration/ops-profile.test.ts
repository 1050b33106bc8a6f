// SIGUSR2 on the real binary: every shard and the writer sample their JS stacks for a few seconds
// and write a report under <data-dir>/profiles, named by thread, listing functions by name (the
// binary keeps them); a second signal while one runs is refused in the log, not queued.

import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});

async function login(port: number, user: string): Promise<RawSocket> {
  const s = await RawSocket.open(`ws://127.0.0.1:${port}/ws`);
  s.send(JSON.stringify({ type: "login", user }));
  expect(JSON.parse(String(await s.next())).type).toBe("login_ok");
  return s;
}

describe("profiling a running server", () => {
  test("SIGUSR2 writes one report per thread with the shard's functions by name", async () => {
    const s = await startServer({ shards: 2, args: ["--log-level", "info", "--profile-seconds", "1"] });
    servers.push(s);
    const a = await login(s.port, "prof-a");
    const b = await login(s.port, "prof-b");
    process.kill(s.proc.pid, "SIGUSR2");
    await until(() => s.output().includes("profiling the shards and the writer"), "the profiling line");
    process.kill(s.proc.pid, "SIGUSR2"); // while the first runs: refused by each thread
    // Traffic while it samples: a closed loop of sends and their deliveries, WINDOW at a time so
    // that the shards are busy for most of the second (one at a time left ~8 samples a shard, and
    // a run in CI whose samples all missed the read path).
    const WINDOW = 100;
    const end = Date.now() + 1_500;
    let n = 0;
    while (Date.now() < end) {
      for (let i = 0; i < WINDOW; i++) a.send(JSON.stringify({ type: "send", id: `p${++n}`, to: "prof-b", body: "x" }));
      for (let i = 0; i < WINDOW; i++) expect(JSON.parse(String(await b.next())).type).toBe("msg");
      for (let i = 0; i < WINDOW; i++) expect(JSON.parse(String(await a.next())).type).toBe("sent");
    }
    await until(() => (s.output().match(/profile written/g) ?? []).length === 3, "three reports", 15_000);
    expect((s.output().match(/already running; this request is ignored/g) ?? []).length).toBe(3);

    const dir = join(s.dataDir, "profiles");
    const files = readdirSync(dir);
    const thread = (f: string) => f.replace(/^.*Z-/, "").replace(/\.txt$/, "");
    expect(files.map(thread).sort()).toEqual(["shard-0", "shard-1", "writer"]);
    const report = new Map(files.map((f) => [thread(f), readFileSync(join(dir, f), "utf8")]));
    console.log([...report.values()].map((r) => r.split("\n")[0]).join("; "));
    for (const [name, r] of report) {
      expect(r).toMatch(new RegExp(`^# ${name}: \\d+ samples in 1000 ms\\n## self`));
      expect(r).toContain("## inclusive (anywhere on the stack)");
    }
    // The shards' JS frames carry their source names. Which ones a second's samples catch is luck
    // (a CI run's few samples once all missed the read path, onData), so any of the shard's entry
    // points counts: a client frame (message, onData), a port message (receive), or a timer.
    const shards = report.get("shard-0")! + report.get("shard-1")!;
    expect(shards).toMatch(
      /^ +[\d.]+% +\d+ {2}(message|onData|receive|dispatch|housekeeping|flush) \(shard-worker\.js\)$/m,
    );
    a.close();
    b.close();
  }, 30_000);
});
