// Connection-side protocol handling on a shard: decode → authenticate → hand to the owner shard;
// and owner deliveries → encode → socket, with backpressure reported back as flow signals.

import { verifyToken } from "../auth/jwt.ts";
import type { Settings } from "../config/schema.ts";
import { log } from "../observe/log.ts";
import { type MetricsReader, SLOT_MAIN, type SlotMetrics } from "../observe/metrics.ts";
import {
  type ClientFrame,
  CloseCode,
  decodeClientMessage,
  encodeServerFrame,
  type Encoding,
  ProtocolError,
  type ServerFrame,
  userIdProblem,
} from "../protocol/index.ts";
import { V0StreamDecoder } from "../protocol/v0.ts";
import { ownerOf } from "../router/hash.ts";
import { TokenBucket } from "./rate.ts";
import type { DeliverMsg, SendErrMsg, SentMsg, ShardMsg, StatusReply } from "../router/wire.ts";

/** What a session needs from its socket, whether WebSocket or raw TCP. */
export interface Transport {
  /** >0 bytes written, -1 queued under backpressure, 0 dropped (connection unusable). */
  send(data: string | Uint8Array): number;
  buffered(): number;
  close(code: number, reason: string): void;
}

export interface Session {
  conn: number;
  t: Transport;
  tcp: V0StreamDecoder | null;
  user: string | null;
  proto: Encoding | undefined;
  acked: number; // highest seq the client acked: the resume point if our owner restarts
  blocked: boolean;
  blockedSince: number;
  flowOwed: boolean; // owner waits for a flow signal from us
  frames: TokenBucket;
  recentBytes: number; // bytes received since the last shedding check
  loginTimer: ReturnType<typeof setTimeout> | null;
  closed: boolean;
}

export interface SessionHost {
  readonly index: number;
  readonly shards: number;
  readonly settings: Settings;
  readonly metrics: SlotMetrics;
  readonly reader: MetricsReader;
  post(shard: number, m: ShardMsg): void;
}

const FATAL = new Set(["BAD_FRAME", "UNKNOWN_OP", "UNSUPPORTED"]);

export class Sessions {
  private readonly byConn = new Map<number, Session>();
  private readonly byUser = new Map<string, Session>();
  /** Per-user message buckets; kept across reconnects to this shard (bounded, see sweepBuckets). */
  private readonly userBuckets = new Map<string, TokenBucket>();
  private readonly statusWaiters = new Map<number, (r: StatusReply) => void>();
  private readonly sendWaiters = new Map<number, (r: SentMsg | SendErrMsg) => void>();
  private nextConn = 1;
  private nextReq = 1;
  private nextHttp = 1;
  private accepting = true;

  constructor(private readonly host: SessionHost) {}

  get count(): number {
    return this.byConn.size;
  }

  open(t: Transport, tcp: boolean): Session {
    const s: Session = {
      conn: this.nextConn++,
      t,
      tcp: tcp ? new V0StreamDecoder(this.host.settings.maxPayload) : null,
      user: null,
      proto: tcp ? "v0" : undefined,
      acked: 0,
      blocked: false,
      blockedSince: 0,
      flowOwed: false,
      frames: new TokenBucket(this.host.settings.rateFrames, this.host.settings.rateFrames * 2, performance.now()),
      recentBytes: 0,
      loginTimer: null,
      closed: false,
    };
    this.byConn.set(s.conn, s);
    this.host.metrics.set("conns", this.byConn.size);
    if (!this.accepting) {
      this.fail(s, "SHUTTING_DOWN", "server is shutting down", CloseCode.GOING_AWAY);
      return s;
    }
    s.loginTimer = setTimeout(() => {
      if (!s.user && !s.closed) this.fail(s, "NOT_LOGGED_IN", "no login within the login timeout", CloseCode.IDLE);
    }, this.host.settings.loginTimeout);
    return s;
  }

