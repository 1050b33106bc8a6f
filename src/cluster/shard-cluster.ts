// The cluster side of one router shard (runs in the shard's Worker): its own NATS link, the
// JetStream writer its owner uses instead of the SQLite writer, the cross-node port on its global
// address, and the placement view that tells its sessions where each user's owner lives.
// Addresses are global shard numbers (address.ts): local ones go through the Worker port mesh,
// the others through NATS, batched per destination per tick.

import type { Settings } from "../config/schema.ts";
import { isPortMsg, type PortMsg, type WriterReq } from "../router/wire.ts";
import { globalShard, Ordinals, splitShard } from "./address.ts";
import { type NatsLink, openLink } from "./connect.ts";
import { ClusterInbox } from "./inbox.ts";
import { JsWriter } from "./js-writer.ts";
import { LastSeen } from "./last-seen.ts";
import { Membership, type MembershipTiming } from "./membership-kv.ts";
import { type ClusterOptions, clusterOptions, leaseTiming } from "./options.ts";
import { log } from "../observe/log.ts";
import { CONNECT_WARN_MS } from "./node.ts";
import { type Member, Placement } from "./placement.ts";
import { NodePort } from "./port.ts";
import { SeqBlocks } from "./seq-blocks.ts";
import { SentWindow } from "./sent-kv.ts";
import { type Readiness, readiness } from "./readiness.ts";
import { clusterFigures, memberLines, RTT_EVERY_MS } from "./cluster-metrics.ts";
import { cutReason, CutWatch } from "./cut.ts";
import type { SlotMetrics } from "../observe/metrics.ts";
import { HandOverLink } from "./handover-link.ts";
import { REGAINED_SUBJECT } from "./handover.ts";
import { type Announcement, startHeard } from "./start-heard.ts";
import { ParkedRoutes } from "./parked.ts";
import { LatestUpdate } from "./latest-update.ts";
import {
  GATE_WAIT_MS,
  gatesLink,
  LateHeard,
  linkDrained,
  type LinkState,
  mayMeetLateRows,
  OrderGate,
} from "./order-gate.ts";
import { gapResyncs } from "./gap-rule.ts";
import { splitPortMsg } from "./port-split.ts";
import { REFUSED_MOVING, RouteOrder } from "./route-order.ts";
import { PeerStarts } from "./peer-starts.ts";
import { DroppedSends } from "./dropped-sends.ts";
import { ORDER_TRACE, orderTrace } from "../observe/order-trace.ts";
import type { RouteMsg, StoredRow } from "../router/wire.ts";

const DOWN = Infinity;
/**
 * How long a fresh box's routes wait for the re-read that adopts an earlier owner's late rows
 * first (ShardCluster.freshBox). The re-read runs behind every earlier request of this shard's
 * writer, appends that retry through a NATS outage included; a writer stalled that long must not
 * stall the user's sends for good, so they are then numbered as before (the gate's own bound).
 */
const FRESH_WAIT_MS = GATE_WAIT_MS;
const REFUSED_DROPPED = "an earlier send to this recipient was lost with its owner's state; retry it first";

export interface ShardClusterIo {
  /** Posts to a shard of this node (local index), through the Worker port mesh. */
  local(shard: number, m: PortMsg): void;
  /** Runs messages that arrived from other nodes (or from the JetStream writer) on this shard. */
  receive(msgs: PortMsg[]): void;
  /** Logged-in connections of the whole node (every shard), for the heartbeat record. */
  conns?(): number;
}

interface View {
  placement: Placement;
  ordinals: Ordinals;
}

