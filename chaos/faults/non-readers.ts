// Consumers that log in and then never read: raw sockets paused right after login_ok, so unread
// deliveries pile up in the kernel and then in the server's send buffer, exactly like a client
// that is stuck or on a dead link. They never ack, and they never notice being disconnected.

import { RawWs } from "../lib/raw-ws.ts";
import type { ChaosServer } from "../lib/server.ts";
import type { Fault } from "./fault.ts";

export class NonReaders implements Fault {
  readonly name = "non-readers";
  private sockets: RawWs[] = [];
  opened = 0;
  failed = 0;

  constructor(private readonly server: ChaosServer, private readonly users: readonly string[]) {}

  /** Nothing happens on a timer: the fault is the stalled sockets themselves (see open()). */
  start(): void {}

  /** Logs every user in over a raw socket and stops reading; resolves once all are in. */
  async open(): Promise<void> {
    const batch = 100;
    for (let i = 0; i < this.users.length; i += batch) {
      await Promise.all(
        this.users.slice(i, i + batch).map(async (user) => {
          const ws = new RawWs({ port: this.server.port });
          try {
            await ws.open();
            await ws.login(user);
            ws.pause();
            this.sockets.push(ws);
            this.opened++;
          } catch {
            ws.terminate();
            this.failed++;
          }
        }),
      );
    }
  }

  /** Ends every stalled socket (abortively: a stuck client does not say goodbye). */
  stop(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.sockets = [];
    return Promise.resolve();
  }

  report(): Record<string, number> {
    return {
      non_readers: this.opened,
      non_reader_login_failures: this.failed,
    };
  }
}
