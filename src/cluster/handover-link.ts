// The node side of the owner hand-over (handover.ts has the rules): when a writer stores rows
// while owners may be moving, it says so on LATE_SUBJECT, and the shard that owns the user now
// re-reads that inbox; users that moved here are re-read a few times after the move; and a node
// that was cut off owns nothing until it has dropped what it held from before the cut.

import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { log } from "../observe/log.ts";
import {
  decodeLate,
  encodeLate,
  LATE_MAX_USERS,
  LATE_SUBJECT,
  RECHECK_AFTER_MS,
  REGAINED_SUBJECT,
  SETTLE_MS,
  STARTED_SUBJECT,
} from "./handover.ts";

export interface HandOverCounters {
  /** Announcements of late writes sent and received, and received ones that were garbage. */
  announced: number;
  heard: number;
  garbage: number;
  /** Times this node was cut off and dropped its owner state (fenced itself). */
  fences: number;
}

export class HandOverLink {
  readonly counters: HandOverCounters = { announced: 0, heard: 0, garbage: 0, fences: 0 };
  private settleUntil = 0;
  /** Users this shard stored rows for in the last SETTLE_MS, with when (insertion = store order). */
  private readonly recent = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Seen cut off: whatever this node owned may have been re-placed meanwhile. */
  private fenced = false;
  private unfencing = false;

  constructor(
    private readonly nc: NatsConnection,
    /** A user whose late write was announced (the caller re-reads it if it owns the user). */
    private readonly onLate: (user: string) => void,
  ) {}

  /** This shard's global address (set by listen). */
  private self = -1;

  /** Listens for late writes, for shards that (re)started, and for shards that own again after a cut. */
  listen(self: number, onStarted: (address: number) => void, onRegained: (address: number) => void): void {
    this.self = self;
    this.subs.push(this.nc.subscribe(LATE_SUBJECT, {
      callback: (err, m) => {
        const users = err ? null : decodeLate(m.data);
        if (!users) return void this.counters.garbage++;
        this.counters.heard++;
        for (const u of users) this.onLate(u);
      },
    }));
    this.onAddress(STARTED_SUBJECT, onStarted);
    this.onAddress(REGAINED_SUBJECT, onRegained);
  }

  /** Announcements that carry a shard's global address (garbage counted; our own ignored). */
  private onAddress(subject: string, fn: (address: number) => void): void {
    this.subs.push(this.nc.subscribe(subject, {
      callback: (err, m) => {
        const text = err ? "" : new TextDecoder().decode(m.data);
        if (!/^\d{1,9}$/.test(text)) return void this.counters.garbage++;
        if (Number(text) !== this.self) fn(Number(text));
      },
    }));
  }

  /** Says this shard (re)started (or, with REGAINED_SUBJECT, owns again); called once it can take messages. */
  announceStarted(self: number, subject = STARTED_SUBJECT): void {
    try {
      this.nc.publish(subject, String(self));
    } catch {
      // link closing: sessions elsewhere re-attach on their next placement change or login
    }
  }

  /** Owners moved (placement change or heal): announce stores for a while. */
  settle(now = performance.now()): void {
    this.settleUntil = now + SETTLE_MS;
  }

  /** Rows for `users` were stored: announced if owners may be moving or the store had to retry. */
  stored(users: string[], retried: boolean): void {
    const now = performance.now();
    for (const u of users) {
      this.recent.delete(u); // insertion order = store order: the oldest are first
      this.recent.set(u, now);
    }
    for (const [u, at] of this.recent) {
      if (now - at <= SETTLE_MS) break;
      this.recent.delete(u);
    }
    if (retried || this.settling(now)) this.announce(users);
  }

  settling(now = performance.now()): boolean {
    return now <= this.settleUntil;
  }

  /** When owners last moved (placement change or heal); -Infinity before the first move. */
  get movedAt(): number {
    return this.settleUntil === 0 ? -Infinity : this.settleUntil - SETTLE_MS;
  }

  /**
   * Our view just moved these users away: rows we stored for them shortly before (while the
   * others may already have moved them) are announced, so that their new owner re-reads them.
   */
  movedAway(moved: (user: string) => boolean): void {
    const users = [...this.recent.keys()].filter(moved);
    if (users.length > 0) this.announce(users);
  }

  private announce(users: string[]): void {
    for (let i = 0; i < users.length; i += LATE_MAX_USERS) {
      try {
        this.nc.publish(LATE_SUBJECT, encodeLate(users.slice(i, i + LATE_MAX_USERS)));
        this.counters.announced++;
      } catch {
        // link closing: the re-reads after the move and the recipient's next drain remain
      }
    }
  }

  /** Re-reads, a few times after a move, the users that moved here (`due` lists them then). */
  recheckLater(due: () => string[], recheck: (user: string) => void): void {
    for (const ms of RECHECK_AFTER_MS) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        for (const u of due()) recheck(u);
      }, ms);
      this.timers.add(t);
    }
  }

  /** Cheap check for the hot path (every send asks who owns its recipient). */
  get active(): boolean {
    return this.fenced;
  }

  /** Seen ready: a cut from now on fences (a node that was never ready owned nothing). */
  private armed = false;
  private dropPending = false;

  arm(): void {
    this.armed = true;
  }

  /**
   * Called while cut off: this node owns nobody from now until the link is back. Its owner state
   * is dropped (`drop`, in a microtask: the caller may be the owner or a session in the middle of
   * its work), because the others may re-place its users and number their messages meanwhile.
   */
  fence(drop: () => void): void {
    if (!this.armed || this.fenced) return;
    this.fenced = this.dropPending = true;
    this.counters.fences++;
    log.warn("cluster: cut off; owner state dropped, owning nobody until the link is back");
    queueMicrotask(() => this.runDrop(drop));
  }

  private runDrop(drop: () => void): void {
    if (!this.dropPending) return;
    this.dropPending = false;
    drop();
  }

  /**
   * True while fenced. Once the link is back (`cut()` false), ownership resumes (`unfence`
   * re-attaches the sessions): at once when `now` (the caller is a top-level handler), else in a
   * microtask, and never before the drop.
   */
  isFenced(cut: () => boolean, drop: () => void, unfence: () => void, now: boolean): boolean {
    if (!this.fenced) return false;
    if (this.unfencing || cut()) return true;
    const run = () => {
      if (!this.fenced) return;
      this.runDrop(drop);
      this.fenced = this.unfencing = false;
      log.warn("cluster: link back; owning again");
      this.settle();
      unfence();
    };
    if (now) run();
    else {
      this.unfencing = true;
      queueMicrotask(run);
    }
    return this.fenced;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.subs) s.unsubscribe();
  }
}