export class ShardCluster {
  ordinal = -1;
  private link: NatsLink | null = null;
  private port: NodePort<PortMsg> | null = null;
  private writer: JsWriter | null = null;
  private membership: Membership | null = null;
  private view: View | null = null;
  private inbox: ClusterInbox | null = null;
  private rttMs = 0;
  private rttTimer: ReturnType<typeof setInterval> | null = null;
  private readonly timing: MembershipTiming;
  private readonly cut: CutWatch;
  /** Told which users changed owner whenever placement changes (the host re-attaches their sessions). */
  onPlacement: ((moved: (user: string) => boolean) => void) | null = null;
  /** Owner hand-over (handover.ts): announcements of late writes, re-reads, the fence after a cut. */
  private handover: HandOverLink | null = null;
  /** Routes for users this shard does not own yet under its view (parked.ts). */
  private readonly parked = new ParkedRoutes((m) => this.refuseRoute(m));
  /** Owner fence after a refusal, and routes refused after a route gap (route-order.ts). */
  readonly routeOrder = new RouteOrder({
    refuse: (m, code, reason) => {
      if (m.o >= 0) this.post(m.o, { t: "sendError", conn: m.c, id: m.id, code, reason });
    },
    notice: (src) => this.post(src, { t: "routesLost", owner: this.self }),
  });
  /** Routes to users whose owner just moved here wait for an inbox re-read (order-gate.ts). */
  private readonly gate = new OrderGate({
    young: (user) => this.mayMeetLateRows(user),
    drained: (user) => linkDrained(this.linkState(user)),
    reread: (user, done) => this.writer ? this.writer.recheck(user, 0, done) : done(),
    release: (routes) => this.io.receive(routes),
    refuse: (m) => this.refuseRoute(m),
  });
  /** Users whose late store another owner announced a moment ago (order-gate.ts). */
  private readonly lateHeard = new LateHeard();
  /** Sends dropped unanswered with the owner state at a cut: their senders' later sends wait (dropped-sends.ts). */
  private readonly dropped = new DroppedSends();
  /** Times this shard owned again after a cut (checkFence tells its caller when one happened). */
  private regains = 0;
  /** Whether the owner here may have numbered (sender, id) before (its dedupe filter; the host answers). */
  mayHaveNumbered: ((to: string, from: string, id: string) => boolean) | null = null;
  /** Fresh boxes that waited for a re-read before numbering, and those whose re-read timed out. */
  private readonly fresh = { rereads: 0, timeouts: 0 };
  /** The owner numbers late rows of another owner (null: the user is not connected here). */
  adopt: ((user: string, rows: StoredRow[]) => number[] | null) | null = null;
  /** Whether `user` is connected to its owner here (only then are late rows adopted at once; the host answers). */
  online: ((user: string, live: boolean) => boolean) | null = null;
  /** Cut off: drop every owner state (its users may be re-placed and numbered elsewhere). */
  onFenced: (() => void) | null = null;
  /** A shard of another node (re)started: its owner state is new (re-attach our users it owns). */
  onPeerStarted: ((address: number) => void) | null = null;
  /**
   * Told when another shard of this node owns again after a cut of its own: its owner state was
   * dropped at the fence, so our sessions whose users it owns must re-attach (no supervisor event
   * says so; without it their messages were stored as if they were offline until a re-login).
   */
  onSiblingRegained: ((address: number) => void) | null = null;
  /** Back from a cut, before any parked route runs: the owner's dedupe filter is rebuilt from the store. */
  onRegainFilter: (() => void) | null = null;
  /** Back from a cut, after the parked routes ran: re-attach the sessions (they re-post unsettled sends). */
  onRegain: (() => void) | null = null;
  /** Told when batches from shard `src` (global address) were lost on NATS (port-seq.ts). */
  onGap: ((src: number) => void) | null = null;
  /** Shards of nodes that came back: sends wait for their start announcement (peer-starts.ts). */
  private readonly peerStarts = new PeerStarts();
  /** Per node: when this shard's view saw it come back up (DOWN while it is not up). */
  private readonly upSince = new Map<string, number>();
  /** Gaps from a node that was not up here for GAP_STEADY_MS: left to the re-placement. */
  gapsIgnored = 0;
  /** The last time this shard saw itself cut off (gap-rule.ts). */
  private cutAt = -Infinity;
  /** When this shard last dropped its owner state at a cut (its fences hold on past the regain). */
  private droppedAt = -Infinity;
  /** Member lists apply one at a time, newest last (latest-update.ts). */
  private readonly updates = new LatestUpdate<{ members: Member[]; ordinals: Ordinals }>(
    ({ members, ordinals }) => this.replace(members, ordinals),
    (e) => log.warn(`cluster: member list not applied: ${e instanceof Error ? e.message : String(e)}`),
  );

  constructor(
    private readonly settings: Settings,
    private readonly shard: number,
    private readonly shards: number,
    private readonly io: ShardClusterIo,
  ) {
    this.timing = leaseTiming(settings);
    // Clients are closed once a cut has lasted as long as the others wait before calling us down.
    this.cut = new CutWatch(this.timing.downAfterMs);
  }

  get nodeId(): string {
    return this.settings.nodeId!;
  }

