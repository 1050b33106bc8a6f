// The owner of a user is the one shard (hash of the user id) that sequences every message to that
// user. It is an actor per user: FIFO ports in, so per-sender order and the login-vs-store race are
// settled by message order, not locks. It decides, per message: forward live to the connection,
// or append to the store (offline, draining a backlog, slow, or too many unacked).
//
// Promise to senders: an ack ("delivered" | "stored" | "duplicate") is sent only once the message
// is acked by the recipient or committed to SQLite. Sequence numbers come from blocks reserved
// (and committed) in the store before use, so a crash leaves a gap but never reuses a number.

import type {
  AckMsg,
  AppendReq,
  AttachMsg,
  Delivery,
  DetachMsg,
  FlowMsg,
  LoadedReply,
  RejectedReply,
  RouteMsg,
  RowsReply,
  ShardMsg,
  StatusQuery,
  StoredRow,
  WriterReq,
} from "./wire.ts";

export interface OwnerIO {
  readonly self: number;
  toShard(shard: number, m: ShardMsg): void;
  toWriter(m: WriterReq): void;
  now(): number;
  /** True above the memory spill watermark: hold nothing for slow users in RAM. */
  underPressure(): boolean;
}

export interface OwnerLimits {
  maxPending: number; // unacked live deliveries per user before spilling to the store
  pageSize: number; // rows per backlog fetch
  pageBytes: number; // byte budget per backlog fetch (a quarter of it under memory pressure)
  maxFetches: number; // backlog pages in flight per shard (a few under memory pressure)
  pendingSpillMs: number; // unacked live deliveries older than this move to the store
  seqBlock: number; // sequence numbers reserved per store round trip
  recentIds: number; // (sender, id) pairs remembered per user for dedupe
  holdback: number; // messages held in memory per user while its backlog drains
  slowTimeoutMs: number; // a recipient at maxPending with no ack progress this long is cut off
}

export const defaultOwnerLimits: OwnerLimits = {
  maxPending: 1000,
  pageSize: 500,
  pageBytes: 256 * 1024,
  maxFetches: 32,
  pendingSpillMs: 1000,
  seqBlock: 1024,
  recentIds: 512,
  holdback: 256,
  slowTimeoutMs: 30_000,
};

interface Pending extends Delivery {
  o: number;
  c: number;
}

interface Conn {
  shard: number;
  conn: number;
  v0: boolean;
}

type Mode = "offline" | "draining" | "live";

/** Per-user state on its owner shard. */
interface Box {
  user: string;
  loaded: boolean;
  reserving: boolean;
  seqNext: number;
  seqLimit: number;
  lastSeen: number;
  waiting: RouteMsg[]; // routed before the box was loaded or had sequence numbers
  statusWaiters: StatusQuery[];
  conn: Conn | null;
  gen: number; // bumps on every attach/detach so stale store pages are ignored
  mode: Mode;
  cursor: number; // highest seq forwarded to the current connection
  acked: number; // highest seq the recipient acked
  ackedAt: number; // when `acked` last moved (or the connection attached)
  storedMax: number; // highest seq sent to the store
  storeUnknown: boolean; // true until a drain completes: older rows may exist we never saw
  deletedUpTo: number; // highest seq we asked the store to delete
  fetching: boolean;
  appendedSinceFetch: boolean;
  awaitingFlow: boolean; // a page was forwarded; wait for the socket shard's flow reply
  socketBlocked: boolean;
  pending: Pending[]; // live deliveries not yet acked, seq ascending
  // Messages that arrive while the backlog drains wait here (not in the store) and go out live
  // once the drain catches up. Invariant: every held seq is above every stored seq, because the
  // holdback is spilled to the store before any newer message is stored.
  holdback: Pending[];
  recent: Map<string, number>; // sender\0id -> seq, insertion ordered
  touched: number;
}

export interface OwnerStats {
  routed: number;
  forwardedLive: number;
  stored: number;
  duplicates: number;
  boxes: number;
  online: number;
}