  onData(s: Session, data: string | Uint8Array): void {
    if (s.closed) return;
    const m = this.host.metrics;
    const size = typeof data === "string" ? data.length : data.byteLength;
    m.add("framesIn");
    m.add("bytesIn", size);
    s.recentBytes += size;
    if (!s.frames.take(performance.now())) {
      // Past its burst a connection is closed, never silently thinned: dropping frames would lose
      // sends and acks without an answer. The SDK reconnects and resends unacked sends (same ids).
      m.add("rateLimited");
      const proto = s.proto ?? (typeof data === "string" ? "json" : "v1");
      return this.fail(s, "RATE_LIMITED", "frame rate limit exceeded", CloseCode.POLICY, proto);
    }
    let frames: ClientFrame[];
    try {
      if (s.tcp) frames = s.tcp.push(data as Uint8Array);
      else frames = decodeClientMessage(data, s.proto, this.host.settings.maxPayload);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      m.add("protocolErrors");
      const replyProto = s.proto ?? (typeof data === "string" ? "json" : "v1");
      const fatal = FATAL.has(e.code) || replyProto === "v0" || s.tcp !== null;
      if (fatal) {
        this.fail(s, e.code, e.message, e.code === "PAYLOAD_TOO_LARGE" ? CloseCode.TOO_BIG : e.close, replyProto);
      } else this.reply(s, { op: "error", code: e.code, reason: e.message }, replyProto);
      return;
    }
    for (const f of frames) {
      if (s.closed) return;
      this.onFrame(s, f);
    }
  }

  private onFrame(s: Session, f: ClientFrame): void {
    if (f.op === "login") return this.login(s, f);
    if (f.op === "ping") return this.reply(s, { op: "pong" }, s.proto ?? "v1");
    if (!s.user) return this.fail(s, "NOT_LOGGED_IN", `${f.op} before login`, CloseCode.POLICY, s.proto ?? "v1");
    const user = s.user;
    switch (f.op) {
      case "send":
        return this.route(s, user, f.to, f.id, f.body);
      case "batch":
        for (const body of f.bodies) this.route(s, user, f.to, "", body);
        return;
      case "ack":
        if (f.seq <= s.acked) return;
        s.acked = f.seq;
        this.host.post(ownerOf(user, this.host.shards), {
          t: "ack",
          user,
          shard: this.host.index,
          conn: s.conn,
          seq: f.seq,
        });
        return;
      case "ack0":
        return; // v0 acks carry nothing we act on: a v0 row is gone once written
      case "status": {
        const problem = userIdProblem(f.user);
        if (problem) return this.reply(s, { op: "error", code: "BAD_USER", reason: problem });
        this.queryStatus(
          f.user,
          (r) => this.reply(s, { op: "status", user: r.user, online: r.online, lastSeen: r.lastSeen }),
        );
        return;
      }
    }
  }

  private login(s: Session, f: Extract<ClientFrame, { op: "login" }>): void {
    if (s.user) {
      return this.reply(
        s,
        { op: "error", code: "ALREADY_LOGGED_IN", reason: `already logged in as ${s.user}` },
        s.proto ?? f.proto,
      );
    }
    const proto = s.tcp ? "v0" : f.proto;
    const problem = userIdProblem(f.user);
    if (problem) return this.fail(s, "BAD_USER", problem, CloseCode.POLICY, proto);
    const secret = this.host.settings.jwtSecret;
    if (secret && !(proto === "v0" && this.host.settings.allowV0)) {
      const check = f.token ? verifyToken(secret, f.token) : {
        ok: false as const,
        reason: proto === "v0" ? "v0 logins carry no token and --allow-v0 is off" : "token required",
      };
      if (!check.ok || check.sub !== f.user) {
        this.host.metrics.add("authFailures");
        const reason = check.ok ? `token is for ${check.sub}, not ${f.user}` : check.reason;
        return this.fail(s, "AUTH_FAILED", reason, CloseCode.POLICY, proto);
      }
    }
    if (s.loginTimer) clearTimeout(s.loginTimer);
    s.loginTimer = null;
    s.user = f.user;
    s.proto = proto;
    this.byUser.set(f.user, s);
    this.host.metrics.add("logins");
    this.reply(s, { op: "login_ok", user: f.user, now: Date.now() });
    s.acked = f.resume ?? 0;
    this.attach(s);
  }

  private attach(s: Session): void {
    const user = s.user!;
    this.host.post(ownerOf(user, this.host.shards), {
      t: "att",
      user,
      shard: this.host.index,
      conn: s.conn,
      v0: s.proto === "v0",
      resume: s.acked,
    });
  }

  private route(s: Session, from: string, to: string, id: string, body: Uint8Array): void {
    const problem = userIdProblem(to);
    if (problem) {
      return this.reply(s, { op: "error", code: "BAD_USER", reason: `target: ${problem}`, ...(id ? { id } : {}) });
    }
    const busy = this.busyReason();
    if (busy) {
      this.host.metrics.add("busyRejects");
      return this.reply(s, { op: "error", code: "SERVER_BUSY", reason: busy, ...(id ? { id } : {}) });
    }
    if (!this.userBucket(from).take(performance.now())) {
      this.host.metrics.add("rateLimited");
      return this.reply(s, {
        op: "error",
        code: "RATE_LIMITED",
        reason: "message rate limit exceeded; retry later",
        ...(id ? { id } : {}),
      });
    }
    // v0 senders cannot receive acks: origin -1 tells the owner none is due.
    this.emitRoute(from, to, id, body, s.proto === "v0" ? -1 : this.host.index, s.conn);
  }

