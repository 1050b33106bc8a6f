// Process CPU time and memory from Linux /proc. The parsers are pure; the readers are thin.
// /proc/<pid>/stat of a thread-group leader sums every thread, so Iris's router and storage
// Worker threads are included in its CPU figure.

import { readdirSync, readFileSync } from "node:fs";

export interface ProcStat {
  ppid: number;
  utimeTicks: number;
  stimeTicks: number;
  threads: number;
}

/** Parses /proc/<pid>/stat. The command name may contain spaces and ')' so split after the last ')'. */
export function parseStat(text: string): ProcStat {
  const close = text.lastIndexOf(")");
  if (close < 0) throw new Error("not a /proc/<pid>/stat line");
  const f = text.slice(close + 2).trim().split(/\s+/);
  // f[0] is field 3 (state); utime is field 14, stime 15, num_threads 20 (1-based, man proc).
  const n = (i: number) => {
    const v = Number(f[i]);
    if (!Number.isFinite(v)) throw new Error(`bad /proc stat field ${i + 3}`);
    return v;
  };
  return { ppid: n(1), utimeTicks: n(11), stimeTicks: n(12), threads: n(17) };
}

export interface ProcStatus {
  vmRssKb: number;
  vmHwmKb: number;
  threads: number;
}

/** Parses /proc/<pid>/status (VmRSS, VmHWM in kB; Threads). */
export function parseStatus(text: string): ProcStatus {
  const get = (key: string) => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+)`, "m"));
    return m ? Number(m[1]) : 0;
  };
  return { vmRssKb: get("VmRSS"), vmHwmKb: get("VmHWM"), threads: get("Threads") };
}

let ticks: number | null = null;

/** Clock ticks per second for utime/stime (`getconf CLK_TCK`, normally 100). */
export function clockTicks(): number {
  if (ticks !== null) return ticks;
  try {
    const r = Bun.spawnSync(["getconf", "CLK_TCK"]);
    const v = Number(r.stdout.toString().trim());
    ticks = Number.isFinite(v) && v > 0 ? v : 100;
  } catch {
    ticks = 100;
  }
  return ticks;
}

/** Total CPU time (user + system) of a process in microseconds. */
export function cpuMicros(pid: number): number {
  const s = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  return ((s.utimeTicks + s.stimeTicks) * 1e6) / clockTicks();
}

export function status(pid: number): ProcStatus {
  return parseStatus(readFileSync(`/proc/${pid}/status`, "utf8"));
}

/** CPU of several processes (e.g. the load-generator workers), summed; gone processes count 0. */
export function cpuMicrosOf(pids: number[]): number {
  let sum = 0;
  for (const p of pids) {
    try {
      sum += cpuMicros(p);
    } catch {
      // exited
    }
  }
  return sum;
}

/**
 * CPU ticks of every other user-space process on the machine (kernel threads, children of pid 2,
 * are left out), by pid. A benchmark shares its cores with whatever else runs; the difference of
 * two snapshots says how disturbed a measurement was.
 */
export function snapshotOthers(exclude: Set<number>, excludeTreeOf?: number): Map<number, number> {
  const ticks = new Map<number, number>();
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (exclude.has(pid) || pid === 2) continue;
    try {
      const s = parseStat(readFileSync(`/proc/${d}/stat`, "utf8"));
      if (s.ppid === 2) continue;
      ticks.set(pid, s.utimeTicks + s.stimeTicks);
      parent.set(pid, s.ppid);
    } catch {
      // exited meanwhile
    }
  }
  if (excludeTreeOf !== undefined) {
    // Drop the given process and everything it started (servers, load generators, their children).
    for (const pid of [...ticks.keys()]) {
      for (let p: number | undefined = pid, hops = 0; p !== undefined && hops < 64; p = parent.get(p), hops++) {
        if (p === excludeTreeOf) {
          ticks.delete(pid);
          break;
        }
      }
    }
  }
  return ticks;
}

/**
 * CPU (µs) other processes used between two snapshots. A process that started in between counts
 * from zero; one that exited in between is missed, so this is a lower bound. Pure.
 */
export function othersDeltaMicros(before: Map<number, number>, after: Map<number, number>, clkTck: number): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += Math.max(0, t - (before.get(pid) ?? 0));
  return (ticks * 1e6) / clkTck;
}
