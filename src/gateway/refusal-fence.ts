// Per-sender order across a refusal, the server's half (docs/PROTOCOL.md, "Order after a
// refusal"). A v1 client pipelines its sends: when the server refuses m1 (SERVER_BUSY,
// RATE_LIMITED, STORE_FULL: retry later), m2 and m3 to the same recipient may already be on the
// wire, and if the cause cleared in between (a token came back, the store caught up) they would
// be accepted ahead of m1. So a refusal fences its recipient on that connection: later sends to it
// are refused with the same code until the refused id comes back (the SDK retries the oldest
// refused send alone, then the rest in order: client/order-lanes.ts). A client that gives up on
// the refused send is not blocked for long: the fence lifts after FENCE_MS, which only has to
// cover the sends already on the wire when the client read the refusal.
//
// The sends a fence refuses must come back in their order too: a fence that lifted at the refused
// id's retry let the next new send pass ahead of the sends it had refused meanwhile, whose retries
// were still on their way (split-brain: routes parked at a cut ran in one burst at the regain,
// m6..m18 fenced, the refused m0 came back among them, and m24 was numbered before m6's retry).
// So a fence keeps every id it refused, oldest first, and passes only the oldest (in-order-ids.ts).

import { InOrderIds } from "./in-order-ids.ts";

/** Most ids one fence waits for: beyond, later sends are refused without being waited for. */
const FENCE_IDS_MAX = 1000;

/** How long a fence holds at most: the sends a client wrote before it read the refusal. */
export const FENCE_MS = 1000;

/** The refusal codes a client retries (same id): these fence; final errors do not. */
export const RETRYABLE_REFUSALS: ReadonlySet<string> = new Set(["SERVER_BUSY", "RATE_LIMITED", "STORE_FULL"]);

interface Fence {
  /** The refused sends still to come back, oldest first: only the first may pass. */
  readonly ids: InOrderIds;
  code: string;
  until: number;
  /** When the earliest send it refused was received (a send received before that is not held back). */
  firstSentAt: number;
  /** When it was set up: a send received since then passed `check` (the oldest's retry, in turn). */
  readonly createdAt: number;
}

/** One connection's fenced recipients (created at its first retryable refusal). */
export class RefusalFence {
  private readonly fenced = new Map<string, Fence>();

  /** `lapseMs`: how long a fence holds at most (a cluster owner's fences hold longer: route-order.ts). */
  constructor(private readonly lapseMs = FENCE_MS) {}

  /**
   * The code to refuse a send to `to` with, or null when it may go on: the oldest refused id's
   * retry passes (the fence lifts when none is left), any other send is refused and waits its turn.
   */
  check(to: string, id: string, now: number): string | null {
    const f = this.fenced.get(to);
    if (!f) return null;
    if (now >= f.until) {
      this.fenced.delete(to);
      return null;
    }
    if (f.ids.takeOldest(id)) {
      if (f.ids.size === 0) this.fenced.delete(to);
      return null;
    }
    f.ids.add(id, false, now);
    return f.code;
  }

  /**
   * A send to `to` was refused with a retryable code: fence `to`. Under a fence already there (an
   * older refusal keeps its code and time) the id waits behind the others, unless it is the one
   * that just passed as the oldest: then it is the oldest again.
   */
  refused(to: string, id: string, code: string, now: number, sentAt = now): void {
    let f = this.fenced.get(to);
    // A lapsed fence not yet swept is no fence: joining it, the refusal fenced nothing.
    if (!f || now >= f.until) {
      const until = now + this.lapseMs;
      this.fenced.set(to, f = { ids: new InOrderIds(FENCE_IDS_MAX), code, until, firstSentAt: sentAt, createdAt: now });
    }
    f.firstSentAt = Math.min(f.firstSentAt, sentAt);
    f.ids.add(id, id === f.ids.passed, sentAt);
  }

  /**
   * A send received at `sentAt`, after a send the fence refused, and that the server would now post
   * again by itself (its recipient's owner moved or restarted): while the fence still waits for
   * refused ids, it joins them, the fence holds its full time again, and the caller refuses it (returns
   * the code). It takes its place by the time it was received, which is where the SDK sends it
   * again. A send received before every refused one goes on (it comes first anyway), and so does
   * one received after the fence was set up (it passed the fence in its turn).
   * The time limit is not looked at: the SDK retries a refused send only once every send that was
   * on the wire before the refusal is answered, so re-posted and numbered, this send would be
   * numbered before that retry (split-brain: m711 refused at a cut, m801 re-posted to the new
   * owner 1.8 s later and numbered first).
   */
  holdBack(to: string, id: string, sentAt: number, now: number): string | null {
    const f = this.fenced.get(to);
    if (!f || f.ids.size === 0 || sentAt < f.firstSentAt || sentAt >= f.createdAt) return null;
    f.ids.add(id, false, sentAt);
    f.until = Math.max(f.until, now + this.lapseMs);
    return f.code;
  }

  /**
   * Every fence still holding at `since` holds its full time from `now` again. For a shard that owned
   * nothing from `since` to `now` (cut off from the cluster): the sends a fence covers were parked
   * there meanwhile and all run at the regain, seconds after the refusal, so a fence's clock must
   * not run through the cut (split-brain: m1 refused at the cut, m2 parked; at the regain the fence
   * had lapsed by 3 ms and m2 was numbered before m1's retry).
   */
  renew(since: number, now: number): void {
    for (const f of this.fenced.values()) if (f.until > since) f.until = Math.max(f.until, now + this.lapseMs);
  }

  /** Forgets the fences that lapsed (keys never checked again: a connection that stopped sending). */
  expire(now: number): void {
    for (const [to, f] of this.fenced) if (now >= f.until) this.fenced.delete(to);
  }

  get size(): number {
    return this.fenced.size;
  }
}