  /** This shard's global address (valid once started). */
  get self(): number {
    return globalShard(this.ordinal, this.shard);
  }

  /** The global address of this node's local shard `k`. */
  addressOf(k: number): number {
    return globalShard(this.ordinal, k);
  }

  /** Connects, opens the stores, claims the node's ordinal and joins; resolves when routable. */
  async start(): Promise<void> {
    const opts = clusterOptions(this.settings)!;
    const link = this.link = await connectLoudly(opts, this.shard);
    const replicas = opts.replicas;
    const inbox = this.inbox = await ClusterInbox.open(link.nc, { replicas, ttlSec: this.settings.inboxTtl });
    const ordinals = await Ordinals.open(link.nc, replicas);
    this.ordinal = await ordinals.claim(this.nodeId);
    this.writer = new JsWriter(
      inbox,
      await SeqBlocks.open(link.nc, replicas),
      await LastSeen.open(link.nc, replicas),
      await SentWindow.open(link.nc, replicas, this.settings.dedupeWindow * 1000),
      this.settings.dedupeWindow * 1000,
      (to, m) => this.post(to, m),
      (user) => this.ownerOf(user),
      this.settings.maxInbox,
    );
    this.writer.setPort(this.self, { postMessage: (msgs) => this.io.receive(msgs) });
    this.writer.adopt = (user, rows) => this.adopt?.(user, rows) ?? null;
    this.writer.onStored = (users, retried) => this.handover?.stored(users, retried);
    // A claim made while owners move: re-read that inbox shortly after (a late write may follow).
    this.writer.onClaim = (user) => {
      if (this.handover?.settling()) this.handover.recheckLater(() => [user], (u) => this.recheck(u));
    };
    this.handover = new HandOverLink(link.nc, (u) => this.lateAnnounced(u));
    this.handover.listen(
      this.self,
      (address) => this.heard("started", address),
      (address) => this.heard("regained", address),
    );
    // A batch older than the lease (downAfter/2) on arrival is dropped as lost (port-age.ts).
    this.port = new NodePort(
      link.nc,
      isPortMsg,
      this.self,
      (src) => this.gapFrom(src),
      this.timing.downAfterMs / 2,
      splitPortMsg,
    );
    this.port.listen(this.nodeId, this.shard, (items) => this.io.receive(items));
    const self = {
      id: this.nodeId,
      state: "up" as const,
      shards: this.shards,
      conns: 0,
      startedAt: Date.now(),
      http: "",
    };
    // Every shard heartbeats the same record, so each reports the node's sum, not its own count.
    const conns = this.io.conns ? () => this.io.conns!() : null;
    this.membership = new Membership(link.nc, self, replicas, this.timing, (ms) => {
      void this.updates.push({ members: ms, ordinals });
    }, conns);
    await this.membership.start();
    this.rttTimer = setInterval(() => void this.measureRtt(), RTT_EVERY_MS);
    const members = this.membership.current().size ? membersOf(this.membership) : [];
    await this.updates.push({ members, ordinals });
    await this.updates.settled();
  }

  /** A new member list: learn new nodes' ordinals first, then switch placement in one step. */
  private async replace(members: Member[], ordinals: Ordinals): Promise<void> {
    if (members.some((m) => ordinals.ordinalOf(m.id) === undefined)) await ordinals.refresh();
    const known = members.filter((m) => ordinals.ordinalOf(m.id) !== undefined);
    const before = this.view;
    const view = this.view = { placement: new Placement(known), ordinals };
    const now = performance.now();
    for (const [id, t] of this.upSince) {
      if (t === DOWN || known.some((m) => m.id === id)) continue;
      this.upSince.set(id, DOWN);
      this.peerLeft(ordinals.ordinalOf(id));
    }
    // A node seen for the first time counts as up all along; one that comes back, from now.
    for (const m of known) {
      const t = this.upSince.get(m.id);
      if (t === undefined) this.upSince.set(m.id, -Infinity);
      else if (t === DOWN) this.upSince.set(m.id, now), this.peerStarts.back(ordinals.ordinalOf(m.id)!, now);
    }
    if (!before) return;
    this.logChange(before, known);
    this.writer?.claims.release((user) => ownerIn(view, user) !== this.self);
    this.handover?.movedAway((user) => ownerIn(before, user) === this.self && ownerIn(view, user) !== this.self);
    this.handover?.settle();
    this.onPlacement?.((user) => ownerIn(before, user) !== ownerIn(view, user));
    this.unpark();
  }

