// Admission: whether a new connection may open. Upgrades reserve a slot before the socket opens,
// so a burst of upgrades cannot overshoot the cap between the decision and the open.

import type { SlotMetrics } from "../observe/metrics.ts";
import type { Signals } from "../observe/signals.ts";

export class Admission {
  /** Upgrades admitted whose socket has not opened yet. */
  private admitting = 0;

  constructor(
    private readonly signals: Signals,
    private readonly metrics: SlotMetrics,
    private readonly maxConnections: number,
  ) {}

  /** Reserves a connection slot, or says why not (the caller answers 503 or closes). */
  admit(): string | null {
    const why = this.refusal();
    if (why) {
      this.metrics.add("rejectedUpgrades");
      return why;
    }
    this.admitting++;
    return null;
  }

  private refusal(): string | null {
    if (!this.signals.ready()) return "server is not ready";
    if (this.signals.refusing()) return "server is under memory pressure";
    if (this.signals.connections() + this.admitting >= this.maxConnections) {
      return `server at capacity (${this.maxConnections} connections)`;
    }
    return null;
  }

  /** The reserved socket opened (it now counts as a connection) or the upgrade failed. */
  settle(): void {
    if (this.admitting > 0) this.admitting--;
  }
}
