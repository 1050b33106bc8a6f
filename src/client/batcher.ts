// Client side of v1 bundles (protocol/v1-bundle.ts): the frames an application writes in one
// event-loop turn (sends, the coalesced ack) leave as one WebSocket message, a client BUNDLE, no
// bigger than the largest frame the server said it reads.

import { bundleOf } from "../protocol/v1-bundle.ts";

export class FrameBatcher {
  private frames: Uint8Array[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly write: (message: Uint8Array) => void,
    private readonly op: number,
    /** The server's largest readable frame (LOGIN_OK); a bundle adds one opcode byte. */
    private readonly maxFrame: number,
  ) {}

  /** Queues a complete frame; the turn's frames are written together in a microtask. */
  push(frame: Uint8Array): void {
    if (this.frames.length > 0 && 1 + this.bytes + frame.byteLength > this.maxFrame) this.flush();
    this.frames.push(frame);
    this.bytes += frame.byteLength;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Writes what is queued now (one frame as itself, several as a bundle). */
  flush(): void {
    this.scheduled = false;
    if (this.frames.length === 0) return;
    const frames = this.frames;
    const bytes = this.bytes;
    this.frames = [];
    this.bytes = 0;
    this.write(bundleOf(frames, bytes, this.op));
  }
}