  /** A late write for a user owned here and connected here was announced: re-read its inbox. */
  private lateAnnounced(u: string): void {
    const owned = this.ownerOf(u) === this.self, online = this.online?.(u, false) ?? false;
    if (ORDER_TRACE) orderTrace("late-heard", u, "", "", `owner=${owned} online=${online}`);
    if (!owned || !online) return;
    this.lateHeard.mark(u, performance.now());
    this.recheck(u);
  }

  /** Another shard (re)started or owns again (start-heard.ts). */
  private heard(kind: Announcement, address: number): void {
    const action = startHeard(kind, address, this.ordinal);
    if (action === "peerStarted") {
      this.peerStarts.started(address);
      this.onPeerStarted?.(address);
    } else if (action === "siblingRegained") this.onSiblingRegained?.(address);
  }

  /** Another node left our view: its shards must announce their start before sends go there again. */
  private peerLeft(o: number | undefined): void {
    if (o !== undefined && o !== this.ordinal) this.peerStarts.left(o);
  }

  /**
   * Whether sessions may route to shard `address` now: false while its node, back in our view, has
   * not said that shard started (peer-starts.ts); the sessions refuse such sends in order.
   */
  routable(address: number): boolean {
    if (this.peerStarts.size === 0) return true; // the hot path: no node came back lately
    return splitShard(address).ordinal === this.ordinal || this.peerStarts.routable(address, performance.now());
  }

  /** Owners move: says which nodes are up now and how long each member has been silent here. */
  private logChange(before: View, known: Member[]): void {
    const silent = (this.membership?.view() ?? []).map((n) => `${n.id} ${Math.round(n.silentMs)} ms`).join(", ");
    log.warn(
      `cluster: owners move: up ${known.map((m) => m.id).join(",")} (was ${before.placement.size} nodes); ` +
        `silent: ${silent}`,
    );
  }

  /** A route for a user this shard does not own under its view: kept for a moment (parked.ts). */
  park(m: RouteMsg): void {
    if (ORDER_TRACE) orderTrace("parked", m.to, m.from, m.id, `o=${m.o} c=${m.c}`);
    this.parked.add(m, performance.now());
  }

  /** Given up (parked too long, or over a cap): never numbered or stored here, so the sender may retry it (same id) at once. */
  private refuseRoute(m: RouteMsg): void {
    if (ORDER_TRACE) orderTrace("refused-moving", m.to, m.from, m.id, `o=${m.o} c=${m.c}`);
    this.routeOrder.refuse(m, "SERVER_BUSY", REFUSED_MOVING, performance.now());
  }

  /**
   * True when the caller drops an owner message: a route refused for order (route-order.ts) or
   * waiting for an inbox re-read (order-gate.ts), or a socket shard's answer after a route gap.
   */
  holds(m: PortMsg): boolean {
    if (m.t === "routesResumed") return this.routeOrder.resumed(m.shard), true;
    if (m.t !== "route") return false;
    // Released by the order gate: the fences below passed it when it arrived. Checked again, a
    // refused id that came back as the oldest (and was taken off its fence's list) was refused anew.
    if (this.gate.releasing) return false;
    const now = performance.now();
    if (!ORDER_TRACE) return this.routeOrder.refuses(m, now) || this.droppedRefuses(m, now) || this.gate.take(m);
    const why = this.routeOrder.refuses(m, now)
      ? "order"
      : this.droppedRefuses(m, now)
      ? "dropped"
      : this.gate.take(m)
      ? "gate"
      : "";
    if (why) orderTrace(`held-${why}`, m.to, m.from, m.id, `o=${m.o} c=${m.c}`);
    return why !== "";
  }

  /** At the fence: a send numbered here, dropped with its box unanswered (dropped-sends.ts). */
  recordDropped(user: string, from: string, id: string): void {
    this.dropped.dropped(user, from, id);
  }

  /**
   * A route of a sender whose earlier send to the same recipient was dropped at a cut and has not
   * come back: refused for now (retryable, no owner fence: the dropped send is the SDK's next probe
   * and must pass). Only while this shard owns the user: while fenced, routes are parked and
   * checked when they run.
   */
  private droppedRefuses(m: RouteMsg, now: number): boolean {
    if (this.dropped.size === 0 || this.ownerOf(m.to) !== this.self) return false;
    const seen = () => this.mayHaveNumbered?.(m.to, m.from, m.id) ?? true;
    if (!this.dropped.refuses(m.to, m.from, m.id, seen, now)) return false;
    if (m.o >= 0) this.post(m.o, { t: "sendError", conn: m.c, id: m.id, code: "SERVER_BUSY", reason: REFUSED_DROPPED });
    return true;
  }

