// The owner side of per-sender order across refusals and lost routes (docs/CLUSTER.md, "Order
// through refusals"), checked for every route before the order gate:
//
// - Owner fence. When this shard refuses a route for now (parked too long, the order gate full or
//   timed out, a route gap below), the sender's later sends to that recipient may already be on
//   their way: the session's fence (gateway/refusal-fence.ts) starts only when the refusal reaches
//   it, one or two NATS hops later. So the same fence runs here, where the order is decided: later
//   routes of that connection to that recipient are refused with the same code until the refused
//   id comes back (the SDK retries it first), or for at most OWNER_FENCE_MS.
// - Route gaps (route-gap.ts): routes from a socket shard whose batches were lost are refused
//   until that shard has closed the connections that may have lost a send.

import { FENCE_MS, RefusalFence } from "../gateway/refusal-fence.ts";
import type { RouteMsg } from "../router/wire.ts";
import { RouteGaps } from "./route-gap.ts";

/**
 * How long an owner fence holds at most. Longer than a connection's FENCE_MS: the sends it covers
 * reach the owner late, parked through a cut (PARK_MS), held by the order gate (GATE_WAIT_MS) or
 * re-posted by their session after a move, and the refused send's retry often comes on another
 * connection after a failover, so the fence is not lifted by it. With 1 s, a send re-posted from the
 * old connection 1.4 s after the refusal was numbered before the refused one's retry (split-brain
 * full size). A client that gave up on the refused send waits this long for that recipient.
 */
export const OWNER_FENCE_MS = 5000;

export const REFUSED_MOVING = "recipient's owner is moving between nodes; retry";
export const REFUSED_GAP = "sends from this node were lost between cluster nodes; retry";
const REFUSED_FENCED = "an earlier send to this recipient was refused; retry it first";

export interface RouteOrderIo {
  /** Sends the sender its refusal (never numbered or stored here). */
  refuse(m: RouteMsg, code: string, reason: string): void;
  /** Tells socket shard `src` that routes from it were lost (RoutesLostMsg). */
  notice(src: number): void;
}

export class RouteOrder {
  private readonly fence = new RefusalFence(OWNER_FENCE_MS);
  private readonly gaps = new RouteGaps();
  private sweptAt = 0;
  readonly counters = { gaps: 0, gapRefused: 0, fenceRefused: 0 };

  constructor(private readonly io: RouteOrderIo) {}

  /** True when `m` was refused here (the caller drops it). One size check each while nothing is open. */
  refuses(m: RouteMsg, now: number): boolean {
    if (this.gaps.size > 0 && m.o >= 0) {
      const v = this.gaps.check(m.o, now);
      if (v === "renotice") this.io.notice(m.o);
      if (v !== "pass") {
        this.counters.gapRefused++;
        this.refuse(m, "SERVER_BUSY", REFUSED_GAP, now);
        return true;
      }
    }
    if (this.fence.size === 0 || m.o < 0 || m.id === "") return false;
    const code = this.fence.check(fenceKey(m), m.id, now);
    if (code === null) return false;
    this.counters.fenceRefused++;
    this.io.refuse(m, code, REFUSED_FENCED);
    return true;
  }

  /** Refuses `m` for now and fences its sender's later sends to its recipient. */
  refuse(m: RouteMsg, code: string, reason: string, now: number): void {
    if (m.o >= 0 && m.id !== "") {
      this.sweep(now);
      this.fence.refused(fenceKey(m), m.id, code, now);
    }
    this.io.refuse(m, code, reason);
  }

  /** This shard owned nothing from `since` until now (a cut): its fences hold on (RefusalFence.renew). */
  regained(since: number, now: number): void {
    this.fence.renew(since, now);
  }

  /** Batches of routes from socket shard `src` were lost on NATS. */
  gapFrom(src: number, now: number): void {
    this.counters.gaps++;
    this.gaps.opened(src, now);
    this.io.notice(src);
  }

  /** `src` closed its connections that may have lost a send: its routes are taken again. */
  resumed(src: number): void {
    this.gaps.resumed(src);
  }

  /** Fences of connections that never sent again are forgotten once expired. */
  private sweep(now: number): void {
    if (now - this.sweptAt < FENCE_MS) return;
    this.sweptAt = now;
    this.fence.expire(now);
  }
}

/** One connection (origin shard, conn) and one recipient. */
function fenceKey(m: RouteMsg): string {
  return `${m.o}/${m.c}/${m.to}`;
}
