// Corruption: garbage values of mixed types posted into the shards' and the storage writer's
// inter-thread ports. The server must count and drop them: no thread dies, no message is lost.

import type { ChaosServer } from "../lib/server.ts";
import { Every, type Fault } from "./fault.ts";

export interface CorruptionOptions {
  shards: number;
  everyMs?: number;
  /** Garbage values per shard injection. */
  shardCount?: number;
  /** Garbage values per writer injection (0 = leave the writer alone). */
  writerCount?: number;
}

export class Corruption implements Fault {
  readonly name = "corruption";
  injected = 0;
  private readonly loop: Every;

  constructor(server: ChaosServer, o: CorruptionOptions) {
    const shardCount = o.shardCount ?? 500;
    const writerCount = o.writerCount ?? 200;
    this.loop = new Every(o.everyMs ?? 100, async (k) => {
      // Seeds differ per tick so every injection is a different mix, yet a run is reproducible.
      if (await server.api.shardGarbage(k % o.shards, shardCount, k + 1)) this.injected += shardCount;
      if (writerCount > 0 && await server.api.writerGarbage(writerCount, 100_000 + k)) this.injected += writerCount;
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { garbage_injected: this.injected };
  }
}