  /**
   * Back-pressure on senders: when the store is behind (bytes on their way to SQLite past the
   * budget) or memory is past the refuse watermark, new sends are refused with SERVER_BUSY; the
   * SDK keeps them and retries with backoff, so nothing is lost and RAM stays bounded.
   */
  private busyReason(): string | null {
    const r = this.host.reader;
    if (r.at(SLOT_MAIN, "memPressure") >= 2) return "server under memory pressure; retry later";
    if (r.sum("storeBacklogBytes") > this.host.settings.storeBacklogMb * 1048576) return "store is behind; retry later";
    return null;
  }

  private userBucket(user: string): TokenBucket {
    let b = this.userBuckets.get(user);
    if (!b) {
      const st = this.host.settings;
      this.userBuckets.set(user, b = new TokenBucket(st.rateMsgs, st.rateBurst, performance.now()));
    }
    return b;
  }

  /**
   * Once a second: disconnect recipients that stayed backed up too long, forget idle buckets, and
   * under memory pressure shed the heaviest recent sender (it may reconnect once pressure drops).
   */
  housekeeping(pressure: number): void {
    const now = performance.now();
    const timeout = this.host.settings.slowConsumerTimeout;
    let heaviest: Session | null = null;
    for (const s of this.byConn.values()) {
      if (s.blocked && now - s.blockedSince > timeout) {
        this.host.metrics.add("slowDisconnects");
        this.fail(
          s,
          "SERVER_BUSY",
          `not reading for ${Math.round((now - s.blockedSince) / 1000)} s`,
          CloseCode.SLOW_CONSUMER,
        );
        continue;
      }
      if (!heaviest || s.recentBytes > heaviest.recentBytes) heaviest = s;
    }
    if (pressure >= 2 && heaviest && heaviest.recentBytes > 0) {
      this.host.metrics.add("shedConnections");
      this.fail(heaviest, "SERVER_BUSY", "server under memory pressure; retry later", CloseCode.TRY_AGAIN);
    }
    for (const s of this.byConn.values()) s.recentBytes = 0;
    if (this.userBuckets.size > 2 * this.byUser.size + 1000) {
      for (const u of this.userBuckets.keys()) if (!this.byUser.has(u)) this.userBuckets.delete(u);
    }
  }

  // ---- messages from owners and the writer ----

  handle(m: ShardMsg): void {
    switch (m.t) {
      case "dlv":
        return this.deliver(m);
      case "evict": {
        const s = this.byConn.get(m.conn);
        if (!s || s.user !== m.user) return;
        if (m.why === "slow") {
          this.host.metrics.add("slowDisconnects");
          this.fail(s, "SERVER_BUSY", "too many unacked messages for too long", CloseCode.SLOW_CONSUMER);
        } else this.fail(s, "REPLACED", "logged in elsewhere", CloseCode.REPLACED);
        return;
      }
      case "sent":
      case "serr": {
        if (m.conn < 0) {
          const w = this.sendWaiters.get(-m.conn);
          this.sendWaiters.delete(-m.conn);
          w?.(m);
          return;
        }
        const s = this.byConn.get(m.conn);
        if (!s) return; // the sender left; its SDK retries and is deduplicated
        if (m.t === "sent") {
          this.host.metrics.add("acksToSenders");
          this.reply(s, { op: "sent", id: m.id, status: m.status });
        } else this.reply(s, { op: "error", code: m.code, reason: m.reason, id: m.id });
        return;
      }
      case "sta": {
        const w = this.statusWaiters.get(m.req);
        this.statusWaiters.delete(m.req);
        w?.(m);
        return;
      }
    }
  }

