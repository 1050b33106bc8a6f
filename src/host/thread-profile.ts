// Samples this thread's JS stacks for a while with JavaScriptCore's sampling profiler (bun:jsc)
// and writes a summary (observe/profile-summary.ts) to a file. SIGUSR2 asks every worker for one
// (docs/OPERATIONS.md, "Profiling a running server"): the compiled binary keeps its function names,
// and `bun --cpu-prof` does not follow Workers, so this is how a shard or the writer is profiled.

import { profile } from "bun:jsc";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProfileControl } from "../control.ts";
import { describeError } from "../observe/errors.ts";
import { log } from "../observe/log.ts";
import { formatProfile, type SampledFrame, summarizeStacks } from "../observe/profile-summary.ts";

/** Microseconds between samples: fine enough for a few seconds' run, cheap enough under load. */
export const PROFILE_INTERVAL_US = 500;
/** Functions listed in each of the report's two lists. */
export const PROFILE_TOP = 40;

let running = false;

/**
 * Samples for `ms` and writes `<dir>/<UTC stamp>-<thread>.txt`; returns its path, or null when a
 * profile of this thread is already running (a second signal does not start another).
 */
export async function profileThread(thread: string, ms: number, dir: string): Promise<string | null> {
  if (running) return null;
  running = true;
  try {
    const p = await profile(() => Bun.sleep(ms), PROFILE_INTERVAL_US);
    const stacks: SampledFrame[][] = p.stackTraces.traces.map((t) =>
      t.frames.map((f) => ({ name: f.name, url: f.sourceURL ?? "" }))
    );
    const text = formatProfile(summarizeStacks(thread, ms, stacks, PROFILE_TOP));
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const file = join(dir, `${stamp}-${thread.replace(/[^a-z0-9-]+/gi, "-")}.txt`);
    writeFileSync(file, text);
    return file;
  } finally {
    running = false;
  }
}

/** A worker's answer to the supervisor's "profile": sample, write, and log where (never throws). */
export function profileAndLog(thread: string, m: ProfileControl): void {
  profileThread(thread, m.ms, m.dir).then(
    (file) => {
      if (file) log.info("profile written", { thread, file });
      else log.warn("a profile of this thread is already running; this request is ignored", { thread });
    },
    (e) => log.error("profiling failed", { thread, error: describeError(e) }),
  );
}