export class Owner {
  private readonly boxes = new Map<string, Box>();
  /** Appends sent to the writer and not yet confirmed committed, oldest first: replayed if it dies. */
  private unconfirmed: AppendReq[] = [];
  /** Bytes in `unconfirmed`: the store backlog that senders are throttled on. */
  unconfirmedBytes = 0;
  /** Backlog fetches in flight (user + gen): bounded per shard; boxes beyond wait in the queue. */
  private readonly fetchesInFlight = new Set<string>();
  private readonly drainQueue = new Set<Box>();
  readonly stats: OwnerStats = { routed: 0, forwardedLive: 0, stored: 0, duplicates: 0, boxes: 0, online: 0 };

  constructor(private readonly io: OwnerIO, private readonly limits: OwnerLimits = defaultOwnerLimits) {}

  handle(m: ShardMsg): void {
    switch (m.t) {
      case "route":
        return this.onRoute(m);
      case "att":
        return this.onAttach(m);
      case "det":
        return this.onDetach(m);
      case "ack":
        return this.onAck(m);
      case "flow":
        return this.onFlow(m);
      case "stq":
        return this.onStatus(m);
      case "loaded":
        return this.onLoaded(m);
      case "rows":
        return this.onRows(m);
      case "rej":
        return this.onRejected(m);
      case "cmt":
        for (const req of this.unconfirmed.splice(0, m.n)) this.unconfirmedBytes -= appendBytes(req);
        return;
      default:
        return; // not an owner message (dlv, sent, … are for the socket side)
    }
  }

  // ---- boxes ----

  private box(user: string): Box {
    let b = this.boxes.get(user);
    if (!b) {
      b = {
        user,
        loaded: false,
        reserving: true,
        seqNext: 1,
        seqLimit: 0,
        lastSeen: 0,
        waiting: [],
        statusWaiters: [],
        conn: null,
        gen: 0,
        mode: "offline",
        cursor: 0,
        acked: 0,
        ackedAt: 0,
        storedMax: 0,
        storeUnknown: true,
        deletedUpTo: 0,
        fetching: false,
        appendedSinceFetch: false,
        awaitingFlow: false,
        socketBlocked: false,
        pending: [],
        holdback: [],
        recent: new Map(),
        touched: 0,
      };
      this.boxes.set(user, b);
      this.stats.boxes = this.boxes.size;
      this.io.toWriter({ t: "load", user, reserve: this.limits.seqBlock });
    }
    b.touched = this.io.now();
    return b;
  }

  private onLoaded(m: LoadedReply): void {
    const b = this.boxes.get(m.user);
    if (!b) return;
    if (!b.loaded) {
      b.loaded = true;
      b.lastSeen = Math.max(b.lastSeen, m.lastSeen);
      b.seqNext = m.seqBase;
      b.seqLimit = m.seqLimit;
    } else {
      // A follow-up reservation. Ranges from one owner are contiguous; if not (a previous owner
      // incarnation reserved in between), jumping forward is always safe.
      if (m.seqBase !== b.seqLimit + 1) b.seqNext = Math.max(b.seqNext, m.seqBase);
      b.seqLimit = Math.max(b.seqLimit, m.seqLimit);
    }
    b.reserving = false;
    for (const q of b.statusWaiters.splice(0)) this.replyStatus(b, q);
    const waiting = b.waiting.splice(0);
    for (const r of waiting) this.onRoute(r);
  }

  private ensureSeqs(b: Box): void {
    if (!b.reserving && b.seqLimit - b.seqNext < this.limits.seqBlock / 2) {
      b.reserving = true;
      this.io.toWriter({ t: "load", user: b.user, reserve: this.limits.seqBlock });
    }
  }

  // ---- routing ----

  private onRoute(m: RouteMsg): void {
    const b = this.box(m.to);
    if (!b.loaded || b.seqNext > b.seqLimit || b.waiting.length > 0) {
      b.waiting.push(m);
      this.ensureSeqs(b);
      return;
    }
    this.stats.routed++;
    if (m.id !== "") {
      const key = m.from + "\0" + m.id;
      const prior = b.recent.get(key);
      if (prior !== undefined) return this.onRetry(b, m, prior);
      b.recent.set(key, b.seqNext);
      if (b.recent.size > this.limits.recentIds) b.recent.delete(b.recent.keys().next().value!);
    }
    const seq = b.seqNext++;
    this.ensureSeqs(b);
    const d: Pending = { seq, ts: m.ts, from: m.from, id: m.id, body: m.body, t0: m.t0, o: m.o, c: m.c };
    const tight = this.io.underPressure();
    const maxPending = tight ? Math.min(this.limits.maxPending, 64) : this.limits.maxPending;
    if (b.conn && b.mode === "live" && !b.socketBlocked && b.pending.length < maxPending) {
      this.forward(b, [d], false);
      b.pending.push(d);
      this.stats.forwardedLive++;
    } else if (b.conn && b.mode === "draining" && !tight && b.holdback.length < this.limits.holdback) {
      b.holdback.push(d);
    } else {
      if (b.mode === "live") b.mode = "draining"; // slow or too many unacked: serve from the store
      if (b.holdback.length) this.store(b, b.holdback.splice(0));
      this.store(b, [d]);
    }
  }

