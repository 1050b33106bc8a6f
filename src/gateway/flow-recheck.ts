// Re-checks flows that wait for their socket to drain (issue 14). Bun's drain event is not a
// reliable signal: when a client's message arrives, the socket is corked for its handler and the
// uncork after it writes out what was buffered, and no drain event follows. Seen on a real socket
// (notes/hot-stall.md): a page left 485 KB buffered (sends had returned -1), the next client ack
// found 0 bytes buffered, and no drain event came at all. A flow that waited for one stalled for
// good. So a waiting flow also polls the buffer, soon at first and then with a growing delay.

import { FLOW_RECHECK_FIRST_MS, FLOW_RECHECK_MAX_MS } from "../limits.ts";

/** One timer per waiting item; `check` re-evaluates it and says whether it still waits. */
export class FlowRecheck<S> {
  private readonly pending = new Map<S, ReturnType<typeof setTimeout>>();

  constructor(private readonly check: (s: S) => boolean) {}

  /** `s` began waiting for a drain: check it soon (a wait already armed keeps its schedule). */
  arm(s: S): void {
    if (!this.pending.has(s)) this.schedule(s, FLOW_RECHECK_FIRST_MS);
  }

  /** `s` stopped waiting (cleared or closed). */
  disarm(s: S): void {
    const timer = this.pending.get(s);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.pending.delete(s);
  }

  /** How many items wait (tests, metrics). */
  get size(): number {
    return this.pending.size;
  }

  private schedule(s: S, delay: number): void {
    const timer = setTimeout(() => {
      this.pending.delete(s);
      if (this.check(s)) this.schedule(s, Math.min(delay * 2, FLOW_RECHECK_MAX_MS));
    }, delay);
    // A waiting flow must not keep a shard thread alive on its own.
    (timer as { unref?: () => void }).unref?.();
    this.pending.set(s, timer);
  }
}
