// The Sniper: every `everyMs` one router shard dies, alternating shards. Every fourth hit makes the
// shard throw instead of being terminated, so both ways a worker can die are exercised.

import type { ChaosServer } from "../lib/server.ts";
import { Every, type Fault } from "./fault.ts";

export class ShardSniper implements Fault {
  readonly name = "sniper";
  kills = 0;
  missed = 0;
  private readonly loop: Every;

  constructor(server: ChaosServer, shards: number, everyMs = 2000) {
    this.loop = new Every(everyMs, async (k) => {
      const i = k % shards;
      // server.api is re-read each time: after a whole-server restart it points at the new process.
      const ok = k % 4 === 3 ? await server.api.crashShard(i) : await server.api.killShard(i);
      if (ok) this.kills++;
      else this.missed++;
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { shard_kills: this.kills };
  }
}
