// The two socket kinds a session writes to, behind one interface: a Bun WebSocket, and a raw TCP
// socket for seed (v0) clients, which has no message framing or send queue of its own.
//
// The interface is the shape of Bun's `ServerWebSocket`, so a WebSocket is its session's transport
// as it is, and its data is the session: no third object per socket (32 bytes of an idle
// connection's heap, issue 14), and no extra call on each send.

import type { Socket } from "bun";
import type { Session } from "./session.ts";

/** What a session needs from its socket, whether WebSocket or raw TCP. */
export interface Transport {
  /** >0 bytes written, -1 queued under backpressure, 0 dropped (connection unusable). */
  send(data: string | Uint8Array): number;
  getBufferedAmount(): number;
  close(code: number, reason: string): void;
  /** Stop reading: the peer's writes block once the kernel buffers fill (v0 back-pressure). */
  pause(): void;
  resume(): void;
  /**
   * Runs `writes` (which call send) so the socket sees one write for all of them (a backlog page:
   * one syscall instead of one per delivery; a WebSocket keeps each frame its own message).
   * Returns `false` exactly when that write was dropped (see corkedOk); a WebSocket returns what
   * `writes` did, nothing, and reports a drop through each send. Optional: a transport without it
   * gets one send per frame.
   */
  cork?(writes: () => void): unknown;
}

/** Whether a cork's one write went out (or was queued): anything but `false` (see Transport.cork). */
export const corkedOk = (r: unknown): boolean => r !== false;

const encoder = new TextEncoder();

/**
 * TCP: keep what the kernel did not take, and write it on the next drain. What is kept is a copy:
 * a caller may fill the buffer it sent again as soon as send() returns (the owner's pages from
 * memory are built in one kept buffer, router/hot-backlog.ts), as Bun's WebSocket send allows.
 */
export class TcpTransport<T> implements Transport {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private closed = false;
  /** While corked: the frames to write as one buffer (TCP is a byte stream, so joining is exact). */
  private corked: Uint8Array[] | null = null;
  private corkedBytes = 0;
  /** The socket's session (the socket's data is this transport: one object per socket). */
  s: Session | null = null;
  constructor(private readonly sock: Socket<T>) {}

  send(d: string | Uint8Array): number {
    if (this.closed) return 0;
    const b = typeof d === "string" ? encoder.encode(d) : d;
    if (this.corked) {
      this.corked.push(b);
      this.corkedBytes += b.byteLength;
      return b.byteLength;
    }
    if (this.queued > 0) {
      this.queue.push(b.slice());
      this.queued += b.byteLength;
      return -1;
    }
    const n = this.sock.write(b);
    if (n < 0) return 0;
    if (n < b.byteLength) {
      this.queue.push(b.slice(n));
      this.queued += b.byteLength - n;
      return -1;
    }
    return n;
  }

  cork(writes: () => void): boolean {
    if (this.closed) return false;
    const parts: Uint8Array[] = (this.corked = []);
    this.corkedBytes = 0;
    try {
      writes();
    } finally {
      this.corked = null;
    }
    return parts.length === 0 || this.send(joinParts(parts, this.corkedBytes)) !== 0;
  }

  /** The socket drained: write what is queued, as far as the kernel takes it. */
  flush(): void {
    while (this.queue.length) {
      const b = this.queue[0]!;
      const n = this.sock.write(b);
      if (n <= 0) return;
      this.queued -= n;
      if (n < b.byteLength) {
        this.queue[0] = b.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }

  getBufferedAmount(): number {
    return this.queued;
  }

  close(_code: number, _reason: string): void {
    this.closed = true;
    this.sock.end();
  }

  pause(): void {
    this.sock.pause();
  }

  resume(): void {
    if (!this.closed) this.sock.resume();
  }
}

/** One buffer holding `parts` back to back (no copy for a single part). */
function joinParts(parts: Uint8Array[], bytes: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
