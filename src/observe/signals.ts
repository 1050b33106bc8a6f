// Named readings of the shared metrics that other threads act on (readiness, memory pressure,
// the store backlog, connection count), so deciders never compare metric slots with bare numbers.

import { BACKLOG_ROW_OVERHEAD_BYTES } from "../limits.ts";
import { type MetricsReader, SLOT_MAIN, SLOT_WRITER } from "./metrics.ts";

/** Memory pressure levels published by the supervisor. */
export const Pressure = { NONE: 0, SPILL: 1, REFUSE: 2 } as const;
export type PressureLevel = (typeof Pressure)[keyof typeof Pressure];

/** Why the store takes no new message now: the disk is full, or the backlog is past its budget. */
export type StoreRefusal = "full" | "behind";

export class Signals {
  constructor(private readonly r: MetricsReader) {}

  /** Every thread is up and the server takes traffic. */
  ready(): boolean {
    return this.r.at(SLOT_MAIN, "ready") === 1;
  }
  pressure(): PressureLevel {
    return this.r.at(SLOT_MAIN, "memPressure") as PressureLevel;
  }
  /** Above the spill watermark: hold nothing for slow or absent users in RAM. */
  spilling(): boolean {
    return this.pressure() >= Pressure.SPILL;
  }
  /** Above the refuse watermark: refuse new connections and sends. */
  refusing(): boolean {
    return this.pressure() >= Pressure.REFUSE;
  }
  /** Cluster mode: why this node cannot keep sends now (cut off from NATS); a single node never is. */
  cutOff(): string | null {
    return null;
  }
  /** Bytes accepted by owners and not yet committed by the writer, over all shards. */
  storeBacklogBytes(): number {
    return this.r.sum("storeBacklogBytes");
  }
  /** Messages accepted by owners and not yet committed, over all shards. */
  storeBacklogRows(): number {
    return this.r.sum("storeBacklogRows");
  }
  /**
   * The store backlog weighed as memory is past `budgetMb` (--store-backlog-mb): each waiting
   * message counts what it was measured to hold in RAM (BACKLOG_ROW_OVERHEAD_BYTES) beyond its body.
   */
  storeBehind(budgetMb: number): boolean {
    return this.storeBacklogBytes() + this.storeBacklogRows() * BACKLOG_ROW_OVERHEAD_BYTES > budgetMb * 1048576;
  }
  /** Why the store takes no new message now (full before behind), or null. */
  storeRefusal(budgetMb: number): StoreRefusal | null {
    if (this.storeFull()) return "full";
    return this.storeBehind(budgetMb) ? "behind" : null;
  }
  /** The disk is below its reserve (statfs) or the writer backs off after a failed commit. */
  storeFull(): boolean {
    return this.r.at(SLOT_MAIN, "storeFull") >= 1 || this.r.at(SLOT_WRITER, "storeFailing") >= 1;
  }
  connections(): number {
    return this.r.sum("conns");
  }
}