  /** A sender retried an id we have seen. Reply only with what is already true. */
  private onRetry(b: Box, m: RouteMsg, seq: number): void {
    this.stats.duplicates++;
    if (seq <= b.acked) return this.ackSender(m.o, m.c, m.id, "duplicate");
    const live = b.pending.find((p) => p.seq === seq) ?? b.holdback.find((p) => p.seq === seq);
    if (live) {
      // Still in flight: its eventual ack goes to the connection that retried.
      live.o = m.o;
      live.c = m.c;
      return;
    }
    // Stored (or being stored): the store's unique (recipient, sender, id) index makes this a
    // no-op insert, and the writer answers "duplicate" after its commit.
    this.append({
      t: "app",
      rows: [{ recipient: b.user, seq, sender: m.from, msgId: m.id, ts: m.ts, body: m.body }],
      o: [m.o],
      c: [m.c],
    });
  }

  private store(b: Box, items: Pending[]): void {
    if (items.length === 0) return;
    const rows: StoredRow[] = [];
    const o: number[] = [];
    const c: number[] = [];
    for (const d of items) {
      rows.push({ recipient: b.user, seq: d.seq, sender: d.from, msgId: d.id, ts: d.ts, body: d.body });
      o.push(d.o);
      c.push(d.c);
      if (d.seq > b.storedMax) b.storedMax = d.seq;
    }
    this.stats.stored += rows.length;
    b.appendedSinceFetch = true;
    this.append({ t: "app", rows, o, c });
  }

  private append(req: AppendReq): void {
    this.unconfirmed.push(req);
    this.unconfirmedBytes += appendBytes(req);
    this.io.toWriter(req);
  }

  /**
   * The writer restarted and lost whatever it had not committed. Replay unconfirmed appends (the
   * store ignores rows it already has) and re-issue reservations and page reads in flight.
   */
  writerRestarted(): void {
    for (const req of this.unconfirmed) this.io.toWriter(req);
    this.fetchesInFlight.clear(); // their replies died with the writer
    for (const b of this.boxes.values()) {
      if (b.reserving) this.io.toWriter({ t: "load", user: b.user, reserve: this.limits.seqBlock });
      if (b.fetching) this.issueFetch(b);
    }
    // Tokens of fetches for older connections were cleared without a reply to come: whoever
    // waited on those slots must not wait forever.
    this.pumpQueued();
  }

  private forward(b: Box, items: Delivery[], page: boolean): void {
    const conn = b.conn!;
    const last = items[items.length - 1]!;
    if (last.seq > b.cursor) b.cursor = last.seq;
    // Pending items also carry their origin (o, c); the socket shard ignores those fields, and
    // copying every delivery just to drop two small ints costs more than sending them.
    this.io.toShard(conn.shard, { t: "dlv", user: b.user, conn: conn.conn, items, page });
  }

  private ackSender(o: number, c: number, id: string, status: "delivered" | "stored" | "duplicate"): void {
    if (o >= 0) this.io.toShard(o, { t: "sent", conn: c, id, status });
  }

  // ---- connections ----

  private sameConn(b: Box | undefined, shard: number, conn: number): b is Box & { conn: Conn } {
    return !!b && !!b.conn && b.conn.shard === shard && b.conn.conn === conn;
  }

  private onAttach(m: AttachMsg): void {
    const b = this.box(m.user);
    if (b.conn && !(b.conn.shard === m.shard && b.conn.conn === m.conn)) {
      // Newest login wins: the older connection is closed with a reason.
      this.io.toShard(b.conn.shard, { t: "evict", user: b.user, conn: b.conn.conn, why: "replaced" });
      this.release(b);
    }
    b.conn = { shard: m.shard, conn: m.conn, v0: m.v0 };
    b.ackedAt = this.io.now();
    this.stats.online++;
    b.gen++;
    b.mode = "draining";
    b.socketBlocked = false;
    b.awaitingFlow = false;
    b.fetching = false;
    const resume = Math.min(m.resume, b.seqNext - 1);
    if (resume > b.acked) this.ackUpTo(b, resume);
    b.cursor = Math.max(resume, 0);
    this.pump(b);
  }

