// Per-sender order for late rows (docs/CLUSTER.md, "Per-sender order for adopted late rows").
//
// When ownership of a user moves, an old owner may store a row after the new owner went live (its
// view lagged by up to a heartbeat, or its append was retrying). The new owner adopts such a row
// with a new seq; if the same sender's next message was numbered first, the recipient sees m2
// before m1. The gate closes that for every late row whose sender heard "stored" before sending
// the next message: while owners have just moved, a route to a user whose claim here is new waits
// until the writer has re-read the user's inbox, *starting after the route arrived*, and the owner
// has adopted every late row found there. The stored row's PubAck came before its "stored" ack,
// which came before the sender sent m2, which came before the read: the read sees it.
//
// A late row whose sender had no answer yet when it sent m2 is not the gate's business: that send
// was still unsettled at the sender's session, which re-posts unsettled sends to a moved user's
// new owner ahead of anything later (Sessions.reattachMoved), or its SDK resends it ahead of later
// ones after a failover; the new owner numbers that copy first, and the late row keeps the seq of
// that (sender, id) (Owner.adoptLate).

import type { RouteMsg } from "../router/wire.ts";
import { SETTLE_MS } from "./handover.ts";

/** Most routes held per shard: beyond, new ones are refused (SERVER_BUSY, retried by their SDKs). */
export const GATE_MAX = 10_000;
/** A re-read not answered by then lets its routes go: a stalled writer must not stall sends for good. */
export const GATE_WAIT_MS = 3000;
/** How often a held user's link is looked at while it still drains (the re-read waits for the drain's end). */
export const GATE_POLL_MS = 20;

/** A user's link at this shard's owner: none, still draining its backlog, or live. */
export type LinkState = "none" | "draining" | "live";

/**
 * Whether the gate may hold routes to a user whose link is in this state: connected here, live or
 * still draining. A user with no link gets no adoption now: its next drain serves an old owner's
 * rows in seq order, below this owner's (Claims.page).
 */
export const gatesLink = (link: LinkState): boolean => link !== "none";

/** Whether a held user's re-read may run now: not while its link drains (OrderGateIo.drained). */
export const linkDrained = (link: LinkState): boolean => link !== "draining";

/**
 * Whether routes to a user must wait for a re-read: owners moved less than SETTLE_MS ago (the
 * window in which old owners announce their stores), and this shard's claim on the user is
 * missing or was opened at most SETTLE_MS before that move (a claim older than that belongs to a
 * user that stayed here, whom no other owner numbered; an attach can open one a little before our
 * own view changes).
 */
export function mayMeetLateRows(now: number, movedAt: number, claimAt: number | undefined): boolean {
  if (now - movedAt > SETTLE_MS) return false;
  return claimAt === undefined || claimAt >= movedAt - SETTLE_MS;
}

/**
 * Users for whom another owner announced a late store (LATE_SUBJECT) in the last SETTLE_MS. An old
 * owner whose append retried longer than the settle window (a cut, a leader election) announces
 * it once stored, before its "stored" ack leaves; on one NATS server the announcement reaches us
 * before the sender's next message can. Routes to such a user wait for a re-read too.
 */
export class LateHeard {
  /** User -> when heard; insertion order = time order (a user heard again moves to the end). */
  private readonly at = new Map<string, number>();

  mark(user: string, now: number): void {
    this.at.delete(user);
    this.at.set(user, now);
    for (const [u, t] of this.at) {
      if (now - t <= SETTLE_MS) break;
      this.at.delete(u);
    }
  }

  recent(user: string, now: number): boolean {
    const t = this.at.get(user);
    return t !== undefined && now - t <= SETTLE_MS;
  }
}

export interface OrderGateIo {
  /** Whether routes to `user` must wait for a re-read now. */
  young(user: string): boolean;
  /**
   * False while `user`'s link here still drains its backlog: the re-read waits for the drain's end.
   * A drain serves an old owner's rows in their seq order itself; a re-read during it would adopt,
   * behind rows already numbered here, a row the next page would have served in order.
   */
  drained(user: string): boolean;
  /** Re-reads `user`'s inbox after every earlier writer request, has the late rows adopted, then `done`. */
  reread(user: string, done: () => void): void;
  /** Hands routes to the owner, in order (they do not pass the gate again). */
  release(routes: RouteMsg[]): void;
  /** Refuses a route over the cap (a retryable error to its sender). */
  refuse(m: RouteMsg): void;
}

