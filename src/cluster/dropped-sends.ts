// Per-sender order for sends dropped with the owner state at a cut (docs/CLUSTER.md, "Per-sender
// order through NATS restarts (branch cl-order4)", shape 1).
//
// At a cut a shard drops its owner boxes. A send a box had numbered and forwarded live (or held
// back behind a drain) but whose recipient had not acked it yet was never stored and never
// answered: its sender resends it about a second later. The fresh box made when the shard owns
// again used to number the sender's *next* send first (it reached the box before the resend), and
// the recipient saw m2 before m1. So the shard keeps, outside the boxes, the (recipient, sender,
// id) of every such send, and while any of them is missing a route from that sender to that
// recipient is refused (SERVER_BUSY, retryable) unless it is one of them or an older send coming
// back (its id was numbered here before: the owner's dedupe filter may have it). The SDK then
// holds its newer sends behind the refused one and resends its oldest unacked send first
// (client/order-lanes.ts), which is a dropped one: it passes and is numbered before the refused one.
//
// A refused send must also come back before the sender's later ones: the routes a shard held at
// the cut (the order gate, the park) run in one burst at the regain, so the dropped send can come
// back in the middle of them, behind sends refused a moment ago and ahead of later ones that would
// then pass first (split-brain seed 45854: m0 dropped; m6, m12, m18 refused; m0 back; m24 passed
// and was numbered before the retried m6). So each refused id joins its pair's list, in arrival
// order, and only the oldest refused id, a dropped one or an older send passes until the list is
// empty: the SDK retries its oldest unacked send first, which is that one (gateway/in-order-ids.ts).
//
// The fence is bounded: it starts when the shard owns again and lifts after DROPPED_FENCE_MS
// whatever happens (a sender without an SDK, or one that gave up, never resends; a refusal, never
// silence, answers its later sends meanwhile).

import { InOrderIds } from "../gateway/in-order-ids.ts";

/**
 * How long after a regain a sender's new sends wait for its dropped ones: the SDK resends an
 * unanswered send after `resendAfterMs` (3 s by default, 1 s in the chaos clients), and a lane's
 * probe waits for its silent sends to get that old, plus a back-off of up to 2 s.
 */
export const DROPPED_FENCE_MS = 5000;
/** Most dropped sends kept per shard: beyond, new ones are not kept (their order is not guarded). */
export const DROPPED_MAX = 100_000;
/** Most refused ids remembered per pair: beyond, the later ones are refused without being waited for. */
export const REFUSED_PER_PAIR_MAX = 1000;

interface Pair {
  /** Ids dropped unanswered that have not come back yet. */
  readonly ids: Set<string>;
  /** Ids refused by this fence, oldest first, that have not come back yet. */
  readonly refused: InOrderIds;
  /** When the fence lifts (Infinity until the shard owns again). */
  until: number;
}

export interface DroppedCounters {
  /** Sends kept at a drop; refused routes; dropped sends that came back; fences lifted by time. */
  kept: number;
  refused: number;
  returned: number;
  expired: number;
}

export class DroppedSends {
  readonly counters: DroppedCounters = { kept: 0, refused: 0, returned: 0, expired: 0 };
  /** `recipient \0 sender` -> the dropped ids of that pair. */
  private readonly pairs = new Map<string, Pair>();
  private ids = 0;

  /** Pairs fenced now (the hot path checks this first: 0 outside a regain). */
  get size(): number {
    return this.pairs.size;
  }

  /** At a drop: `from`'s send `id` to `to` was numbered, never stored and never answered. */
  dropped(to: string, from: string, id: string): void {
    if (id === "" || this.ids >= DROPPED_MAX) return;
    const k = pairKey(to, from);
    let p = this.pairs.get(k);
    if (!p) this.pairs.set(k, p = { ids: new Set(), refused: new InOrderIds(REFUSED_PER_PAIR_MAX), until: Infinity });
    if (p.ids.has(id)) return;
    p.ids.add(id);
    this.ids++;
    this.counters.kept++;
  }

  /** The shard owns again: every fence's clock starts now (while cut off, routes are parked anyway). */
  regained(now: number): void {
    for (const p of this.pairs.values()) p.until = now + DROPPED_FENCE_MS;
  }

  /**
   * True when `from`'s route `id` to `to` must be refused now: its pair still misses a dropped or
   * refused send, and this is neither a dropped one nor the oldest refused one (each lifts its part
   * of the fence) nor an older send (`seenBefore`: the owner may have numbered this id already, so
   * it is a resend, not a new send). A refused id waits in the pair's list for its turn.
   */
  refuses(to: string, from: string, id: string, seenBefore: () => boolean, now: number): boolean {
    const k = pairKey(to, from);
    const p = this.pairs.get(k);
    if (!p) return false;
    if (now >= p.until) {
      this.counters.expired++;
      this.forget(k, p);
      return false;
    }
    if (p.ids.delete(id)) {
      this.ids--;
      this.counters.returned++;
      this.lifted(k, p);
      return false;
    }
    if (p.refused.takeOldest(id)) {
      this.counters.returned++;
      this.lifted(k, p);
      return false;
    }
    if (id !== "" && seenBefore()) {
      p.refused.remove(id); // numbered meanwhile by another path: nothing to wait for
      this.lifted(k, p);
      return false;
    }
    this.counters.refused++;
    p.refused.add(id);
    return true;
  }

  /** Drops a pair whose dropped and refused sends have all come back. */
  private lifted(k: string, p: Pair): void {
    if (p.ids.size === 0 && p.refused.size === 0) this.pairs.delete(k);
  }

  /** Lifts the fences whose time is up (housekeeping: pairs whose sender never sends again). */
  expire(now: number): void {
    for (const [k, p] of this.pairs) {
      if (now < p.until) continue;
      this.counters.expired++;
      this.forget(k, p);
    }
  }

  private forget(k: string, p: Pair): void {
    this.ids -= p.ids.size;
    this.pairs.delete(k);
  }
}

function pairKey(to: string, from: string): string {
  return `${to}\0${from}`;
}
