// Membership over NATS KV: every node re-puts its record every heartbeat; every node watches
// the bucket and derives up/draining/down from when it last heard each node. nats-server 2.9 has
// no per-key TTL, so the bucket's max-age removes records of nodes that stopped re-putting; in
// between (down-after < silence < max-age) observers show them as down.

import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type AnnouncedState,
  deriveView,
  membersKey,
  type NodeRecord,
  type NodeView,
  type Observed,
  ownerCandidates,
  parseNodeRecord,
} from "./membership.ts";
import { type Member, Placement } from "./placement.ts";
import { LEASE_DEFAULTS } from "../config/cluster.ts";
import { log } from "../observe/log.ts";
import { createRacing } from "./create-race.ts";

export const NODES_BUCKET = "iris_nodes";

export interface MembershipTiming {
  /** How often a node re-puts its record. */
  heartbeatMs: number;
  /** Silence after which observers call a node down (several missed heartbeats). */
  downAfterMs: number;
  /** Bucket max-age: how long a silent node stays listed as down before it disappears. */
  forgetAfterMs: number;
}

/** The operator settings' defaults (--cluster-heartbeat-ms, --cluster-down-after-ms, --cluster-forget-after-ms). */
export const DEFAULT_TIMING: MembershipTiming = { ...LEASE_DEFAULTS };

/**
 * Heartbeats that our own watch has not shown us for this many heartbeat periods, while our puts
 * succeed, mean the watch is stalled: its consumer lived on a NATS server that died, and the
 * client only notices after 2 missed idle heartbeats of 30 s. A stalled watch froze this node's
 * view at "everyone down" while it stayed ready (found killing a NATS server of three). It is
 * reopened (the new one replays every key's last value).
 */
const WATCH_STALL_BEATS = 2;

export interface MembershipCounters {
  heartbeats: number;
  heartbeatErrors: number;
  garbage: number;
}

export class Membership {
  private readonly seen = new Map<string, Observed>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private kv: KV | null = null;
  private stopWatch: (() => void) | null = null;
  private lastKey = "";
  private placement = new Placement([]);
  private inflight: Promise<void> = Promise.resolve();
  private stopped = false;
  private busy = false;
  private lastBeatAt = -Infinity;
  /** When our own heartbeats were stored (or heard) again after a cut or deafness (-Infinity: never). */
  private healthySince = -Infinity;
  /** When the watch last showed our own record, and when it was (re)opened. */
  private ownSeenAt = -Infinity;
  private watchOpenedAt = -Infinity;
  private reopening = false;
  private wasDeaf = false;
  /** Nodes up in the placement last applied (frozen during a cut): the only ones a heal credits. */
  private upBeforeCut = new Set<string>();
  readonly counters: MembershipCounters = { heartbeats: 0, heartbeatErrors: 0, garbage: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private self: NodeRecord,
    private readonly replicas: number,
    private readonly timing: MembershipTiming = DEFAULT_TIMING,
    /** Called whenever the set of owner candidates changes (join, leave, drain, down). */
    private readonly onMembersChange: (members: Member[]) => void = () => {},
    /** This node's logged-in connections now (all its shards), read at every heartbeat (null: as announced). */
    private readonly connsNow: (() => number) | null = null,
  ) {}

  async start(): Promise<void> {
    // A heartbeat that takes longer than half the down-after time is late anyway: time it out.
    const js = jetstream(this.nc, { timeout: Math.max(100, this.timing.downAfterMs / 2) });
    this.kv = await createRacing(() =>
      new Kvm(js).create(NODES_BUCKET, { history: 1, replicas: this.replicas, ttl: this.timing.forgetAfterMs })
    );
    await this.openWatch();
    await this.beat();
    this.timer = setInterval(() => {
      void this.beat();
      if (this.watchStalled() && !this.reopening) {
        this.reopening = true;
        void this.openWatch().catch(() => {}).finally(() => (this.reopening = false));
      }
      this.refresh(); // silence is noticed on our own clock, not on an event
    }, this.timing.heartbeatMs);
  }

  private async openWatch(): Promise<void> {
    this.stopWatch?.();
    this.watchOpenedAt = performance.now();
    const it = await this.kv!.watch({ key: ">" });
    if (this.stopped) return it.stop();
    this.stopWatch = () => it.stop();
    void (async () => {
      for await (const e of it) {
        if (e.operation !== "PUT") this.seen.delete(e.key);
        else this.observe(e.key, e.value, e.created.getTime());
        if (e.key === this.self.id) this.heardSelf();
        this.refresh();
      }
    })();
  }

  /** The watch showed our own record. After deafness, the others' silence counts from now, as
   * after a cut (a reopened watch may replay our record before theirs). */
  private heardSelf(): void {
    if (this.deaf()) this.healthySince = performance.now();
    this.ownSeenAt = performance.now();
  }

  /** Our puts succeed but the watch has not shown one for a while (see WATCH_STALL_BEATS). */
  private watchStalled(): boolean {
    const now = performance.now();
    const limit = WATCH_STALL_BEATS * this.timing.heartbeatMs;
    return now - this.lastBeatAt < this.timing.heartbeatMs &&
      now - Math.max(this.ownSeenAt, this.watchOpenedAt) > limit;
  }

