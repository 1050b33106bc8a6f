// The Monkey: drops random client connections (a network cut as the SDK sees it: the socket goes,
// the client reconnects and resumes, and resends whatever was not acked).

import type { IrisClient } from "../../src/client/index.ts";
import { Every, type Fault } from "./fault.ts";

export class Monkey implements Fault {
  readonly name = "monkey";
  drops = 0;
  private readonly loop: Every;

  /** `clients` is read on every tick, so clients added later are fair game too. */
  constructor(clients: () => readonly IrisClient[], perSecond = 10) {
    this.loop = new Every(1000 / perSecond, () => {
      const online = clients().filter((c) => c.state === "online");
      const victim = online[Math.floor(Math.random() * online.length)];
      if (!victim) return;
      victim.dropConnection();
      this.drops++;
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { connection_drops: this.drops };
  }
}
