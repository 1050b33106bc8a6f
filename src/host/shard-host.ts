// The host of one router shard (runs in a Worker): wires the pieces and owns the timers. The
// port mesh carries messages between threads; owner-bound ones go to the owner actor, the rest to
// the sessions; the listeners feed the sessions; admission guards new connections.

import type { Server } from "bun";
import type { Settings } from "../config/schema.ts";
import { tlsOptions } from "../config/tls.ts";
import { Admission } from "../gateway/admission.ts";
import { createHttpApp, type WsData } from "../gateway/http.ts";
import { listenTcp, listenWebSocket } from "../gateway/listeners.ts";
import { Sessions } from "../gateway/session.ts";
import {
  CHAIN_SWEEP_EVERY_MS,
  CHAIN_SWEEP_SLICES,
  HOUSEKEEPING_EVERY_MS,
  IDLE_GC_BURST_BYTES,
  OWNER_IDLE_MS,
  OWNER_STATS_EVERY_MS,
  OWNER_SWEEP_EVERY_MS,
  type OwnerLimits,
  SHUTDOWN_SETTLE_MAX_MS,
  SHUTDOWN_SETTLE_POLL_MS,
  SHUTDOWN_WRITER_SETTLE_MS,
} from "../limits.ts";
import type { MetricsReader, SlotMetrics } from "../observe/metrics.ts";
import { log } from "../observe/log.ts";
import { Signals } from "../observe/signals.ts";
import { Owner } from "../router/owner.ts";
import { PortMesh } from "../router/ports.ts";
import { isOwnerMsg, type PortMsg, type RouteMsg } from "../router/wire.ts";
import type { ShardCluster } from "../cluster/shard-cluster.ts";
import { ClusterSignals } from "../cluster/signals.ts";
import { Disconnects } from "../protocol/disconnect.ts";

export interface ShardOptions {
  index: number;
  shards: number;
  settings: Settings;
  metrics: SlotMetrics;
  reader: MetricsReader;
  maxConnections: number;
  ownerLimits: OwnerLimits;
  version: string;
  /** Cluster mode: routes by global shard address and stores in JetStream (absent: single node). */
  cluster?: ShardCluster;
}

export class ShardHost {
  readonly mesh: PortMesh;
  readonly sessions: Sessions;
  readonly owner: Owner;
  private readonly signals: Signals;
  private readonly admission: Admission;
  private server: Server<WsData> | null = null;
  private tcp: ReturnType<typeof listenTcp> | null = null;
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  /** Peer shards that died and have not been re-attached to since. */
  private readonly downPeers = new Set<number>();
  /** The dedupe filter's bound was reported (logged once each time it is reached). */
  private filterBoundLogged = false;

  /**
   * Told when an owner sweep let go of a burst of memory (observe/idle-gc.ts `owe`): an idle
   * shard runs no collection by itself, so what the sweep freed would stay resident.
   */
  onSweptGarbage: (() => void) | null = null;

  constructor(private readonly o: ShardOptions) {
    this.signals = o.cluster ? new ClusterSignals(o.reader, o.cluster) : new Signals(o.reader);
    this.admission = new Admission(this.signals, o.metrics, o.maxConnections);
    this.mesh = new PortMesh(o.index, o.shards, o.metrics, (m) => this.handle(m), () => this.publishBacklog());
    const c = o.cluster;
    const post = c ? (k: number, m: PortMsg) => c.post(k, m) : (k: number, m: PortMsg) => this.mesh.post(k, m);
    this.owner = new Owner({
      self: c ? c.self : o.index,
      shards: o.shards,
      toShard: post,
      toWriter: c ? (m) => c.toWriter(m) : (m) => this.mesh.toWriter(m),
      now: () => Date.now(),
      underPressure: () => this.signals.spilling(),
      sendAcked: (t0) => o.metrics.ackLatency(performance.timeOrigin + performance.now() - t0),
      storeRefusal: () => this.signals.storeRefusal(o.settings.storeBacklogMb),
      ...(c ? clusterOwnerIo(c) : {}),
    }, o.ownerLimits);
    this.sessions = new Sessions({
      index: c ? c.self : o.index,
      shards: o.shards,
      settings: o.settings,
      metrics: o.metrics,
      signals: this.signals,
      post,
      ...(c ? clusterRouting(c) : {}),
    });
    if (c) this.wireCluster(c);
    this.every(OWNER_SWEEP_EVERY_MS, () => {
      const before = this.owner.stats.recentBytesSwept;
      this.owner.sweep(OWNER_IDLE_MS);
      if (this.owner.stats.recentBytesSwept - before >= IDLE_GC_BURST_BYTES) this.onSweptGarbage?.();
    });
    // Owner counters live in plain fields (hot path); publish them to shared metrics periodically.
    this.every(OWNER_STATS_EVERY_MS, () => this.publishOwnerStats());
    this.every(CHAIN_SWEEP_EVERY_MS, () => this.sessions.sweepChains(CHAIN_SWEEP_SLICES));
    this.every(HOUSEKEEPING_EVERY_MS, () => {
      this.sessions.housekeeping();
      this.owner.spillStalePending(this.signals.spilling() ? 0 : o.ownerLimits.pendingSpillMs);
      this.owner.cutSlowConsumers();
      if (o.cluster?.shouldShedClients()) this.sessions.disconnectAll(Disconnects.cutOff);
    });
  }