  /**
   * A box of `user` got its first seqs while owners have just moved (or this shard owns again
   * after a cut): before it numbers anything, the writer re-reads the user's inbox behind every
   * earlier request (the dropped box's appends still retrying included) and the owner adopts the
   * late rows found, so that they come before the senders' later sends (docs/CLUSTER.md, shape 2).
   * `done` is called once they have seqs, or after FRESH_WAIT_MS. False: number at once.
   */
  freshBox(user: string, done: () => void): boolean {
    const w = this.writer;
    if (!w || !this.handover?.settling() || this.ownerOf(user) !== this.self) return false;
    this.fresh.rereads++;
    let finished = false;
    const finish = (timedOut: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (timedOut) this.fresh.timeouts++;
      done();
    };
    const timer = setTimeout(() => finish(true), FRESH_WAIT_MS);
    w.recheck(user, 0, () => finish(false));
    return true;
  }

  /**
   * This shard owns `user`, connected here (live, or still draining: then the re-read waits for
   * the drain's end), and either owners moved a moment ago and its claim is new, or another owner
   * announced a late store for it a moment ago (order-gate.ts). A user not connected here gets no
   * adoption now anyway: its next drain serves an old owner's rows in seq order, below this owner's
   * (Claims.page).
   */
  private mayMeetLateRows(user: string): boolean {
    const h = this.handover, now = performance.now();
    const recent = h?.settling(now) || this.lateHeard.recent(user, now);
    if (!recent || this.ownerOf(user) !== this.self || !gatesLink(this.linkState(user))) return false;
    return this.lateHeard.recent(user, now) || mayMeetLateRows(now, h!.movedAt, this.writer?.claims.openedAt(user));
  }

  /** The user's link at the owner here (the host answers; without a host, as if live). */
  private linkState(user: string): LinkState {
    const online = this.online;
    if (!online) return "live";
    return online(user, true) ? "live" : online(user, false) ? "draining" : "none";
  }

  /** Parked routes of users this shard owns now run, in arrival order, before anything later. */
  private unpark(): void {
    const back = this.parked.take((u) => this.ownerOf(u) === this.self, performance.now());
    if (ORDER_TRACE) {
      for (const m of back) {
        if (m.t === "route") orderTrace("unparked", m.to, m.from, m.id, `o=${m.o} c=${m.c}`);
      }
    }
    if (back.length > 0) this.io.receive(back);
  }

  /**
   * Batches from `src` were lost. Between nodes that stayed up, the host resynchronises (closes
   * and releases what `src` served). A node that was down or cut in our view, or came back only
   * just now, lost batches because of that, and the re-placement handles it: its users were
   * re-attached and its boxes dropped; a second wave of closes on top of that lost messages in
   * the split-brain test.
   */
  private gapFrom(src: number): void {
    this.routeOrder.gapFrom(src, performance.now()); // whatever the resync below: the senders' order
    const node = this.view?.ordinals.nodeOf(splitShard(src).ordinal);
    const since = node === undefined ? undefined : this.upSince.get(node);
    if (!gapResyncs(since, performance.now(), this.cutAt)) {
      log.info(`cluster: batches from shard ${src} (${node ?? "unknown node"}) lost on NATS; left to re-placement`);
      return void this.gapsIgnored++;
    }
    log.warn(`cluster: batches from shard ${src} (${node}) lost on NATS; its users reconnect`);
    this.onGap?.(src);
  }

  /** The global address of `user`'s owner; -1 when no node is known to be up, or while fenced. */
  ownerOf(user: string): number {
    return this.view && !this.isFenced() ? ownerIn(this.view, user) : -1;
  }

  /**
   * The owner under this shard's view even while fenced (the view stands still during a cut).
   * For the gap resync: a batch lost while we were cut off is noticed on the first batch after
   * the heal, which can come before our own heartbeat is stored again (still fenced, ownerOf -1).
   * Resolved with the fence, the resync closed nobody, and later live deliveries of the old link
   * reached the socket before the re-drain of the lost ones: the SDK then dropped those as old.
   */
  placedOwnerOf(user: string): number {
    return this.view ? ownerIn(this.view, user) : -1;
  }

