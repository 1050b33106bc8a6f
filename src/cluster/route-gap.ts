// Per-sender order across routes lost on NATS (pure; docs/CLUSTER.md, "Order through refusals").
// Core NATS is at-most-once: a batch of routes from socket shard S to owner shard K can vanish in
// a NATS restart, and the owner sees it only as a count gap on S's next batch (port-seq.ts). The
// sends in it were never answered; their SDKs resend them after a second, and if any later send
// of the same connection were accepted meanwhile, the resend would land behind it. So, from the
// gap on, K refuses every route from S (SERVER_BUSY, retried in order by the SDK's lanes) and tells
// S (RoutesLostMsg). S closes each connection with a send still unanswered, whose SDK logs in
// again and resends everything unacked oldest first, and then answers (RoutesResumedMsg) on the
// same FIFO port: every route after that answer comes from a connection that lost nothing, and K
// takes routes from S again. The notice or its answer can be lost too: the notice is repeated
// while routes are refused, and the refusal ends after ROUTE_GAP_MAX_MS in any case (S gone).

/** The longest K refuses S's routes without S's answer (S died or stays unreachable). */
export const ROUTE_GAP_MAX_MS = 5000;
/** While refusing, the notice goes again this often (it may have been lost as well). */
export const ROUTE_GAP_RENOTICE_MS = 500;

export type GapVerdict = "pass" | "refuse" | "renotice";

interface Gap {
  since: number;
  noticed: number;
}

/** The owner shard's open route gaps, per source shard (global address). */
export class RouteGaps {
  private readonly open = new Map<number, Gap>();

  /** Batches from `src` were lost: refuse its routes from now (a second gap starts the wait again). */
  opened(src: number, now: number): void {
    this.open.set(src, { since: now, noticed: now });
  }

  /**
   * A route from `src` arrived: "pass", or refuse it ("renotice": and send the notice again).
   * Checked only while some gap is open (`size`), so the hot path pays one comparison.
   */
  check(src: number, now: number): GapVerdict {
    const g = this.open.get(src);
    if (!g) return "pass";
    if (now - g.since >= ROUTE_GAP_MAX_MS) {
      this.open.delete(src);
      return "pass";
    }
    if (now - g.noticed < ROUTE_GAP_RENOTICE_MS) return "refuse";
    g.noticed = now;
    return "renotice";
  }

  /** `src` answered: its connections that may have lost a send are closed. */
  resumed(src: number): void {
    this.open.delete(src);
  }

  get size(): number {
    return this.open.size;
  }
}
