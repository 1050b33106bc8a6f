// Per-thread server CPU over one backlog drain (issue 14): fills one offline user's inbox through
// Iris, then reads every server thread's CPU (/proc/<pid>/task/*/stat) before and after that user
// logs in and drains. The writer and the shard are Worker threads; the heaviest Worker over a drain
// is the writer (SQLite). Not a scenario: a tool.
// usage: bun bench/drain-threads.ts v0|v1|v1b MESSAGES [BINARY]   (v1b: v1 with bundles)

import { readdirSync, readFileSync } from "node:fs";
import { LoadGen } from "./lib/loadgen.ts";
import { drainBacklog, type DrainProto, fillBacklog } from "./lib/one-backlog.ts";
import { startIris } from "./lib/server.ts";

const TICK_US = 10_000; // USER_HZ = 100

function threads(pid: number): Map<string, { name: string; us: number }> {
  const out = new Map<string, { name: string; us: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      out.set(tid, { name, us: (Number(f[11]) + Number(f[12])) * TICK_US });
    } catch { /* the thread ended */ }
  }
  return out;
}

const [proto = "v0", nArg = "50000", binary] = process.argv.slice(2);
const lg = await LoadGen.spawn(1);
const s = await startIris({ binary, tcp: true, args: ["--max-inbox", String(Math.max(100_000, Number(nArg)))] });
try {
  const n = await fillBacklog(lg, s, "thr-user", Number(nArg));
  await Bun.sleep(300);
  const before = threads(s.pid);
  const d = await drainBacklog(lg, s, proto as DrainProto, "thr-user", n);
  await Bun.sleep(50);
  const after = threads(s.pid);
  const rows = [...after].map(([tid, a]) => ({ tid, name: a.name, us: a.us - (before.get(tid)?.us ?? 0) }))
    .filter((r) => r.us > 0).sort((x, y) => y.us - x.us);
  console.log(JSON.stringify({ proto, n, firstMs: d.firstMs, lastMs: d.doneMs, delivered: d.delivered }));
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(16)} ${String(r.tid).padEnd(8)} ${(r.us / 1000).toFixed(0).padStart(6)} ms  ${
        (r.us / n).toFixed(2)
      } µs/msg`,
    );
  }
} finally {
  await lg.close();
  await s.stop();
}
