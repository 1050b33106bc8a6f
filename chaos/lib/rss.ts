// Samples a process's resident set from /proc/<pid>/status (VmRSS) every 250 ms and keeps the
// maximum. The pid is asked for on every tick so a restarted server keeps being measured.

import { readFileSync } from "node:fs";

/** VmRSS of a live process in bytes, or null (gone, or not Linux). */
export function readRss(pid: number): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export class RssSampler {
  maxBytes = 0;
  lastBytes = 0;
  samples = 0;
  /** Maximum per named phase (see phase()), so a report can say *when* memory peaked. */
  readonly phaseMaxBytes = new Map<string, number>();
  private phaseName = "start";
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly pid: () => number | null, private readonly everyMs = 250) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  sample(): void {
    const pid = this.pid();
    if (pid === null) return;
    const rss = readRss(pid);
    if (rss === null) return;
    this.samples++;
    this.lastBytes = rss;
    if (rss > this.maxBytes) this.maxBytes = rss;
    if (rss > (this.phaseMaxBytes.get(this.phaseName) ?? 0)) this.phaseMaxBytes.set(this.phaseName, rss);
  }

  /** Starts a new phase (e.g. "flood", "settle"); later samples count toward it. */
  phase(name: string): void {
    this.sample();
    this.phaseName = name;
  }

  phaseMaxMb(name: string): number {
    return Math.round((this.phaseMaxBytes.get(name) ?? 0) / 1048576);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get maxMb(): number {
    return Math.round(this.maxBytes / 1048576);
  }
}