  private observe(key: string, value: Uint8Array, createdMs: number): void {
    const record = parseNodeRecord(key, value);
    if (!record) {
      this.counters.garbage++;
      return;
    }
    // A replayed (older) entry counts as heard when it was written, not now.
    const age = Math.max(0, Date.now() - createdMs);
    this.seen.set(key, { record, seenAt: performance.now() - age });
  }

  private beat(): Promise<void> {
    // One put at a time, so that a goodbye (delete) cannot be overtaken by a late heartbeat; while
    // one is stuck (link down) later beats are skipped, not queued: a stale heartbeat is worthless.
    if (this.stopped || this.busy) return this.inflight;
    this.busy = true;
    this.inflight = this.put().finally(() => (this.busy = false));
    return this.inflight;
  }

  private async put(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.connsNow) this.self = { ...this.self, conns: connCount(this.connsNow()) };
      await this.kv!.put(this.self.id, JSON.stringify(this.self));
      this.counters.heartbeats++;
      if (this.cut()) this.healthySince = performance.now();
      this.lastBeatAt = performance.now();
    } catch {
      this.counters.heartbeatErrors++; // link down: others will see us go silent, which is the truth
    }
  }

  /**
   * Our watch has not shown our own heartbeat for down-after/2 although we were heard before
   * (stalled consumer, or a reopen waiting for an R3 election): every node, ourselves included,
   * looks silent, which says nothing about them. Before this rule a deaf node's view went to "up:
   * nobody" and back while it stayed ready: it dropped every owner box and re-made them empty,
   * and the sessions of other nodes (whose views never moved) stayed attached to the dropped
   * boxes, so their users got nothing more until a new login (R3 NATS-kill test).
   */
  private deaf(): boolean {
    return this.ownSeenAt > -Infinity && performance.now() - this.ownSeenAt > this.timing.downAfterMs / 2;
  }

  /** deaf(), said once per episode in the log (a CI log then tells why a view stood still). */
  private deafNoted(): boolean {
    const deaf = this.deaf();
    if (deaf && !this.wasDeaf) {
      const ms = Math.round(performance.now() - this.ownSeenAt);
      log.warn(`cluster: membership watch silent (own heartbeat not shown for ${ms} ms); view held`);
    }
    if (!deaf && this.wasDeaf) log.warn("cluster: membership watch hears again");
    this.wasDeaf = deaf;
    return deaf;
  }

  /** Our own heartbeat is stale (we were heard before): we are the one cut off, not the others. */
  private cut(): boolean {
    return this.lastBeatAt > -Infinity && this.sinceOwnBeat() > this.timing.downAfterMs / 2;
  }

  private refresh(): void {
    // While cut off, everyone else falls silent to us: that says nothing about them, so placement
    // stays as it was (this node owns nobody meanwhile: handover-link.ts fences it). The same while
    // deaf: our puts are stored but our watch shows nobody's, ours included.
    if (this.cut() || this.deafNoted()) return;
    const members = ownerCandidates(this.view());
    const key = membersKey(members);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.upBeforeCut = new Set(members.map((m) => m.id));
    this.placement = new Placement(members);
    this.onMembersChange(members);
  }

  view(): NodeView[] {
    // After a cut, others' silence counts only from when we could hear them again: a heal does not
    // briefly show every other node down (and re-place every user) until their next beats arrive.
    // A node already down before the cut stays down: credited too, a dead node came back "up" for
    // down-after after every self-cut and its users were placed on it (10-node failover bench).
    const credit = (o: Observed) =>
      this.upBeforeCut.has(o.record.id) ? Math.max(o.seenAt, this.healthySince) : o.seenAt;
    const heard = [...this.seen.values()].map((o) => ({ ...o, seenAt: credit(o) }));
    return deriveView(heard, performance.now(), this.timing.downAfterMs);
  }

  /** ms since our own record was last stored (Infinity before the first). */
  sinceOwnBeat(): number {
    return performance.now() - this.lastBeatAt;
  }

  get downAfterMs(): number {
    return this.timing.downAfterMs;
  }

  get announced(): NodeRecord {
    return this.self;
  }

  current(): Placement {
    return this.placement;
  }

  /** Updates what this node announces (state, connections) from the next heartbeat on. */
  announce(patch: Partial<Pick<NodeRecord, "state" | "conns">>): Promise<void> {
    this.self = { ...this.self, ...patch };
    return this.beat();
  }

  setState(state: AnnouncedState): Promise<void> {
    return this.announce({ state });
  }

  /** Graceful leave: stop heartbeating and delete the record so others re-place at once. */
  async stop(leave = true): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
    await this.inflight;
    this.stopWatch?.();
    if (leave) await this.kv?.delete(this.self.id).catch(() => {});
  }
}

/** A count fit for the record's schema (a non-negative integer), whatever the source says. */
export function connCount(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}
