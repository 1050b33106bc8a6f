// Per-thread server CPU over one backlog drain (issue 14): fills one offline user's inbox through
// Iris, then reads every server thread's CPU (/proc/<pid>/task/*/schedstat) before and after that user
// logs in and drains. The writer and the shard are Worker threads; the heaviest Worker over a drain
// is the writer (SQLite). Also each thread's run-queue wait over the drain (/proc/.../schedstat):
// time it was runnable but had no core, on a machine where server, client and JIT threads share
// two. The load generator's threads are listed too (the client reads the drain on the same cores,
// and its CPU over the drain includes its IPC with this tool). Not a scenario: a tool.
// usage: bun bench/drain-threads.ts v0|v1|v1b MESSAGES [BINARY] [WARM]   (v1b: v1 with bundles)

import { readdirSync, readFileSync } from "node:fs";
import { LoadGen } from "./lib/loadgen.ts";
import { drainBacklog, type DrainProto, fillBacklog } from "./lib/one-backlog.ts";
import { startIris } from "./lib/server.ts";

interface ThreadTimes {
  name: string;
  us: number; // CPU (user + system)
  waitUs: number; // runnable but not running: waiting for a core (schedstat's run delay)
  faults: number; // minor page faults (stat's minflt): fresh memory touched for the first time
}

function threads(pid: number): Map<string, ThreadTimes> {
  const out = new Map<string, ThreadTimes>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      // schedstat: ns on a core, ns runnable without one (finer than stat's 10 ms ticks)
      const [runNs, waitNs] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
      // stat: fields after the ")" that closes comm; minflt is the 10th field overall
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const faults = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
      out.set(tid, { name, us: runNs! / 1000, waitUs: waitNs! / 1000, faults });
    } catch { /* the thread ended */ }
  }
  return out;
}

const [proto = "v0", nArg = "50000", binary, warmArg = "0"] = process.argv.slice(2);
const lg = await LoadGen.spawn(1);
const s = await startIris({ binary, tcp: true, args: ["--max-inbox", String(Math.max(100_000, Number(nArg)))] });
try {
  // WARM > 0: another user's backlog of WARM messages is drained first, so the measured drain runs
  // on code the JIT already compiled (a server that has drained before), not on a fresh process.
  if (Number(warmArg) > 0) {
    const w = await fillBacklog(lg, s, "warm-user", Number(warmArg));
    await drainBacklog(lg, s, proto as DrainProto, "warm-user", w);
  }
  const n = await fillBacklog(lg, s, "thr-user", Number(nArg));
  await Bun.sleep(300);
  // The load generator shares the two cores: its threads are listed too ("client" before the name).
  const client = lg.pids()[0]!;
  const before = new Map([...threads(s.pid), ...threads(client)]);
  const d = await drainBacklog(lg, s, proto as DrainProto, "thr-user", n);
  await Bun.sleep(50);
  const clientAfter = threads(client);
  for (const a of clientAfter.values()) a.name = `client ${a.name}`;
  const after = new Map([...threads(s.pid), ...clientAfter]);
  const rows = [...after].map(([tid, a]) => ({
    tid,
    name: a.name,
    us: a.us - (before.get(tid)?.us ?? 0),
    waitUs: a.waitUs - (before.get(tid)?.waitUs ?? 0),
    faults: a.faults - (before.get(tid)?.faults ?? 0),
  })).filter((r) => r.us > 0).sort((x, y) => y.us - x.us);
  console.log(JSON.stringify({ proto, n, firstMs: d.firstMs, lastMs: d.doneMs, delivered: d.delivered }));
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(16)} ${String(r.tid).padEnd(8)} ${(r.us / 1000).toFixed(0).padStart(6)} ms  ${
        (r.us / n).toFixed(2)
      } µs/msg  waited for a core ${(r.waitUs / 1000).toFixed(1)} ms  ${r.faults} page faults`,
    );
  }
} finally {
  await lg.close();
  await s.stop();
}