  /** After a cut, until the old owner state is dropped (handover-link.ts). */
  private isFenced(now = false): boolean {
    if (!this.handover?.active) return false;
    return this.handover.isFenced(() => this.cutOff() !== null, this.drop, () => {
      this.regains++;
      this.dropped.regained(performance.now()); // the bounded wait for dropped sends starts now
      this.routeOrder.regained(this.droppedAt, performance.now()); // as do the refusal fences
      if (ORDER_TRACE) orderTrace("regained", "", "", "", `fenced=${this.dropped.size}`);
      // Parked routes came before anything the regain re-posts (sessions' unsettled sends, which a
      // socket shard on this same shard routes at once): they run first, into a filter being rebuilt.
      // The other way round, a re-posted m48 reached the order gate ahead of the parked m0..m42.
      this.onRegainFilter?.();
      this.unpark();
      this.onRegain?.();
    }, now);
  }

  private readonly drop = () => {
    this.droppedAt = performance.now();
    this.writer?.claims.release(() => true);
    this.onFenced?.();
    // Routes the order gate held came after the box's waiting ones, parked just now: behind them.
    for (const m of this.gate.takeAll()) this.park(m);
  };

  /**
   * Before an owner message is handled (top level): a healed node drops its old owner state first.
   * True when this call ended a fence: the parked routes were queued to run now.
   */
  checkFence(): boolean {
    const before = this.regains;
    this.isFenced(true);
    return this.regains !== before;
  }

  /** Tells the other nodes this shard (re)started, once its host can take messages. */
  announceStarted(): void {
    this.handover?.announceStarted(this.self);
  }

  /** Tells every other shard, this node's included, that this one owns again after a cut. */
  announceRegained(): void {
    this.handover?.announceStarted(this.self);
    this.handover?.announceStarted(this.self, REGAINED_SUBJECT);
  }

  /** Re-reads `user`'s inbox for late rows of another owner (handover.ts). */
  recheck(user: string): void {
    this.writer?.recheck(user);
  }

  /** Re-reads, a few times after a move, the users `due` names then. */
  recheckLater(due: () => string[]): void {
    this.handover?.recheckLater(due, (u) => this.recheck(u));
  }

  /** To any shard of the cluster: this node's through the port mesh, others' over NATS. */
  post(to: number, m: PortMsg): void {
    if (to < 0) return; // no owner known: the sender's send stays unacked and is retried
    const { ordinal, shard } = splitShard(to);
    if (ordinal === this.ordinal) return this.io.local(shard, m);
    const node = this.view?.ordinals.nodeOf(ordinal);
    if (node !== undefined) this.port?.send(node, shard, m);
  }

  toWriter(m: WriterReq): void {
    this.writer?.receive(this.self, [m]);
  }

  readiness(): Readiness {
    const m = this.membership;
    return readiness({
      link: this.link?.state() ?? "connecting",
      storesOpen: this.writer !== null && m !== null,
      sinceOwnBeatMs: m?.sinceOwnBeat() ?? Infinity,
      downAfterMs: this.timing.downAfterMs,
      draining: m?.announced.state === "draining",
    });
  }

  /** Why sends must be refused now (cut off from NATS), or null. */
  cutOff(): string | null {
    const why = cutReason(this.readiness());
    if (why !== null) {
      this.cutAt = performance.now(); // gap-rule.ts: batches lost from now on are lost to our cut
      this.handover?.fence(this.drop); // its users may be re-placed while it is cut off
    } else this.handover?.arm();
    return why;
  }

  /** Housekeeping tick: true when the clients should be closed so that they fail over elsewhere. */
  shouldShedClients(): boolean {
    const cut = this.cutOff() !== null;
    if (!cut) this.isFenced(true); // healed: drop the old owner state now, not at the next message
    this.parked.expire(performance.now());
    this.dropped.expire(performance.now());
    this.peerStarts.sweep(performance.now());
    return this.cut.tick(cut, performance.now());
  }

