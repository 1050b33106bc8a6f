// SIGKILLs the whole server process on a schedule and starts it again on the same port and data
// dir. Clients keep their state and reconnect by themselves; only what the server committed (or
// the recipient acked) may be relied on, and that must all arrive.

import { threadRestarts } from "../lib/chaos-api.ts";
import type { ChaosServer } from "../lib/server.ts";
import { Every, type Fault } from "./fault.ts";

export class ServerCrasher implements Fault {
  readonly name = "server-crasher";
  kills = 0;
  /** Thread restarts counted by incarnations that were killed (their counters die with them). */
  threadRestartsBefore = 0;
  maxDownMs = 0;
  private readonly loop: Every;

  constructor(private readonly server: ChaosServer, everyMs: number, log: (m: string) => void = () => {}) {
    this.loop = new Every(everyMs, async () => {
      this.threadRestartsBefore += threadRestarts(await server.api.counters());
      const t0 = performance.now();
      await server.kill();
      this.kills++;
      await server.restart();
      const down = performance.now() - t0;
      this.maxDownMs = Math.max(this.maxDownMs, down);
      log(`server SIGKILLed and restarted in ${Math.round(down)} ms (pid ${server.pid})`);
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { server_kills: this.kills, max_down_ms: Math.round(this.maxDownMs) };
  }
}