  private deliver(m: DeliverMsg): void {
    const s = this.byConn.get(m.conn);
    if (!s || s.closed || s.user !== m.user) return; // gone: the owner hears our detach
    const metrics = this.host.metrics;
    const now = performance.timeOrigin + performance.now();
    let ok = true;
    let last = 0;
    for (const d of m.items) {
      const data = encodeServerFrame(
        { op: "deliver", seq: d.seq, ts: d.ts, from: d.from, id: d.id, body: d.body },
        s.proto!,
      );
      if (data === null) continue;
      const r = s.t.send(data);
      if (r === 0) {
        // Dropped: the socket is unusable. Closing makes the owner store what is unacked.
        ok = false;
        break;
      }
      last = d.seq;
      if (d.t0 > 0) {
        metrics.add("deliveredLive");
        metrics.latency(now - d.t0);
      } else metrics.add("deliveredStored");
    }
    if (!ok) return this.fail(s, "INTERNAL", "socket dropped a write", CloseCode.INTERNAL);
    const owner = ownerOf(m.user, this.host.shards);
    // v0 cannot ack: the seed's rule is that a row is gone once written to the socket.
    if (s.proto === "v0" && last > 0) {
      this.host.post(owner, { t: "ack", user: m.user, shard: this.host.index, conn: s.conn, seq: last });
    }
    const blocked = s.t.buffered() > this.host.settings.slowConsumerBytes;
    if (blocked && !s.blocked) s.blockedSince = performance.now();
    if (m.page) {
      if (blocked) s.flowOwed = true;
      else this.host.post(owner, { t: "flow", user: m.user, shard: this.host.index, conn: s.conn, ready: true });
    } else if (blocked && !s.blocked) {
      this.host.post(owner, { t: "flow", user: m.user, shard: this.host.index, conn: s.conn, ready: false });
      s.flowOwed = true;
    }
    s.blocked = blocked;
  }

  /** The socket drained: tell the owner it may send again. */
  onDrain(s: Session): void {
    if (!s.user || s.closed || !s.flowOwed) return;
    if (s.t.buffered() > this.host.settings.slowConsumerBytes / 2) return;
    s.flowOwed = false;
    s.blocked = false;
    this.host.post(ownerOf(s.user, this.host.shards), {
      t: "flow",
      user: s.user,
      shard: this.host.index,
      conn: s.conn,
      ready: true,
    });
  }

  onClose(s: Session): void {
    if (!this.byConn.delete(s.conn)) return;
    s.closed = true;
    if (s.loginTimer) clearTimeout(s.loginTimer);
    this.host.metrics.set("conns", this.byConn.size);
    if (s.user) {
      if (this.byUser.get(s.user) === s) this.byUser.delete(s.user);
      this.host.post(ownerOf(s.user, this.host.shards), {
        t: "det",
        user: s.user,
        shard: this.host.index,
        conn: s.conn,
      });
    }
  }

  // ---- helpers ----

  reply(s: Session, f: ServerFrame, proto: Encoding | undefined = s.proto): void {
    if (s.closed) return;
    const data = encodeServerFrame(f, proto ?? "v1");
    if (data !== null) s.t.send(data);
  }

  private fail(s: Session, code: string, reason: string, close: number, proto?: Encoding): void {
    if (s.closed) return;
    this.reply(s, { op: "error", code, reason }, proto ?? s.proto);
    log.debug("closing connection", { conn: s.conn, user: s.user ?? "-", code, reason });
    s.t.close(close, reason.slice(0, 120));
  }

  queryStatus(user: string, done: (r: StatusReply) => void): void {
    const req = this.nextReq++;
    this.statusWaiters.set(req, done);
    this.host.post(ownerOf(user, this.host.shards), { t: "stq", user, shard: this.host.index, req });
  }

  /** Hands an accepted message to its recipient's owner, stamped with the receive time. */
  private emitRoute(from: string, to: string, id: string, body: Uint8Array, o: number, c: number): void {
    this.host.metrics.add("msgsIn");
    const now = performance.timeOrigin + performance.now();
    this.host.post(ownerOf(to, this.host.shards), {
      t: "route",
      to,
      from,
      id,
      body,
      ts: Math.floor(now),
      t0: now,
      o,
      c,
    });
  }

  /** Server-side send (HTTP API): the ack comes back like a connection's, to a negative conn id. */
  sendAs(from: string, to: string, id: string, body: Uint8Array, done: (r: SentMsg | SendErrMsg) => void): number {
    const h = this.nextHttp++;
    this.sendWaiters.set(h, done);
    this.emitRoute(from, to, id, body, this.host.index, -h);
    return h;
  }

  forgetSend(h: number): void {
    this.sendWaiters.delete(h);
  }

  /** Owner shard k restarted: it lost its state, so re-attach our users it owns. */
  reattachOwnedBy(k: number): void {
    for (const s of this.byUser.values()) if (ownerOf(s.user!, this.host.shards) === k) this.attach(s);
  }

  closeAll(code: number, reason: string): void {
    this.accepting = false;
    for (const s of [...this.byConn.values()]) this.fail(s, "SHUTTING_DOWN", reason, code);
  }
}