interface Queue {
  readonly routes: RouteMsg[];
  /** How many of the first routes the read in flight covers (0: no read in flight). */
  covered: number;
}

export interface OrderGateCounters {
  /** Routes that waited for a re-read; re-reads asked for; re-reads given up after GATE_WAIT_MS; routes refused. */
  held: number;
  rereads: number;
  timeouts: number;
  refused: number;
}

export class OrderGate {
  readonly counters: OrderGateCounters = { held: 0, rereads: 0, timeouts: 0, refused: 0 };
  private readonly byUser = new Map<string, Queue>();
  private count = 0;
  private passing = false;
  /** Bumped by takeAll: a re-read started before then releases nothing when it ends. */
  private gen = 0;

  constructor(
    private readonly io: OrderGateIo,
    private readonly waitMs = GATE_WAIT_MS,
    private readonly max = GATE_MAX,
  ) {}

  /** True while held routes are being handed to the owner (they passed every check once already). */
  get releasing(): boolean {
    return this.passing;
  }

  /** Routes held now. */
  get size(): number {
    return this.count;
  }

  /** True when the gate took the route (it waits, or was refused); false: route it now. */
  take(m: RouteMsg): boolean {
    if (this.passing) return false;
    let q = this.byUser.get(m.to);
    if (!q && !this.io.young(m.to)) return false;
    if (this.count >= this.max) {
      this.counters.refused++;
      this.io.refuse(m);
      return true;
    }
    if (!q) this.byUser.set(m.to, q = { routes: [], covered: 0 });
    q.routes.push(m);
    this.count++;
    this.counters.held++;
    if (q.covered === 0) this.read(m.to, q);
    return true;
  }

  /**
   * One re-read for the routes held now, once the user's link has drained; routes that arrive
   * meanwhile wait for the next one. The time-out covers the wait for the drain too.
   */
  private read(user: string, q: Queue): void {
    q.covered = q.routes.length;
    this.counters.rereads++;
    const gen = this.gen;
    let finished = false;
    let poll: ReturnType<typeof setTimeout> | null = null;
    const finish = (timedOut: boolean) => {
      if (finished || gen !== this.gen) return;
      finished = true;
      clearTimeout(timer);
      if (poll) clearTimeout(poll);
      if (timedOut) this.counters.timeouts++;
      this.releaseCovered(user, q);
    };
    const timer = setTimeout(() => finish(true), this.waitMs);
    const start = () => {
      poll = null;
      if (finished || gen !== this.gen) return;
      if (!this.io.drained(user)) return void (poll = setTimeout(start, GATE_POLL_MS));
      this.io.reread(user, () => finish(false));
    };
    start();
  }

  /**
   * Every held route, each user's in arrival order, taken out of the gate; the re-reads in flight
   * release nothing. At a cut the owner state is dropped and the box's waiting routes are parked:
   * the routes held here came after those and must be parked behind them, not released into the
   * fresh box ahead of them after the regain (nats-restart: m62, m68 held here across a cut, the
   * parked m2..m56 re-held behind them at the regain, the recipient got m62 first).
   */
  takeAll(): RouteMsg[] {
    this.gen++;
    const out: RouteMsg[] = [];
    for (const q of this.byUser.values()) for (const m of q.routes) out.push(m);
    this.byUser.clear();
    this.count = 0;
    return out;
  }

  private releaseCovered(user: string, q: Queue): void {
    let out = q.routes.splice(0, q.covered);
    q.covered = 0;
    const more = q.routes.length > 0 && this.io.young(user);
    if (!more) {
      out = out.concat(q.routes.splice(0));
      this.byUser.delete(user);
    }
    this.count -= out.length;
    this.passing = true;
    try {
      this.io.release(out);
    } finally {
      this.passing = false;
    }
    if (more) this.read(user, q); // after the release: a read answered at once must not overtake it
  }
}
