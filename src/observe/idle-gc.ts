// Collects a worker's garbage once a burst of work is over (issue 14). JSC collects as it
// allocates, so a thread that goes quiet right after a burst (10,000 logins, a drained backlog)
// keeps that burst's garbage, and the process keeps its pages, until it allocates again: in the
// login probe that was over half of a logged-in connection's RSS. One full collection when the
// heap grew by a burst and then stopped growing gives those pages back; under steady load the
// heap keeps growing between looks, so this stays out of the way and JSC's own collector runs.
// A thread that is then still (idle: its heap grows by less than IDLE_SHRINK_STILL_BYTES a look)
// also shrinks (`Bun.shrink()`: JSC drops its compiled code, collects, and hands the allocators'
// free pages back to the kernel). The collection alone left them resident: after 10,000 logins,
// ~0.4 KB a connection. The price is recompiling the hot functions when traffic comes back, so it
// waits for a still look after the collection: a pause of a few hundred ms (a bench between its
// fill and its drain) never shrinks.

import { heapSize } from "bun:jsc";
import {
  IDLE_GC_BURST_BYTES,
  IDLE_GC_EVERY_MS,
  IDLE_GC_QUIET_BYTES,
  IDLE_SHRINK_STILL_BYTES,
  IDLE_SHRINK_STILL_LOOKS,
} from "../limits.ts";

export interface IdleGcPolicy {
  burstBytes: number;
  quietBytes: number;
  /** Still looks after a collection before the shrink is due (see shrinkDue); 0: never shrink. */
  shrinkStillLooks?: number;
  /** Growth within one look below which the thread counts as still (idle, not just quieter). */
  stillBytes?: number;
}

/** The decision, pure: fed the heap size at each look, says when to collect. */
export class IdleCollector {
  /** Lowest heap size since the last collection: what the heap held before the burst. */
  private floor: number;
  private last: number;
  /** Still looks in a row since the last collection; -1 when no shrink is owed. */
  private stillLooks = -1;
  /** The thread dropped a burst's worth of objects it held (see owe): collect at the next quiet look. */
  private owed = false;

  constructor(heapBytes: number, private readonly p: IdleGcPolicy) {
    this.floor = heapBytes;
    this.last = heapBytes;
  }

  /** One look: true when the heap grew by a burst since the floor and not by much since the last look. */
  look(heapBytes: number): boolean {
    const sinceLast = heapBytes - this.last;
    this.last = heapBytes;
    if (heapBytes < this.floor) this.floor = heapBytes; // JSC collected on its own
    // Quiet: grew a little. A shrink means JSC collected since the last look, which a thread only
    // does while it allocates: busy, not quiet (else steady load would get a full collection
    // after each of JSC's young-generation ones).
    const quiet = sinceLast >= 0 && sinceLast < this.p.quietBytes;
    const still = sinceLast >= 0 && sinceLast < (this.p.stillBytes ?? 0);
    if (this.stillLooks >= 0) this.stillLooks = still ? this.stillLooks + 1 : 0;
    return quiet && (this.owed || heapBytes - this.floor >= this.p.burstBytes);
  }

  /**
   * The thread let go of at least a burst of memory it held for a long time (an owner's sweep of
   * idle users): garbage the heap size does not show until a collection, which an idle thread
   * never runs by itself. The next quiet look collects (and a still one after it shrinks).
   */
  owe(): void {
    this.owed = true;
  }

  /**
   * True once, when the thread stayed still for `shrinkStillLooks` looks after a collection: idle,
   * not just between bursts or under light traffic (which grows the heap by more than stillBytes
   * a look), so giving the free pages back is worth recompiling the hot code later.
   */
  shrinkDue(): boolean {
    const need = this.p.shrinkStillLooks ?? 0;
    if (need <= 0 || this.stillLooks < need) return false;
    this.stillLooks = -1;
    return true;
  }

  /** After a collection: the heap it left is the new floor. */
  collected(heapBytes: number): void {
    this.floor = heapBytes;
    this.last = heapBytes;
    this.stillLooks = 0;
    this.owed = false;
  }
}

/** `Bun.shrink()` is in Bun 1.4.5 but not in its type declarations; a full collection without it. */
function shrink(): void {
  const b = Bun as unknown as { shrink?: () => void };
  if (b.shrink) b.shrink();
  else Bun.gc(true);
}

/**
 * Whether a thread worked since the last look, from a counter of its work. While it works the
 * look is skipped: `heapSize()` costs 0.3–0.8 ms on a shard's heap, and a look that happened to
 * fall between two similar heap sizes under load ran a full collection (13 ms and more) in the
 * middle of traffic (issue 14, seen in a paced run's profile).
 */
export class WorkGate {
  private last = NaN;
  /** True if `count` moved since the last call (the first call counts as moved). */
  moved(count: number): boolean {
    const m = count !== this.last;
    this.last = count;
    return m;
  }
}

/** The look timer's handle: `owe` is IdleCollector.owe. */
export interface IdleCollection {
  owe(): void;
}

/**
 * Starts the look timer on this thread (a Worker's); it never keeps the thread alive. `work`, if
 * given, counts the thread's work (e.g. messages routed): no look while it moves.
 */
export function startIdleCollection(work?: () => number): IdleCollection {
  const c = new IdleCollector(heapSize(), {
    burstBytes: IDLE_GC_BURST_BYTES,
    quietBytes: IDLE_GC_QUIET_BYTES,
    shrinkStillLooks: IDLE_SHRINK_STILL_LOOKS,
    stillBytes: IDLE_SHRINK_STILL_BYTES,
  });
  const gate = new WorkGate();
  const t = setInterval(() => {
    if (work && gate.moved(work())) return;
    const collect = c.look(heapSize());
    if (!collect && c.shrinkDue()) return shrink();
    if (!collect) return;
    Bun.gc(true);
    c.collected(heapSize());
  }, IDLE_GC_EVERY_MS);
  t.unref?.();
  return { owe: () => c.owe() };
}