  private onDetach(m: DetachMsg): void {
    const b = this.boxes.get(m.user);
    if (!this.sameConn(b, m.shard, m.conn)) return;
    this.release(b);
  }

  /** The connection is gone: unacked live deliveries move to the store, presence goes offline. */
  private release(b: Box): void {
    this.drainQueue.delete(b);
    this.store(b, b.pending.splice(0));
    this.store(b, b.holdback.splice(0));
    b.conn = null;
    this.stats.online--;
    b.gen++;
    b.mode = "offline";
    b.fetching = false;
    b.awaitingFlow = false;
    b.socketBlocked = false;
    b.lastSeen = this.io.now();
    this.io.toWriter({ t: "seen", user: b.user, ts: b.lastSeen });
  }

  /** Shard k died: every user whose socket lived there is offline now. */
  shardDown(k: number): void {
    for (const b of this.boxes.values()) if (b.conn?.shard === k) this.release(b);
  }

  private onAck(m: AckMsg): void {
    const b = this.boxes.get(m.user);
    if (!this.sameConn(b, m.shard, m.conn)) return;
    this.ackUpTo(b, Math.min(m.seq, b.cursor));
    this.pump(b);
  }

  private ackUpTo(b: Box, n: number): void {
    if (n <= b.acked) return;
    b.acked = n;
    b.ackedAt = this.io.now();
    let i = 0;
    while (i < b.pending.length && b.pending[i]!.seq <= n) {
      const p = b.pending[i++]!;
      this.ackSender(p.o, p.c, p.id, "delivered");
    }
    if (i > 0) b.pending.splice(0, i);
    const del = b.storeUnknown ? n : Math.min(n, b.storedMax);
    if (del > b.deletedUpTo) {
      b.deletedUpTo = del;
      this.io.toWriter({ t: "del", user: b.user, upTo: del });
    }
  }

  private onFlow(m: FlowMsg): void {
    const b = this.boxes.get(m.user);
    if (!this.sameConn(b, m.shard, m.conn)) return;
    b.awaitingFlow = false;
    b.socketBlocked = !m.ready;
    if (!m.ready && b.mode === "live") b.mode = "draining";
    this.pump(b);
  }

  // ---- backlog drain ----

  /** Pulls the next backlog page if draining and nothing holds it back. */
  private pump(b: Box): void {
    if (!b.conn || b.mode !== "draining" || b.fetching || b.awaitingFlow || b.socketBlocked) return;
    if (b.pending.length >= this.limits.maxPending / 2) return; // wait for acks first
    // Bound the pages in flight per shard (fewer under memory pressure): a crowd reconnecting at
    // once must not pull every backlog into RAM together.
    if (this.fetchesInFlight.size >= this.fetchSlots()) {
      this.drainQueue.add(b);
      return;
    }
    this.drainQueue.delete(b);
    b.fetching = true;
    b.appendedSinceFetch = false;
    this.issueFetch(b);
  }

  private fetchSlots(): number {
    return this.io.underPressure() ? Math.min(4, this.limits.maxFetches) : this.limits.maxFetches;
  }

  private issueFetch(b: Box): void {
    this.fetchesInFlight.add(b.user + "\0" + b.gen);
    const maxBytes = this.io.underPressure() ? this.limits.pageBytes / 4 : this.limits.pageBytes;
    this.io.toWriter({ t: "fetch", user: b.user, after: b.cursor, limit: this.limits.pageSize, maxBytes, gen: b.gen });
  }

  /** A fetch finished (for this or an older connection): give its slot to a waiting drain. */
  private releaseFetch(user: string, gen: number): void {
    if (this.fetchesInFlight.delete(user + "\0" + gen)) this.pumpQueued();
  }

  /** Starts waiting drains while fetch slots are free. */
  private pumpQueued(): void {
    for (const next of this.drainQueue) {
      if (this.fetchesInFlight.size >= this.fetchSlots()) break;
      this.drainQueue.delete(next);
      this.pump(next);
    }
  }

