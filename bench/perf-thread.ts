// Profiles one thread of a running Iris with `perf`, its JavaScript named from JITDump files
// (bench/lib/perf-profile.ts says why: every cycle of the thread, not only JS samples). Start the
// server with BUN_JSC_useJITDump=1 BUN_JSC_jitDumpDirectory=DIR (the compiled binary reads both),
// put it under load, then:
//   bun bench/perf-thread.ts PID DIR [SECONDS=3] [TID]
// TID defaults to the thread with the most CPU over the next half second (the shard, under load).
// Needs `perf` (Debian linux-perf) and root. Not a scenario: a tool. Run it under the bench lock.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatThreadProfile,
  type JitCode,
  JitNames,
  parseJitDump,
  parsePerfScript,
  summarizeSamples,
} from "./lib/perf-profile.ts";
import { parseStat } from "./lib/procstat.ts";

const [pidArg, dir, secArg = "3", tidArg] = process.argv.slice(2);
if (!pidArg || !dir) {
  console.error("usage: bun bench/perf-thread.ts PID JITDUMP_DIR [SECONDS=3] [TID]");
  process.exit(2);
}
const pid = Number(pidArg);
const seconds = Number(secArg);

/** CPU ticks of each thread of `pid`. */
function threadTicks(): Map<number, { ticks: number; name: string }> {
  const out = new Map<number, { ticks: number; name: string }>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = parseStat(readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8"));
      out.set(Number(t), {
        ticks: s.utimeTicks + s.stimeTicks,
        name: readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim(),
      });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function busiestThread(): Promise<number> {
  const a = threadTicks();
  await Bun.sleep(500);
  const b = threadTicks();
  let best = pid;
  let most = -1;
  for (const [tid, v] of b) {
    const d = v.ticks - (a.get(tid)?.ticks ?? v.ticks);
    if (d > most) [best, most] = [tid, d];
  }
  return best;
}

const tid = tidArg ? Number(tidArg) : await busiestThread();
const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
const work = mkdtempSync(join(tmpdir(), "iris-perf-"));
try {
  const data = join(work, "perf.data");
  const rec = Bun.spawnSync(
    ["perf", "record", "-k", "1", "-g", "-F", "4000", "-t", String(tid), "-o", data, "--", "sleep", String(seconds)],
    { stdout: "ignore", stderr: "pipe" },
  );
  if (rec.exitCode !== 0) throw new Error(`perf record failed: ${rec.stderr.toString().trim()}`);
  const script = Bun.spawnSync(["perf", "script", "-F", "time,ip,sym,dso", "-i", data], {
    stdout: "pipe",
    stderr: "ignore",
  });
  // Every JITDump file of this process (one per JIT thread), read after the samples: loads made
  // during the recording are in them, and timestamps pick the right one for each sample.
  const codes: JitCode[] = [];
  for (const f of readdirSync(dir)) {
    if (f.startsWith("jit-") && f.endsWith(`-${pid}.dump`) || f === `jit-${pid}.dump`) {
      codes.push(...parseJitDump(readFileSync(join(dir, f))));
    }
  }
  if (codes.length === 0) console.error(`no JITDump files of pid ${pid} in ${dir}: JS shows as runtime native`);
  const samples = parsePerfScript(script.stdout.toString(), new JitNames(codes));
  process.stdout.write(
    formatThreadProfile(`thread ${tid} (${name}) of ${pid}, ${seconds} s`, summarizeSamples(samples)),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
