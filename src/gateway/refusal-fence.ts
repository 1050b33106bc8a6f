// Per-sender order across a refusal, the server's half (docs/PROTOCOL.md, "Order after a
// refusal"). A v1 client pipelines its sends: when the server refuses m1 (SERVER_BUSY,
// RATE_LIMITED, STORE_FULL: retry later), m2 and m3 to the same recipient may already be on the
// wire, and if the cause cleared in between (a token came back, the store caught up) they would
// be accepted ahead of m1. So a refusal fences its recipient on that connection: later sends to it
// are refused with the same code until the refused id comes back (the SDK retries the oldest
// refused send alone, then the rest in order: client/order-lanes.ts). A client that gives up on
// the refused send is not blocked for long: the fence lifts after FENCE_MS, which only has to
// cover the sends already on the wire when the client read the refusal.

/** How long a fence holds at most: the sends a client wrote before it read the refusal. */
export const FENCE_MS = 1000;

/** The refusal codes a client retries (same id): these fence; final errors do not. */
export const RETRYABLE_REFUSALS: ReadonlySet<string> = new Set(["SERVER_BUSY", "RATE_LIMITED", "STORE_FULL"]);

interface Fence {
  /** The refused send whose retry lifts the fence. */
  id: string;
  code: string;
  until: number;
}

/** One connection's fenced recipients (created at its first retryable refusal). */
export class RefusalFence {
  private readonly fenced = new Map<string, Fence>();

  /** The code to refuse a send to `to` with, or null when it may go on (a retry of the refused id lifts the fence). */
  check(to: string, id: string, now: number): string | null {
    const f = this.fenced.get(to);
    if (!f) return null;
    if (f.id === id || now >= f.until) {
      this.fenced.delete(to);
      return null;
    }
    return f.code;
  }

  /** A send to `to` was refused with a retryable code: fence `to` unless an older refusal already does. */
  refused(to: string, id: string, code: string, now: number): void {
    if (!this.fenced.has(to)) this.fenced.set(to, { id, code, until: now + FENCE_MS });
  }

  /** Forgets the fences that lapsed (keys never checked again: a connection that stopped sending). */
  expire(now: number): void {
    for (const [to, f] of this.fenced) if (now >= f.until) this.fenced.delete(to);
  }

  get size(): number {
    return this.fenced.size;
  }
}
