// Oversized frames: a raw client logs in and sends a frame whose header promises far more than
// --max-payload (and then streams part of it), or a complete frame just over the limit. The
// server must refuse them from the header (close) without buffering the body.

import { OP_BINARY, OP_TEXT, RawWs } from "../lib/raw-ws.ts";
import type { ChaosServer } from "../lib/server.ts";
import { Every, type Fault } from "./fault.ts";

// How long the server has to close a connection after an oversized frame. Under memory pressure on a
// loaded 2-core machine the server reads late (CI of dc9aacf: one close missed 5 s at load ~14), and
// reading late is back-pressure, not a fault; a server that never closes still fails after this.
const CLOSE_WAIT_MS = 15_000;

export class HugeFrames implements Fault {
  readonly name = "huge-frames";
  sent = 0;
  closed = 0;
  notClosed = 0;
  private readonly loop: Every;

  constructor(server: ChaosServer, o: { everyMs: number; maxPayload: number }) {
    this.loop = new Every(o.everyMs, async (k) => {
      const ws = new RawWs({ port: server.port, timeoutMs: 5000 });
      try {
        await ws.open();
        await ws.login(`huge${k}`);
        if (k % 2 === 0) {
          // Promise 1 GiB, deliver 1 MiB of it: only the header should matter.
          const chunk = new Uint8Array(1 << 20);
          ws.send(OP_BINARY, chunk, 1 << 30);
        } else {
          // A whole, honest frame one mebibyte over the limit (JSON text, so it is well formed).
          const body = "x".repeat(o.maxPayload + (1 << 20));
          ws.send(OP_TEXT, new TextEncoder().encode(JSON.stringify({ type: "send", id: `h${k}`, to: "x", body })));
        }
        this.sent++;
        if (await ws.waitClosed(CLOSE_WAIT_MS)) this.closed++;
        else this.notClosed++;
      } catch {
        // Refused at upgrade time (e.g. 503 under memory pressure) is a fine answer too.
      } finally {
        ws.terminate();
      }
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  report(): Record<string, number> {
    return { huge_frames: this.sent, huge_frames_not_closed: this.notClosed };
  }
}
