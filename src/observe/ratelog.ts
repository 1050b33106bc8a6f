// A warning that can be triggered by clients at any rate (one per refused message, say) is logged
// at most once per interval per kind; the next line says how many were left out in between.

import { log } from "./log.ts";

export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; skipped: number }>();

  constructor(private readonly everyMs: number, private readonly now: () => number = () => performance.now()) {}

  /** Logs `msg` under `kind` unless one was logged within the interval; returns whether it did. */
  warn(kind: string, msg: string, fields: Record<string, unknown>): boolean {
    const t = this.now();
    const seen = this.last.get(kind);
    if (seen && t - seen.at < this.everyMs) {
      seen.skipped++;
      return false;
    }
    log.warn(msg, { ...fields, ...(seen?.skipped ? { suppressed: seen.skipped } : {}) });
    this.last.set(kind, { at: t, skipped: 0 });
    return true;
  }
}