  private onRows(m: RowsReply): void {
    this.releaseFetch(m.user, m.gen);
    const b = this.boxes.get(m.user);
    if (!b || !b.conn || m.gen !== b.gen) return;
    b.fetching = false;
    // Rows at or below the cursor were already forwarded on this connection.
    const rows = m.rows.filter((r) => r.seq > b.cursor);
    if (rows.length > 0) {
      this.forward(
        b,
        rows.map((r) => ({ seq: r.seq, ts: r.ts, from: r.sender, id: r.msgId, body: r.body, t0: 0 })),
        true,
      );
      b.awaitingFlow = true;
    }
    if (!m.more && !b.appendedSinceFetch) {
      b.mode = "live"; // caught up: everything after this is forwarded as it arrives
      b.storeUnknown = false;
      if (b.cursor > b.storedMax) b.storedMax = b.cursor;
      if (b.holdback.length) {
        const held = b.holdback.splice(0);
        this.forward(b, held, false);
        for (const d of held) b.pending.push(d);
        this.stats.forwardedLive += held.length;
      }
      return;
    }
    this.pump(b);
  }

  private onRejected(m: RejectedReply): void {
    const b = this.boxes.get(m.user);
    if (!b) return;
    const drop = new Set(m.seqs);
    for (const [k, s] of b.recent) if (drop.has(s)) b.recent.delete(k);
  }

  // ---- presence ----

  private onStatus(q: StatusQuery): void {
    const b = this.box(q.user);
    if (!b.loaded) b.statusWaiters.push(q);
    else this.replyStatus(b, q);
  }

  private replyStatus(b: Box, q: StatusQuery): void {
    this.io.toShard(q.shard, { t: "sta", req: q.req, user: b.user, online: b.conn !== null, lastSeen: b.lastSeen });
  }

  /**
   * Recipients that take deliveries but never ack hold `maxPending` messages in RAM; past the
   * timeout they are disconnected (their unacked messages move to the store on detach).
   */
  cutSlowConsumers(): number {
    const limit = this.io.now() - this.limits.slowTimeoutMs;
    let n = 0;
    for (const b of this.boxes.values()) {
      // Deliveries outstanding (forwarded beyond the last ack) and no ack progress for the timeout.
      if (!b.conn || b.cursor <= b.acked || b.ackedAt > limit) continue;
      this.io.toShard(b.conn.shard, { t: "evict", user: b.user, conn: b.conn.conn, why: "slow" });
      b.ackedAt = this.io.now(); // one eviction per timeout, even if the close is slow
      n++;
    }
    return n;
  }

  /**
   * Unacked live deliveries older than `ageMs` move to the store: RAM is freed and their senders
   * get "stored" now instead of waiting on a recipient that may never ack. They were already
   * written to the socket; a later ack deletes them from the store.
   */
  spillStalePending(ageMs: number): number {
    const cutoff = this.io.now() - ageMs;
    let n = 0;
    for (const b of this.boxes.values()) {
      let i = 0;
      while (i < b.pending.length && b.pending[i]!.ts <= cutoff) i++;
      if (i === 0) continue;
      this.store(b, b.pending.splice(0, i));
      n += i;
    }
    return n;
  }

  /** Forgets offline, idle boxes (their state is in the store) so memory tracks active users. */
  sweep(idleMs: number): number {
    const cutoff = this.io.now() - idleMs;
    let n = 0;
    for (const [u, b] of this.boxes) {
      if (b.conn || !b.loaded || b.reserving || b.waiting.length || b.pending.length || b.holdback.length) continue;
      if (b.touched > cutoff) continue;
      this.boxes.delete(u);
      n++;
    }
    this.stats.boxes = this.boxes.size;
    return n;
  }

  /** Shutdown: every connection is treated as gone so its unacked deliveries reach the store. */
  releaseAll(): void {
    for (const b of this.boxes.values()) if (b.conn) this.release(b);
  }

  isOnline(user: string): boolean {
    return !!this.boxes.get(user)?.conn;
  }
}

/** Approximate memory an append request holds until the writer confirms it. */
function appendBytes(req: AppendReq): number {
  let n = 0;
  for (const r of req.rows) n += r.body.byteLength + 96;
  return n;
}