  /** Cluster mode: what the shard's cluster side tells the owner and the sessions. */
  private wireCluster(c: ShardCluster): void {
    c.onPlacement = (moved) => {
      this.owner.dropMoved(moved, true); // also moved here: a box from an early attach may number too low
      this.sessions.reattachMoved(moved);
      this.owner.startDedupeScan(); // users that moved here bring their window's keys
      c.recheckLater(() => this.owner.linkedUsers().filter((u) => moved(u) && c.ownerOf(u) === c.self));
    };
    // Owner hand-over (cluster/handover.ts): late rows of other owners, and the fence after a cut.
    c.adopt = (user, rows) => this.owner.adoptLate(user, rows);
    c.mayHaveNumbered = (to, from, id) => this.owner.mayHaveNumbered(to, from, id);
    c.online = (user, live) => (live ? this.owner.isLive(user) : this.owner.isOnline(user));
    c.onFenced = () => this.owner.dropMoved(() => true, false, true); // unnumbered routes parked for the regain
    c.onPeerStarted = (address) => {
      this.owner.shardDown(address); // its sessions died with the old thread
      this.sessions.reattachOwnedBy(address);
    };
    // A sibling's sessions are alive (no thread died): ours re-attach to it, its links here stay.
    c.onSiblingRegained = (address) => this.sessions.reattachOwnedBy(address);
    c.announceStarted();
    c.onRegainFilter = () => this.owner.startDedupeScan();
    c.onRegain = () => {
      c.announceRegained(); // owner state new (fenced): peers re-attach; before ours, which follow it
      this.sessions.reattachMoved(() => true);
    };
    c.onGap = (src) => (this.sessions.resyncOwnedBy(src, (u) => c.placedOwnerOf(u)), this.owner.resyncShard(src));
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  private handle(m: PortMsg): void {
    if (!isOwnerMsg(m)) return this.sessions.handle(m);
    // Back from a cut just now: the parked routes were queued behind this message (the mesh runs
    // what a handler dispatches after it), yet they came first. So this one goes behind them.
    if (this.o.cluster?.checkFence()) return this.mesh.post(this.o.index, m);
    if (this.o.cluster?.holds(m)) return; // waits for an inbox re-read (cluster/order-gate.ts)
    this.owner.handle(m);
    // Publish the backlog after every owner message (one store into shared memory): senders
    // check it per message, and a figure from the last flush lets one large read (thousands of
    // v0 packets) overshoot the budget, or leaves paused v0 senders waiting on a stale figure
    // after a commit that had nothing to flush.
    this.publishBacklog();
  }

  private publishBacklog(): void {
    this.o.metrics.set("storeBacklogBytes", this.owner.backlogBytes);
    this.o.metrics.set("storeBacklogRows", this.owner.backlogRows);
  }

  private publishOwnerStats(): void {
    const st = this.owner.stats;
    const m = this.o.metrics;
    m.set("routedOwner", st.routed);
    m.set("storedOwner", st.stored);
    m.set("duplicates", st.duplicates);
    m.set("dedupeLookups", st.lookups);
    m.set("statusStoreLookups", this.owner.unknown.lookups);
    m.set("usersHeld", st.boxes);
    m.set("statusCached", this.owner.unknown.cached);
    m.set("storeFullRejects", st.storeFullRejects);
    m.set("storeBehindRejects", st.storeBehindRejects);
    m.set("orderRefused", st.orderRefused);
    m.set("staleLogins", st.staleLogins);
    m.set("dedupeMemoriesReleased", st.recentReleased);
    m.set("hotPages", st.hotPages);
    m.set("hotBacklogBytes", this.owner.hot?.bytes ?? 0);
    this.publishFilter(m);
    m.set("drainBytesOut", this.owner.drainBytesOut);
    this.o.cluster?.publishMetrics(m);
  }

  /** The dedupe filter's gauges, and a log line when its rebuild ends or it first reaches its bound. */
  private publishFilter(m: SlotMetrics): void {
    const bytes = this.owner.filterBytes;
    const overfilled = this.owner.filterOverfilled;
    m.set("dedupeFilterBuilding", this.owner.filterBuilding ? 1 : 0);
    m.set("dedupeFilterBytes", bytes);
    m.set("dedupeFilterOverfilled", overfilled);
    // Until a rebuild ends every send with an id is looked up in the store: say how long it took.
    const rebuilt = this.owner.takeFilterRebuilt();
    if (rebuilt && rebuilt.imageBytes > 0) log.info("dedupe filter read from the last shutdown's image", rebuilt);
    else if (rebuilt && rebuilt.keys > 0) log.info("dedupe filter rebuilt from the store", rebuilt);
    if (overfilled > 0 && !this.filterBoundLogged) {
      log.warn("the dedupe filter reached its memory bound; more sends will be looked up in the store", { bytes });
    }
    this.filterBoundLogged = overfilled > 0;
  }

  // ---- supervisor events ----

  peerDown(k: number): void {
    this.downPeers.add(k);
    this.mesh.dropPeer(k);
    this.owner.shardDown(this.addressOf(k));
  }

  /**
   * A channel to shard k. If k had died, this is its new incarnation: our users it owns are
   * re-attached and our unanswered sends for it routed again, before anything else can reach it
   * on this channel (a send routed in between would overtake them: per-sender order).
   */
  peerConnected(k: number, port: MessagePort): void {
    this.mesh.reconnectPeer(k, port, () => this.peerUp(k));
  }

  /** Shard k is back (the supervisor's "up"): done already if its channel came first. */
  peerUp(k: number): void {
    if (!this.downPeers.delete(k)) return;
    this.sessions.reattachOwnedBy(this.addressOf(k));
  }

  /** Owners and sessions name shards by address: global in cluster mode (cluster/address.ts). */
  private addressOf(k: number): number {
    return this.o.cluster ? this.o.cluster.addressOf(k) : k;
  }

  writerRestarted(port: MessagePort): void {
    this.mesh.setWriter(port);
    this.owner.writerRestarted();
  }

  // ---- listeners ----

  listen(port: number): number {
    const o = this.o;
    const app = createHttpApp({
      settings: o.settings,
      sessions: this.sessions,
      reader: o.reader,
      signals: this.signals,
      admission: this.admission,
      maxConnections: o.maxConnections,
      version: o.version,
      ...(o.cluster
        ? { clusterView: () => o.cluster!.clusterView(), clusterMetrics: () => o.cluster!.memberMetrics() }
        : {}),
    });
    this.app = app;
    this.server = listenWebSocket(o.settings, port, app, this.sessions, this.admission, tlsOptions(o.settings));
    return this.server.port ?? port;
  }

  private app: ReturnType<typeof createHttpApp> | null = null;

  /**
   * SIGHUP: new listeners with the certificate as it is on disk now, on the same ports, then the
   * old ones stop accepting. Open connections stay where they are. Throws (nothing changed) when
   * the files cannot be read.
   */
  reloadTls(): void {
    const o = this.o;
    const tls = tlsOptions(o.settings);
    if (this.server && this.app) {
      const old = this.server;
      this.server = listenWebSocket(o.settings, old.port ?? 0, this.app, this.sessions, this.admission, tls);
      old.stop(false);
    }
    if (this.tcp) {
      const old = this.tcp;
      this.tcp = listenTcp(o.settings, old.port, this.sessions, this.admission, tls);
      old.stop(false);
    }
  }

  /** Raw TCP listener for seed (v0) clients; runs on shard 0 only. */
  listenTcp(port: number): number {
    this.tcp = listenTcp(this.o.settings, port, this.sessions, this.admission, tlsOptions(this.o.settings));
    return this.tcp.port;
  }

  /** Shutdown step 1: stop accepting and close every client with a reason. */
  stopListening(): void {
    this.server?.stop(false);
    this.tcp?.stop(false);
    this.sessions.closeAll();
  }

  /**
   * Shutdown step 2: routes still waiting for sequence numbers get them (they were accepted, and
   * v0 senders cannot resend), owners push unacked deliveries to the store, then say goodbye.
   */
  async finish(): Promise<void> {
    const end = performance.now() + SHUTDOWN_SETTLE_MAX_MS;
    while (this.owner.waitingBytes > 0 && performance.now() < end) await Bun.sleep(SHUTDOWN_SETTLE_POLL_MS);
    this.owner.releaseAll();
    this.owner.handOverFilter(); // kept in the file for the next start (one node only)
    this.mesh.toWriter({ t: "bye", shard: this.o.index });
    this.mesh.flush();
    await this.o.cluster?.settleWriter(SHUTDOWN_WRITER_SETTLE_MS); // its last appends and last-seen times
    for (const t of this.timers) clearInterval(t);
    this.publishOwnerStats();
  }
}

/** The owner's cluster hooks: placement, parking, dropped sends and fresh boxes (cluster/shard-cluster.ts). */
function clusterOwnerIo(c: ShardCluster) {
  return {
    owns: (user: string) => c.ownerOf(user) === c.self,
    park: (m: RouteMsg) => c.park(m),
    droppedUnanswered: (user: string, from: string, id: string) => c.recordDropped(user, from, id),
    freshBox: (user: string, done: () => void) => c.freshBox(user, done),
  };
}

/** Where the sessions route in cluster mode: owners under the shard's view, and whether one has started (peer-starts.ts). */
function clusterRouting(c: ShardCluster) {
  return {
    ownerOf: (u: string) => c.ownerOf(u),
    placedOwnerOf: (u: string) => c.placedOwnerOf(u),
    routable: (k: number) => c.routable(k),
  };
}