  /** GET /v1/cluster: this node, its readiness and every member as this shard sees it. */
  clusterView(): unknown {
    const nodes = (this.membership?.view() ?? []).map((n) => ({
      id: n.id,
      state: n.observed,
      shards: n.shards,
      conns: n.conns,
      startedAt: n.startedAt,
      lastHeartbeatMsAgo: Math.round(n.silentMs),
    }));
    const handover = {
      writer: this.writer?.claims.nonce,
      claims: this.writer?.claims.size ?? 0,
      adopted: this.writer?.counters.adopted ?? 0,
      ...this.handover?.counters,
      // Routes that waited for an inbox re-read (order-gate.ts), the re-reads, and those given up.
      gateHeld: this.gate.counters.held,
      gateRereads: this.gate.counters.rereads,
      gateTimeouts: this.gate.counters.timeouts,
      // Batches from other nodes lost on NATS (count jumps), and dropped as stale (port-age.ts).
      portGaps: this.port?.counters.gaps ?? 0,
      portStale: this.port?.counters.stale ?? 0,
      // Items split to fit one publish, and batches whose publish failed (each a gap at its receiver).
      portSplits: this.port?.counters.splits ?? 0,
      portPublishErrors: this.port?.counters.publishErrors ?? 0,
      // Routes refused for per-sender order: after a route gap, and behind a refused send (route-order.ts).
      routeGapRefused: this.routeOrder.counters.gapRefused,
      ownerFenceRefused: this.routeOrder.counters.fenceRefused,
      // Sends dropped unanswered at a cut, routes refused until they came back (dropped-sends.ts),
      // and fresh boxes that adopted late rows before numbering (freshBox), with their time-outs.
      droppedKept: this.dropped.counters.kept,
      droppedRefused: this.dropped.counters.refused,
      droppedExpired: this.dropped.counters.expired,
      freshRereads: this.fresh.rereads,
      freshTimeouts: this.fresh.timeouts,
    };
    return { self: this.nodeId, ordinal: this.ordinal, ready: this.readiness().ready, nodes, handover };
  }

  /** /metrics in cluster mode: every member's state, connections and heartbeat age, as this shard sees them. */
  memberMetrics(): string[] {
    return memberLines(this.membership?.view() ?? []);
  }

  private async measureRtt(): Promise<void> {
    const nc = this.link?.nc;
    if (!nc || this.link?.state() !== "up") return;
    // A flush is one PING/PONG; timed here with sub-ms precision (loopback RTTs are below 1 ms).
    const t0 = performance.now();
    await nc.flush().then(() => (this.rttMs = performance.now() - t0), () => {});
  }

  /** Writes this shard's cluster figures to its metrics slot (called periodically by the host). */
  publishMetrics(m: SlotMetrics): void {
    const figures = clusterFigures({
      shard: this.shard,
      nodesUp: this.view?.placement.size ?? 0,
      rttMs: this.rttMs,
      reconnects: this.link?.reconnects() ?? 0,
      port: this.port?.counters ?? null,
      inbox: this.inbox?.counters ?? null,
      adopted: this.writer?.counters.adopted ?? 0,
      fences: this.handover?.counters.fences ?? 0,
    });
    for (const [f, v] of figures) m.set(f, v);
  }

  /** Members as currently placed (for GET /v1/cluster later). */
  members(): Member[] {
    return this.membership ? membersOf(this.membership) : [];
  }

  /** Graceful stop: waits (at most `ms`) for the writer's last appends and last-seen writes. */
  settleWriter(ms: number): Promise<void> {
    return this.writer?.settle(ms) ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.rttTimer) clearInterval(this.rttTimer);
    this.writer?.stop();
    this.handover?.close();
    this.port?.close();
    await this.membership?.stop(true);
    await this.link?.close();
  }
}

function ownerIn(v: View, user: string): number {
  const o = v.placement.ownerOf(user);
  return o ? globalShard(v.ordinals.ordinalOf(o.node)!, o.shard) : -1;
}

/** Connects, waiting as long as it takes; says so once (from shard 0) if NATS does not answer soon. */
async function connectLoudly(opts: ClusterOptions, shard: number): Promise<NatsLink> {
  const warn = shard !== 0 ? null : setTimeout(() => {
    log.warn(`cluster: cannot reach NATS at ${opts.servers.join(",")}; retrying, not ready until it answers`);
  }, CONNECT_WARN_MS);
  try {
    return await openLink(opts);
  } finally {
    if (warn) clearTimeout(warn);
  }
}

function membersOf(m: Membership): Member[] {
  return m.view().filter((v) => v.observed === "up").map((v) => ({ id: v.id, shards: v.shards }));
}
