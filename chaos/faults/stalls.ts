// The Staller: at random moments one random router shard's event loop blocks for a random while,
// as a thread starved of CPU on a loaded machine does (the single-node losses seen only at load
// 17-36). Timers, socket events and port messages of that shard all run late, and in a burst,
// while the other shard goes on: the orderings a quiet machine almost never produces.

import type { ChaosServer } from "../lib/server.ts";
import { Every, type Fault } from "./fault.ts";

export interface StallOptions {
  shards: number;
  /** Mean time between stalls (each wait is drawn from 0.5-1.5 times this). */
  everyMs: number;
  /** Longest stall; each is drawn from 50 ms up to this. */
  maxMs: number;
  /** The draw (a seeded one makes a run replayable as far as timing allows). */
  rand?: () => number;
}

/** The `--stalls` option: off by default; `--stalls 1` turns it on (`--stall-every-ms`, `--stall-max-ms`). */
export function stallsWanted(extra: Map<string, string>): boolean {
  const v = extra.get("stalls");
  return v !== undefined && v !== "0";
}

export class ShardStaller implements Fault {
  readonly name = "stalls";
  stalls = 0;
  stalledMs = 0;
  private readonly loop: Every;
  private readonly rand: () => number;

  constructor(server: ChaosServer, private readonly o: StallOptions) {
    this.rand = o.rand ?? Math.random;
    // Every waits a fixed step; the random part of the gap is slept inside the step.
    this.loop = new Every(o.everyMs / 2, async () => {
      await Bun.sleep(this.rand() * o.everyMs);
      const shard = Math.floor(this.rand() * o.shards);
      const ms = 50 + Math.floor(this.rand() * Math.max(0, o.maxMs - 50));
      // server.api is re-read each time: after a whole-server restart it points at the new process.
      if (await server.api.stallShard(shard, ms)) (this.stalls++, (this.stalledMs += ms));
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { stalls: this.stalls, stalled_ms: this.stalledMs };
  }
}
