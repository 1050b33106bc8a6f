// Kills the storage writer on a schedule: appends in flight must be replayed by the owners and
// nothing acked as "stored" may vanish.

import type { ChaosServer } from "../lib/server.ts";
import { Every, type Fault } from "./fault.ts";

export class WriterSniper implements Fault {
  readonly name = "writer-sniper";
  kills = 0;
  private readonly loop: Every;

  constructor(server: ChaosServer, everyMs: number) {
    this.loop = new Every(everyMs, async () => {
      if (await server.api.killWriter()) this.kills++;
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { writer_kills: this.kills };
  }
}
