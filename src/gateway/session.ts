// Connection-side protocol handling on a shard: decode → authenticate → hand to the owner shard;
// and owner deliveries → encode → socket, with back-pressure reported back as flow signals.
//
// A session has one connection state, changed only by `moveTo`:
//
//   state          event                                     next
//   awaitingLogin  login accepted                            open
//   awaitingLogin  bad login, bad frame, login timeout       closing   (error frame, then close)
//   open           v0 login accepted (any user)              open      (user switch: the previous
//                                                                       user's owner hears a detach)
//   open           fatal frame, eviction, slow, shed         closing
//   open           v0 message refused (inbox full, target)   closing   (close code and reason)
//   any            the socket closed                         closed    (owner hears a detach)
//
// Frames are read only in `awaitingLogin` and `open`; nothing is written after `closing`.
// Flow towards the owner is a second, independent state: `clear`, or `owed` while the socket is
// backed up past slowConsumerBytes (the owner waits for one flow-ready once it drains), or `page`
// while a backlog page's flow-ready waits for the socket to drain to PAGE_FLOW_RESUME_BYTES.
// A v0 sender that must wait (see v0Wait) is a third: its socket is paused and the packets read
// before the pause took effect are `held`, in order, until the condition clears (v0 has no error
// frame and no acks, so waiting is the only answer that loses nothing).

import type { TokenCheck } from "../auth/jwt.ts";
import { authEnabled, TokenVerifier } from "../auth/verifier.ts";
import { holdFrames, MAX_HELD_FRAMES, releaseHeld } from "./login-hold.ts";
import { LoginDeadlines } from "./login-deadlines.ts";
import type { Settings } from "../config/schema.ts";
import { log } from "../observe/log.ts";
import { openStamp } from "../router/login-order.ts";
import { ORDER_TRACE, orderTrace } from "../observe/order-trace.ts";
import type { SlotMetrics } from "../observe/metrics.ts";
import type { Signals } from "../observe/signals.ts";
import { type Disconnect, Disconnects, protocolDisconnect } from "../protocol/disconnect.ts";
import {
  type ClientFrame,
  decodeClientMessage,
  encodeServerFrame,
  type Encoding,
  ProtocolError,
  type ServerFrame,
  userIdProblem,
} from "../protocol/index.ts";
import { V0StreamDecoder } from "../protocol/v0.ts";
import {
  encodeDeliveries,
  encodeSent,
  V1_FLAG_BUNDLE,
  V1_FLAG_ORDERED,
  V1_KNOWN_FLAGS,
} from "../protocol/v1-bundle.ts";
import { SENT_STATUS_BYTE } from "../protocol/v1.ts";
import { bundled, Outbox } from "./outbox.ts";
import { ConnTable } from "./conn-table.ts";
import { stageProbe } from "../observe/stage-probe.ts";
import { FlowRecheck } from "./flow-recheck.ts";
import { writeFramePage } from "./page-writer.ts";
import { type FramePage, pageDone } from "../router/frame-page.ts";
import { ownerOf } from "../router/hash.ts";
import {
  type DeliverMsg,
  type Delivery,
  type EvictMsg,
  type PortMsg,
  refusalsOnly,
  type RouteMsg,
  type SendErrorMsg,
  type SentMsg,
  type SessionMsg,
  type StatusReply,
} from "../router/wire.ts";
import { assertNever } from "../assert.ts";
import {
  PAGE_FLOW_RESUME_BYTES,
  V0_HELD_FRAMES_MAX,
  V0_REFUSAL_LOG_EVERY_MS,
  V0_RETRY_EVERY_MS,
  V0_STATUS_IN_FLIGHT_MAX,
  WS_FRAME_SLACK_BYTES,
} from "../limits.ts";
import { RateLimitedLog } from "../observe/ratelog.ts";
import { refilled, TokenBucket } from "./rate.ts";
import { RefusalFence, RETRYABLE_REFUSALS } from "./refusal-fence.ts";
import { type InFlight, SendChain, SLOW_ANSWER_MS } from "./send-chain.ts";
import { AdminRelay } from "./admin-relay.ts";
import { corkedOk, type Transport } from "./transports.ts";

/** A v0 sender's packets read while it must wait (see v0Wait): made on its first wait, dropped after. */
interface V0Held {
  frames: ClientFrame[]; // in order
  at: number; // index of the next one to run (a queue without shifting)
  debt: boolean; // they came in over the frame rate
}

export type SessionState = "awaitingLogin" | "open" | "closing" | "closed";
export type FlowState = "clear" | "owed" | "page";

const TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  awaitingLogin: ["open", "closing", "closed"],
  open: ["open", "closing", "closed"],
  closing: ["closed"],
  closed: [],
};

export interface Session {
  readonly conn: number;
  readonly t: Transport;
  readonly tcp: V0StreamDecoder | null;
  state: SessionState;
  user: string | null;
  proto: Encoding | undefined;
  acked: number; // highest seq the client acked: the resume point if our owner restarts
  opened: number; // when the socket opened, on the process's shared clock: orders logins (router/login-order.ts)
  flow: FlowState;
  frameTokens: number; // the frame-rate bucket, inline (rate.ts; no bucket object per connection)
  frameAt: number; // when frameTokens was last refilled
  /**
   * Sends routed for this connection and not yet answered, in send order (v1/JSON ids only). If
   * the owner thread of their recipient dies, they are routed again, in order, when it is back,
   * so later sends cannot overtake one that died with it (per-sender order).
   */
  unsettled: Map<string, RouteMsg> | null; // null while none for a second (an idle connection holds no Map)
  /** Each send's predecessor to the same recipient, until answered for good (send-chain.ts); null while none. */
  chain: SendChain | null;
  recentBytes: number; // bytes received since the last shedding check
  /** What few connections use (see SessionRare); null until one of them is needed. */
  rare: SessionRare | null;
  /** Frames that arrived while the login is verified asynchronously: run in order after it. */
  loginHeld?: ClientFrame[] | null;
  /**
   * The v1 LOGIN flags granted (protocol/v1-bundle.ts; 0 for v0 and JSON), one number for both
   * (18 fields, not 19: JSC's 160-byte size class, not 224, issue 14). V1_FLAG_BUNDLE: frames leave
   * through the outbox and client bundles are read (see bundled()). V1_FLAG_ORDERED: a send refused
   * for now stays linked until answered for good (send-chain.ts).
   */
  flags: number;
  /** Outbox queue of this turn (see outbox.ts); null when empty. */
  out: Uint8Array[] | null;
  outBytes: number;
}

/**
 * A session's seldom-used state, in an object made on first use: an idle connection, which
 * never needs it, holds three fields fewer (issue 14). Once made it stays (no churn).
 */
interface SessionRare {
  held: V0Held | null; // v0: packets waiting while the socket is paused (null if none)
  statusInFlight: number; // status queries sent to owners and not yet answered
  blockedSince: number; // when flow became `owed`
  /** Recipients whose later sends wait for the retry of a refused one (refusal-fence.ts); null until a refusal. */
  fence: RefusalFence | null;
}

/** A send refused behind a fence counts as a refusal of its fence's code. */
const FENCED_METRIC: Readonly<Record<string, "rateLimited" | "busyRejects" | "storeFullRejects">> = {
  RATE_LIMITED: "rateLimited",
  SERVER_BUSY: "busyRejects",
  STORE_FULL: "storeFullRejects",
};

/** How each owner eviction closes the connection. */
const EVICTIONS: Record<Exclude<EvictMsg["why"], "moved">, Disconnect> = {
  replaced: Disconnects.replaced,
  slow: Disconnects.notAcking,
  admin: Disconnects.admin,
  resync: Disconnects.resync,
};

export interface SessionHost {
  readonly index: number;
  readonly shards: number;
  readonly settings: Settings;
  readonly metrics: SlotMetrics;
  readonly signals: Signals;
  post(shard: number, m: PortMsg): void;
  /** Where a user's owner lives when it is not `ownerOf(user, shards)` (cluster mode). */
  ownerOf?(user: string): number;
  /** Cluster: the owner under the last view even while cut off (`ownerOf` is -1 then): where our routes went. */
  placedOwnerOf?(user: string): number;
  /** Cluster: false while shard k's node is back in our view but k has not said it started (cluster/peer-starts.ts). */
  routable?(k: number): boolean;
}

const deliverFrame = (d: Delivery): ServerFrame => ({
  op: "deliver",
  seq: d.seq,
  ts: d.ts,
  from: d.from,
  id: d.id,
  body: d.body,
});

/** Epoch ms at performance.now() = 0, read once (a getter call per message otherwise). */
const TIME_ORIGIN = performance.timeOrigin;

/** A connection's frame-rate burst: this many seconds of `rateFrames`. */
const FRAME_BURST_SECONDS = 2;

/** The connection's held v0 packets, made on first use. */
const heldOf = (s: Session): V0Held => rareOf(s).held ??= { frames: [], at: 0, debt: false };

/** The session's seldom-used state, made on first use. */
const rareOf = (s: Session): SessionRare => s.rare ??= { held: null, statusInFlight: 0, blockedSince: 0, fence: null };

/** Decode errors that close the connection even on v1/JSON (the stream cannot be trusted). */
const FATAL = new Set(["BAD_FRAME", "UNKNOWN_OP", "UNSUPPORTED"]);

export class Sessions {
  private readonly byConn = new ConnTable<Session>();
  private readonly byUser = new Map<string, Session>();
  /** Per-user message buckets; kept across reconnects to this shard (bounded, see housekeeping). */
  private readonly userBuckets = new Map<string, TokenBucket>();
  private readonly statusWaiters = new Map<number, (r: StatusReply) => void>();
  private readonly sendWaiters = new Map<number, (r: SentMsg | SendErrorMsg) => void>();
  private nextReq = 1;
  /** Where the next sweepChains slice starts (a ConnTable slot). */
  private sweepSlot = 1;
  private nextHttp = 1;
  private accepting = true;
  /** v0 senders whose socket is paused, retried every V0_RETRY_EVERY_MS while any wait. */
  private readonly paused = new Set<Session>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly refusalLog = new RateLimitedLog(V0_REFUSAL_LOG_EVERY_MS);
  /** One per shard: logins and the HTTP API share its key cache. */
  readonly verifier: TokenVerifier | null;

  /** Admin API requests from this shard's HTTP routes to owner shards. */
  readonly admin: AdminRelay;

  /** Connections not logged in yet, closed at their login deadline: one timer for all of them. */
  private readonly loginDeadlines = new LoginDeadlines<Session>((s) => {
    if (s.state === "awaitingLogin") this.disconnect(s, Disconnects.loginTimeout);
  });

  /** Flows waiting for a drain event that may never come (flow-recheck.ts): polled until clear. */
  private readonly flowRecheck = new FlowRecheck<Session>((s) => {
    this.onDrain(s);
    return s.state === "open" && s.flow !== "clear";
  });

  /** One message per turn for connections granted bundles. */
  private readonly outbox = new Outbox<Session>((s) => this.disconnect(s, Disconnects.socketDropped));

  constructor(private readonly host: SessionHost) {
    this.admin = new AdminRelay(host);
    this.verifier = authEnabled(host.settings) ? new TokenVerifier(host.settings) : null;
  }

  get count(): number {
    return this.byConn.size;
  }

  /** Takes one token of the connection's frame-rate bucket if it has one (rateFrames 0: unlimited). */
  private takeFrame(s: Session, now: number): boolean {
    const rate = this.host.settings.rateFrames;
    if (rate <= 0) return true;
    const tokens = refilled(s.frameTokens, s.frameAt, now, rate, rate * FRAME_BURST_SECONDS);
    s.frameAt = now;
    const ok = tokens >= 1;
    s.frameTokens = ok ? tokens - 1 : tokens;
    return ok;
  }

  private moveTo(s: Session, next: SessionState): void {
    if (!TRANSITIONS[s.state].includes(next)) throw new Error(`session: ${s.state} → ${next} is not a transition`);
    s.state = next;
  }

  open(t: Transport, tcp: boolean): Session {
    const st = this.host.settings;
    const s: Session = {
      conn: this.byConn.nextNumber(),
      t,
      tcp: tcp ? new V0StreamDecoder(st.maxPayload) : null,
      state: "awaitingLogin",
      user: null,
      proto: tcp ? "v0" : undefined,
      acked: 0,
      opened: openStamp(), // alike in every shard thread (router/login-order.ts)
      flow: "clear",
      frameTokens: st.rateFrames * FRAME_BURST_SECONDS,
      frameAt: performance.now(),
      unsettled: null,
      chain: null,
      recentBytes: 0,
      rare: null,
      flags: 0,
      out: null,
      outBytes: 0,
    };
    this.byConn.add(s);
    this.host.metrics.set("conns", this.byConn.size);
    if (!this.accepting) {
      this.disconnect(s, Disconnects.shuttingDown);
      return s;
    }
    this.loginDeadlines.add(s, st.loginTimeout);
    return s;
  }

  onData(s: Session, data: string | Uint8Array): void {
    if (s.state !== "awaitingLogin" && s.state !== "open") return;
    const m = this.host.metrics;
    const size = typeof data === "string" ? data.length : data.byteLength;
    m.add("framesIn");
    m.add("bytesIn", size);
    s.recentBytes += size;
    const replyProto = s.proto ?? (typeof data === "string" ? "json" : "v1");
    const v0Open = s.proto === "v0" && s.state === "open";
    const now = performance.now();
    stageProbe?.read(now);
    this.outbox.tick(now); // frames queued early in a long turn do not wait for all of it
    const overRate = !this.takeFrame(s, now);
    if (overRate && !v0Open) {
      // Past its burst a connection is closed, never silently thinned: dropping frames would lose
      // sends and acks without an answer. The SDK reconnects and resends unacked sends (same ids).
      m.add("rateLimited");
      return this.disconnect(s, Disconnects.frameRate, undefined, replyProto);
    }
    let frames: ClientFrame[];
    try {
      frames = s.tcp
        ? s.tcp.push(data as Uint8Array)
        : decodeClientMessage(data, s.proto, this.host.settings.maxPayload, bundled(s));
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      m.add("protocolErrors");
      const fatal = FATAL.has(e.code) || replyProto === "v0" || s.tcp !== null;
      if (fatal) this.disconnect(s, protocolDisconnect(e.code, e.close, e.message), e.message, replyProto);
      else this.reply(s, { op: "error", code: e.code, reason: e.message }, replyProto);
      return;
    }
    if (overRate) heldOf(s).debt = true; // v0: slowed like any other wait, never closed for it
    this.run(s, frames);
  }

  /** Runs frames in order; a v0 connection that must wait holds the rest and pauses its socket. */
  private run(s: Session, frames: ClientFrame[]): void {
    if (this.paused.has(s) || s.rare?.held?.debt) return this.hold(s, frames);
    for (let i = 0; i < frames.length; i++) {
      if (s.state !== "awaitingLogin" && s.state !== "open") return;
      const f = frames[i]!;
      if (s.loginHeld) {
        if (s.loginHeld.length >= MAX_HELD_FRAMES) {
          return this.disconnect(s, Disconnects.frameRate, "too many frames before the login was decided");
        }
        s.loginHeld.push(f);
        continue;
      }
      if (s.proto !== "v0" || s.state !== "open") {
        this.onFrame(s, f);
        continue;
      }
      const rest = this.runV0(s, f);
      if (rest) return this.hold(s, [rest, ...frames.slice(i + 1)]);
    }
  }

  /** One frame of a logged-in v0 connection; returns what is left of it when it must wait. */
  private runV0(s: Session, f: ClientFrame): ClientFrame | null {
    if (f.op !== "batch") return this.v0Wait(s, f) ? f : (this.onFrame(s, f), null);
    for (let i = 0; i < f.bodies.length; i++) {
      if (s.state !== "open") return null;
      const one: ClientFrame = { op: "send", to: f.to, id: "", body: f.bodies[i]! };
      if (this.v0Wait(s, one)) return { op: "batch", to: f.to, bodies: f.bodies.slice(i) };
      this.onFrame(s, one);
    }
    return null;
  }

  /**
   * Whether a v0 frame must wait, taking the send's rate token when it may go. A v0 sender cannot
   * be told "busy" or "rate limited" (no error frame, no acks), so instead of refusing we stop
   * reading its socket until the store catches up, memory is back below the refuse watermark,
   * its rate bucket refills, or its status queries are answered.
   */
  private v0Wait(s: Session, f: ClientFrame): boolean {
    if (f.op === "status") return (s.rare?.statusInFlight ?? 0) >= V0_STATUS_IN_FLIGHT_MAX;
    if (f.op !== "send") return false;
    // The store takes nothing now (full, or behind): the owner refuses what v1 senders would
    // store; a v0 sender cannot be told, so it waits.
    if (this.busyReason() !== null || this.host.signals.storeRefusal(this.host.settings.storeBacklogMb)) return true;
    return userIdProblem(f.to) === null && !this.userBucket(s.user!).take(performance.now());
  }

  private hold(s: Session, frames: ClientFrame[]): void {
    const h = heldOf(s);
    for (const f of frames) h.frames.push(f);
    const n = h.frames.length - h.at;
    if (n > V0_HELD_FRAMES_MAX) {
      this.host.metrics.add("v0NotPausingCloses");
      return this.refuseV0(s, Disconnects.v0NotPausing, `${n} packets read while paused`);
    }
    if (this.paused.has(s)) return;
    this.paused.add(s);
    this.host.metrics.add("v0Pauses");
    this.host.metrics.set("v0Paused", this.paused.size);
    s.t.pause();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.paused.size === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryPaused();
    }, V0_RETRY_EVERY_MS);
  }

  /** Paused v0 senders try their held packets again; those that get through resume reading. */
  retryPaused(): void {
    let held = 0;
    for (const s of [...this.paused]) held += this.retry(s);
    this.host.metrics.set("v0Paused", this.paused.size);
    this.host.metrics.set("v0HeldFrames", held);
    this.scheduleRetry();
  }

  /** One paused sender tries again; returns how many packets it still holds. */
  private retry(s: Session): number {
    if (s.state !== "open") {
      this.paused.delete(s);
      return 0;
    }
    const h = s.rare?.held ?? null;
    if (h !== null) {
      if (h.debt && !this.takeFrame(s, performance.now())) return h.frames.length - h.at;
      h.debt = false;
      while (h.at < h.frames.length) {
        if (s.state !== "open") return 0; // a held packet was refused: the connection is closing
        const rest = this.runV0(s, h.frames[h.at]!);
        if (rest) {
          h.frames[h.at] = rest;
          if (h.at > 1024 && h.at * 2 > h.frames.length) {
            h.frames = h.frames.slice(h.at); // compact now and then, not on every packet
            h.at = 0;
          }
          return h.frames.length - h.at;
        }
        h.at++;
      }
    }
    if (s.rare) s.rare.held = null;
    this.paused.delete(s);
    this.host.metrics.set("v0Paused", this.paused.size);
    if (s.state === "open") s.t.resume();
    return 0;
  }

  /**
   * v0 has no error frame: a v0 message that must be refused closes the connection with the
   * reason (WebSocket close code and text; TCP close), counted, with one rate-limited log line.
   */
  private refuseV0(s: Session, d: Disconnect, reason: string): void {
    this.refusalLog.warn(d.code, "v0 message refused, connection closed", {
      conn: s.conn,
      user: s.user ?? "-",
      code: d.code,
      reason,
    });
    this.disconnect(s, d, reason);
  }

  private onFrame(s: Session, f: ClientFrame): void {
    if (f.op === "login") return this.login(s, f);
    if (f.op === "ping") return this.reply(s, { op: "pong" }, s.proto ?? "v1");
    if (s.state !== "open") return this.disconnect(s, Disconnects.notLoggedIn, `${f.op} before login`, s.proto ?? "v1");
    const user = s.user!;
    switch (f.op) {
      case "send":
        return this.route(s, user, f.to, f.id, f.body);
      case "batch":
        for (const body of f.bodies) this.route(s, user, f.to, "", body);
        return;
      case "ack":
        if (f.seq <= s.acked) return;
        s.acked = f.seq;
        this.toOwner(user, { t: "ack", user, shard: this.host.index, conn: s.conn, seq: f.seq });
        return;
      case "ack0":
        return; // v0 acks carry nothing we act on: a v0 row is gone once written
      case "status":
        return this.onStatusFrame(s, f.user);
      default:
        return assertNever(f, "client frame");
    }
  }

  private onStatusFrame(s: Session, user: string): void {
    const problem = userIdProblem(user);
    if (problem) {
      // v0 has no error frame: no such user can ever log in, so it is offline and never seen.
      if (s.proto === "v0") return this.reply(s, { op: "status", user, online: false, lastSeen: 0 });
      return this.reply(s, { op: "error", code: "BAD_USER", reason: problem });
    }
    const rare = rareOf(s);
    rare.statusInFlight++;
    this.queryStatus(user, (r) => {
      rare.statusInFlight--;
      this.reply(s, { op: "status", user: r.user, online: r.online, lastSeen: r.lastSeen });
      // A v0 sender paused on unanswered queries goes on as soon as one is answered.
      if (rare.statusInFlight === V0_STATUS_IN_FLIGHT_MAX - 1 && this.paused.has(s)) this.retry(s);
    });
  }

  private login(s: Session, f: Extract<ClientFrame, { op: "login" }>): void {
    if (s.state === "open" && s.proto !== "v0") {
      const reason = `already logged in as ${s.user}`;
      return this.reply(s, { op: "error", code: "ALREADY_LOGGED_IN", reason }, s.proto ?? f.proto);
    }
    const proto = s.tcp ? "v0" : f.proto;
    const problem = userIdProblem(f.user);
    if (problem) return this.disconnect(s, Disconnects.badUser, problem, proto);
    const refusal = this.authRefusal(proto, f);
    if (!(refusal instanceof Promise)) return this.decideLogin(s, f, proto, refusal);
    // Public-key checks are asynchronous: later frames of this connection wait for the verdict.
    holdFrames(s);
    void refusal.then((r) => {
      if (s.state !== "awaitingLogin") return;
      this.decideLogin(s, f, proto, r);
      releaseHeld(s, () => s.state === "open", (frame) => this.run(s, [frame]));
    });
  }

  private decideLogin(
    s: Session,
    f: Extract<ClientFrame, { op: "login" }>,
    proto: Encoding,
    refusal: string | null,
  ): void {
    if (refusal) {
      this.host.metrics.add("authFailures");
      return this.disconnect(s, Disconnects.authFailed, refusal, proto);
    }
    // The seed's rule for a second v0 login: the connection switches to the new user, and the
    // previous user goes offline (its owner stores what was in flight and sets last-seen).
    if (s.state === "open") {
      this.leave(s);
      s.opened = openStamp(); // the switch orders like a new socket: its login was sent now, not at open
    }
    s.user = f.user;
    s.proto = proto;
    this.moveTo(s, "open");
    this.byUser.set(f.user, s);
    this.host.metrics.set("loggedIn", this.byUser.size); // cluster mode: each heartbeat reports the node's sum
    this.host.metrics.add("logins");
    this.sendNow(s, this.loginOk(f, proto)); // first, and never inside a bundle
    if (ORDER_TRACE) {
      orderTrace("sock-login", f.user, "", "", `shard=${this.host.index} conn=${s.conn} opened=${s.opened}`);
    }
    s.flags = proto === "v1" ? (f.flags ?? 0) & (V1_FLAG_BUNDLE | V1_FLAG_ORDERED) : 0;
    s.acked = f.resume ?? 0;
    this.attach(s);
  }

  /** LOGIN_OK; a v1 login that carried flags hears the flags granted and the largest frame read. */
  private loginOk(f: Extract<ClientFrame, { op: "login" }>, proto: Encoding): ServerFrame {
    const ok: ServerFrame = { op: "login_ok", user: f.user, now: Date.now() };
    if (proto !== "v1" || f.flags === undefined) return ok;
    return { ...ok, flags: f.flags & V1_KNOWN_FLAGS, maxFrame: this.host.settings.maxPayload + WS_FRAME_SLACK_BYTES };
  }

  /** Why this login is refused under auth, or null when it is accepted (a promise for key checks). */
  private authRefusal(
    proto: Encoding,
    f: Extract<ClientFrame, { op: "login" }>,
  ): string | null | Promise<string | null> {
    const v = this.verifier;
    if (!v || (proto === "v0" && this.host.settings.allowV0)) return null;
    if (!f.token) return proto === "v0" ? "v0 logins carry no token and --allow-v0 is off" : "token required";
    const verdict = (check: TokenCheck) =>
      !check.ok ? check.reason : check.sub === f.user ? null : `token is for ${check.sub}, not ${f.user}`;
    const check = v.verify(f.token);
    return check instanceof Promise ? check.then(verdict) : verdict(check);
  }

  /** `re`: a re-attach of this open session, not its login (what it displaces is not told REPLACED: router/reattach-rule.ts). */
  private attach(s: Session, re = false): void {
    // A connection being closed never attaches again (re-placement, an owner's restart, a dropped
    // link): sent after its close, the attach could reach the owner after its client's new login on
    // another node and evict that one as "replaced" (the SDK then gives up). Its detach follows.
    if (s.state !== "open") return;
    const user = s.user!;
    if (ORDER_TRACE) orderTrace("sock-attach", user, "", "", `shard=${this.host.index} conn=${s.conn} re=${re}`);
    this.toOwner(user, {
      t: "attach",
      user,
      shard: this.host.index,
      conn: s.conn,
      v0: s.proto === "v0",
      resume: s.acked,
      opened: s.opened,
      ...(re ? { re } : {}),
    });
  }

  /** A send held behind a refused one to the same recipient (refusal-fence.ts), refused with its code. */
  private refuseFenced(s: Session, id: string, code: string, link: InFlight): void {
    this.host.metrics.add(FENCED_METRIC[code] ?? "busyRejects");
    this.refuse(s, id, code, "an earlier send to this recipient was refused; retry it first", link);
  }

  /** A send refused before routing: an ERROR frame naming its id. `link`: the send as linked (null: never linked). */
  private refuse(s: Session, id: string, code: string, reason: string, link: InFlight | null): void {
    if (id !== "" && link) this.chainRefused(s, id, code, link);
    this.reply(s, { op: "error", code, reason, ...(id ? { id } : {}) });
  }

  /**
   * A refusal for the connection's chain (send-chain.ts): held with its link while the client
   * retries it first (ORDERED, retryable code); otherwise answered, and later sends stop waiting.
   */
  private chainRefused(s: Session, id: string, code: string, link: InFlight): void {
    if ((s.flags & V1_FLAG_ORDERED) !== 0 && RETRYABLE_REFUSALS.has(code)) s.chain?.refusedForNow(id, link);
    else s.chain?.settled(id, true, performance.now());
  }

  /** A retryable refusal: later sends to `to` on this connection may not overtake it (refusal-fence.ts). */
  private refuseInOrder(s: Session, to: string, id: string, code: string, reason: string, link: InFlight): void {
    (rareOf(s).fence ??= new RefusalFence()).refused(to, id, code, performance.now());
    this.refuse(s, id, code, reason, link);
  }

  private route(s: Session, from: string, to: string, id: string, body: Uint8Array): void {
    const problem = userIdProblem(to);
    if (problem && s.proto === "v0") {
      this.host.metrics.add("v0BadTargetCloses");
      return this.refuseV0(s, Disconnects.v0BadTarget, `invalid target: ${problem}`);
    }
    if (problem) return this.refuse(s, id, "BAD_USER", `target: ${problem}`, null);
    // v0 senders waited in v0Wait until the store, memory and their rate allowed this send.
    // (No re-route after an owner restart for v0: without acks a v0 send is never known settled.)
    if (s.proto === "v0") return void this.emitRoute(from, to, id, body, refusalsOnly(this.host.index), s.conn);
    // Linked before any refusal here: a send refused now still comes before every later one.
    const prev = id !== "" ? (s.chain ??= new SendChain()).link(to, id, s.unsettled) : "";
    const fenced = s.rare?.fence?.check(to, id, performance.now());
    if (ORDER_TRACE && fenced) orderTrace("sock-fenced", to, from, id, `c=${s.conn}`);
    if (fenced) return this.refuseFenced(s, id, fenced, { to, p: prev });
    const busy = this.busyReason();
    if (busy) {
      this.host.metrics.add("busyRejects");
      return this.refuseInOrder(s, to, id, "SERVER_BUSY", busy, { to, p: prev });
    }
    if (!this.userBucket(from).take(performance.now())) {
      this.host.metrics.add("rateLimited");
      return this.refuseInOrder(s, to, id, "RATE_LIMITED", "message rate limit exceeded; retry later", { to, p: prev });
    }
    this.emitRoute(from, to, id, body, this.host.index, s.conn, s, prev);
  }

  /**
   * Back-pressure on senders: when memory is past the refuse watermark (or the node is cut off),
   * new sends are refused with SERVER_BUSY; the SDK keeps them and retries with backoff, so nothing
   * is lost and RAM stays bounded. A store that is behind refuses only the sends it would take:
   * the owner does that (router/owner.ts refuseStore), so live traffic goes on meanwhile.
   */
  private busyReason(): string | null {
    const sig = this.host.signals;
    if (sig.refusing()) return "server under memory pressure; retry later";
    const cut = sig.cutOff();
    if (cut) return cut;
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
  housekeeping(): void {
    const now = performance.now();
    const timeout = this.host.settings.slowConsumerTimeout;
    let heaviest: Session | null = null;
    let heaviestBytes = 0;
    for (const s of this.byConn.values()) {
      const bytes = s.recentBytes;
      s.recentBytes = 0;
      // A flow waiting on a drain event that never came (seen: a v1 drain stalled for good with its
      // page's bytes delivered, issue 14): once the socket has drained, the owner hears it here.
      if (s.flow !== "clear") this.onDrain(s);
      if (s.flow === "owed" && now - rareOf(s).blockedSince > timeout) {
        this.host.metrics.add("slowDisconnects");
        this.disconnect(
          s,
          Disconnects.notReading,
          `not reading for ${Math.round((now - rareOf(s).blockedSince) / 1000)} s`,
        );
        continue;
      }
      if (!heaviest || bytes > heaviestBytes) {
        heaviest = s;
        heaviestBytes = bytes;
      }
    }
    if (this.host.signals.refusing() && heaviest && heaviestBytes > 0) {
      this.host.metrics.add("shedConnections");
      this.disconnect(heaviest, Disconnects.memoryShed);
    }
    if (this.userBuckets.size > 2 * this.byUser.size + 1000) {
      for (const u of this.userBuckets.keys()) if (!this.byUser.has(u)) this.userBuckets.delete(u);
    }
  }

  /**
   * The next `slices`-th of the connections (by slot; from the first again after the last): each
   * send chain forgets what it no longer needs, and an idle connection drops its empty maps.
   * Called every CHAIN_SWEEP_EVERY_MS, so each connection is swept about once a second without
   * one long pass over all of them (limits.ts).
   */
  sweepChains(slices: number): void {
    const now = performance.now();
    const end = this.byConn.slotEnd;
    const hi = Math.min(end, this.sweepSlot + Math.ceil(end / slices));
    for (const s of this.byConn.valuesIn(this.sweepSlot, hi)) {
      if (s.unsettled?.size === 0) s.unsettled = null; // an idle connection holds no Map
      s.chain?.sweep(now, s.unsettled);
      if (s.chain?.size === 0) s.chain = null;
    }
    this.sweepSlot = hi >= end ? 1 : hi;
  }

  // ---- messages from owners and the writer ----

  handle(m: SessionMsg): void {
    switch (m.t) {
      case "deliver":
        return this.deliver(m);
      case "evict":
        return m.why === "moved" ? this.onDropped(m.user, m.conn, m.owner) : this.onEvict(m.user, m.conn, m.why);
      case "sent":
      case "sendError":
        return this.onSenderAck(m);
      case "statusReply": {
        const w = this.statusWaiters.get(m.req);
        this.statusWaiters.delete(m.req);
        w?.(m);
        return;
      }
      case "inspectReply":
        return this.admin.onReply(m);
      case "routesLost":
        return this.onRoutesLost(m.owner);
      default:
        return assertNever(m, "session message");
    }
  }

  /**
   * Cluster: owner `owner` dropped this user's link (its view moved the user away). If our view
   * still names it, attach again: its view may come back (a flap) and nothing else would re-attach
   * us, so its later messages were stored for a user it thought offline. Else we moved already.
   */
  private onDropped(user: string, conn: number, owner: number | undefined): void {
    const s = this.byConn.get(conn);
    if (s && s.user === user && this.ownerShard(user) === owner) this.attach(s, true);
  }

  private onEvict(user: string, conn: number, why: Exclude<EvictMsg["why"], "moved">): void {
    const s = this.byConn.get(conn);
    if (!s || s.user !== user) return;
    if (why === "slow") this.host.metrics.add("slowDisconnects");
    this.disconnect(s, EVICTIONS[why]);
  }

  private onSenderAck(m: SentMsg | SendErrorMsg): void {
    if (m.conn < 0) {
      const w = this.sendWaiters.get(-m.conn);
      this.sendWaiters.delete(-m.conn);
      w?.(m);
      return;
    }
    const s = this.byConn.get(m.conn);
    if (!s) return; // the sender left; its SDK retries and is deduplicated
    // A refusal of a send already answered is stale (cluster: a parked copy given up after a re-post was stored).
    if (m.t === "sendError" && s.proto !== "v0" && m.id !== "" && !s.unsettled?.has(m.id)) return;
    if (m.t === "sendError" && !m.unfenced) this.fenceAfter(s, m);
    if (s.chain) this.chainAnswer(s, s.chain, m);
    s.unsettled?.delete(m.id); // an emptied Map stays until housekeeping: not one Map per send when sends trickle
    // The only refusal that reaches a v0 sender after acceptance is a full inbox (see the writer).
    if (s.proto === "v0" && m.t === "sendError") {
      this.host.metrics.add("v0InboxFullCloses");
      return this.refuseV0(s, Disconnects.v0InboxFull, m.reason);
    }
    if (m.t === "sent") {
      this.host.metrics.add("acksToSenders");
      // v1 (the hot path): encoded straight from the ack, no frame object; the same bytes.
      if (s.proto === "v1" && s.state === "open") this.outbox.push(s, encodeSent(m.id, SENT_STATUS_BYTE[m.status]));
      else this.reply(s, { op: "sent", id: m.id, status: m.status });
    } else this.reply(s, { op: "error", code: m.code, reason: m.reason, id: m.id });
  }

  /** An answer to a routed send, for its connection's chain (send-chain.ts), while the route is still in flight. */
  private chainAnswer(s: Session, chain: SendChain, m: SentMsg | SendErrorMsg): void {
    const route = s.unsettled?.get(m.id);
    if (m.t === "sendError" && route) return this.chainRefused(s, m.id, m.code, route);
    const now = performance.now();
    // The client may resend it when it was refused, or answered slowly (a resend after silence).
    const slow = route !== undefined && now - (route.t0 - TIME_ORIGIN) >= SLOW_ANSWER_MS;
    chain.settled(m.id, m.t === "sendError" || slow, now);
  }

  /** An owner refused a send for now: later sends to its recipient wait for its retry (refusal-fence.ts). */
  private fenceAfter(s: Session, m: SendErrorMsg): void {
    const route = RETRYABLE_REFUSALS.has(m.code) ? s.unsettled?.get(m.id) : undefined;
    if (!route) return;
    (rareOf(s).fence ??= new RefusalFence()).refused(route.to, m.id, m.code, performance.now(), route.t0 - TIME_ORIGIN);
  }

  private deliver(m: DeliverMsg): void {
    const s = this.byConn.get(m.conn);
    if (ORDER_TRACE) this.traceDeliver(m, s);
    if (!s || s.state !== "open" || s.user !== m.user) { // gone: the owner hears our detach
      if (m.frames) pageDone(m.frames);
      return;
    }
    if (m.frames) {
      try {
        return this.deliverPage(s, m.frames);
      } finally {
        pageDone(m.frames);
      }
    }
    if (s.proto !== "v0") return this.deliverQueued(s, m);
    // Many items (a backlog page): one socket write for all of them.
    let last = 0;
    const corked = m.items.length > 1 && s.t.cork !== undefined;
    const ok = corked
      ? corkedOk(s.t.cork!(() => (last = this.writeDeliveries(s, m))))
      : (last = this.writeDeliveries(s, m)) >= 0;
    if (!ok || last < 0) return this.disconnect(s, Disconnects.socketDropped);
    // v0 cannot ack: the seed's rule is that a row is gone once written to the socket.
    if (s.proto === "v0" && last > 0) {
      this.toOwner(m.user, { t: "ack", user: m.user, shard: this.host.index, conn: s.conn, seq: last });
    }
    this.countDelivered(m);
    this.updateFlow(s, m.page);
  }

  private traceDeliver(m: DeliverMsg, s: Session | undefined): void {
    const seqs = m.frames ? m.frames.seqs : m.items.map((d) => d.seq);
    const state = !s ? "gone" : s.user !== m.user ? "other-user" : s.state;
    const where = `shard=${this.host.index} conn=${m.conn} ${state}`;
    orderTrace(
      "sock-deliver",
      m.user,
      "",
      "",
      `${where} n=${seqs.length} seqs=${seqs[0]}..${seqs.at(-1)} page=${m.page}`,
    );
  }

  /** A backlog page of pre-encoded frames (gateway/page-writer.ts), after what the outbox holds. */
  private deliverPage(s: Session, p: FramePage): void {
    const ok = this.outbox.flush(s) && s.state === "open" && writeFramePage(s.t, s.proto!, bundled(s), p);
    if (!ok) return this.disconnect(s, Disconnects.socketDropped);
    const n = p.seqs.length;
    // v0 cannot ack: the seed's rule is that a row is gone once written to the socket.
    if (s.proto === "v0" && n > 0) {
      this.toOwner(s.user!, { t: "ack", user: s.user!, shard: this.host.index, conn: s.conn, seq: p.seqs[n - 1]! });
    }
    this.host.metrics.add("deliveredStored", n);
    this.updateFlow(s, true);
  }

  /**
   * v1 and JSON: a live delivery joins the turn's queued frames (outbox.ts); a page flushes them
   * and goes out now, as bundles for a connection granted them, else corked frame by frame.
   */
  private deliverQueued(s: Session, m: DeliverMsg): void {
    let ok = true;
    if (bundled(s)) ok = this.outbox.deliver(s, m.items);
    else if (m.items.length === 1) this.outbox.push(s, this.encodeDelivery(s, m.items[0]!));
    else {
      ok = this.outbox.flush(s) && s.state === "open";
      let last = 0;
      if (ok) {
        ok = s.t.cork ? corkedOk(s.t.cork(() => (last = this.writeDeliveries(s, m)))) : this.writeDeliveries(s, m) >= 0;
      }
      if (last < 0) ok = false;
    }
    if (stageProbe && m.items.length === 1 && m.items[0]!.t0 > 0) stageProbe.queuedFor(s, m.items[0]!.t0);
    if (!ok) return this.disconnect(s, Disconnects.socketDropped);
    this.countDelivered(m);
    this.updateFlow(s, m.page);
  }

  private countDelivered(m: DeliverMsg): void {
    const metrics = this.host.metrics;
    const now = TIME_ORIGIN + performance.now();
    for (const d of m.items) {
      if (d.t0 > 0) {
        metrics.add("deliveredLive");
        metrics.latency(now - d.t0);
      } else metrics.add("deliveredStored");
    }
  }

  /** One delivery as a frame of the connection's encoding (v1: straight from the delivery, no frame object). */
  private encodeDelivery(s: Session, d: Delivery): string | Uint8Array {
    return s.proto === "v1" ? encodeDeliveries([d], 0, 1) : encodeServerFrame(deliverFrame(d), s.proto!)!;
  }

  /** Writes the items; returns the last seq written, or -1 if the socket dropped a write. */
  private writeDeliveries(s: Session, m: DeliverMsg): number {
    let last = 0;
    for (const d of m.items) {
      const data = encodeServerFrame(deliverFrame(d), s.proto!);
      if (data === null) continue;
      if (s.t.send(data) === 0) return -1; // unusable: closing makes the owner store what is unacked
      last = d.seq;
    }
    return last;
  }

  /**
   * After a write: a page always gets one flow-ready (now, or when the socket drains); a live
   * write that backs the socket up tells the owner to stop forwarding until it drains.
   */
  private updateFlow(s: Session, page: boolean): void {
    // The socket's own buffer only: frames still queued in the outbox leave at the end of this
    // turn, and a flow owed on their account would wait for a drain event that never comes.
    const buffered = s.t.getBufferedAmount();
    if (buffered > this.host.settings.slowConsumerBytes) {
      if (s.flow !== "owed") {
        if (!page && s.flow === "clear") this.postFlow(s, false);
        s.flow = "owed";
        rareOf(s).blockedSince = performance.now();
        this.flowRecheck.arm(s);
      }
      return;
    }
    // The next page waits until this one has mostly left: writing into a socket that is still
    // backed up costs the shard several times more (issue 14), and the writer reads it ahead anyway.
    if (page && buffered > PAGE_FLOW_RESUME_BYTES) {
      if (s.flow === "clear") s.flow = "page";
      this.flowRecheck.arm(s);
      return;
    }
    if (page || s.flow !== "clear") {
      s.flow = "clear";
      this.flowRecheck.disarm(s);
      this.postFlow(s, true);
    }
  }

  /** The socket drained: tell the owner it may send again. */
  onDrain(s: Session): void {
    if (s.state !== "open" || s.flow === "clear") return;
    const resumeAt = s.flow === "owed" ? this.host.settings.slowConsumerBytes / 2 : PAGE_FLOW_RESUME_BYTES;
    if (s.t.getBufferedAmount() > resumeAt) return;
    s.flow = "clear";
    this.flowRecheck.disarm(s);
    this.postFlow(s, true);
  }

  private postFlow(s: Session, ready: boolean): void {
    const user = s.user!;
    this.toOwner(user, { t: "flow", user, shard: this.host.index, conn: s.conn, ready });
  }

  onClose(s: Session): void {
    if (!this.byConn.delete(s.conn)) return;
    if (ORDER_TRACE && s.user) orderTrace("sock-closed", s.user, "", "", `shard=${this.host.index} conn=${s.conn}`);
    this.moveTo(s, "closed");
    this.host.metrics.set("conns", this.byConn.size);
    if (this.paused.delete(s)) this.host.metrics.set("v0Paused", this.paused.size);
    if (s.rare) s.rare.held = null;
    this.outbox.discard(s);
    this.flowRecheck.disarm(s);
    if (s.user) this.leave(s);
  }

  /** The connection's user leaves it (close, or a v0 user switch): its owner hears a detach. */
  private leave(s: Session): void {
    const user = s.user!;
    if (this.byUser.get(user) === s) {
      this.byUser.delete(user);
      this.host.metrics.set("loggedIn", this.byUser.size);
    }
    this.toOwner(user, { t: "detach", user, shard: this.host.index, conn: s.conn });
  }

  // ---- helpers ----

  private toOwner(user: string, m: PortMsg): void {
    this.host.post(this.ownerShard(user), m);
  }

  private ownerShard(user: string): number {
    return this.host.ownerOf ? this.host.ownerOf(user) : ownerOf(user, this.host.shards);
  }

  reply(s: Session, f: ServerFrame, proto: Encoding | undefined = s.proto): void {
    if (s.state === "closing" || s.state === "closed") return;
    const data = encodeServerFrame(f, proto ?? "v1");
    if (data === null) return;
    // Logged-in v1/JSON: with the rest of this turn's frames (outbox.ts). v0 and logins: at once.
    if (s.state === "open" && s.proto !== "v0") this.outbox.push(s, data);
    else s.t.send(data);
  }

  /** Writes one frame at once, past the outbox (callers flushed it or know it is empty). */
  private sendNow(s: Session, f: ServerFrame, proto?: Encoding): void {
    const data = encodeServerFrame(f, proto ?? s.proto ?? "v1");
    if (data !== null) s.t.send(data);
  }

  /** Ends a connection: the error frame first (where the encoding has one), then the close. */
  private disconnect(s: Session, d: Disconnect, reason = d.reason, proto?: Encoding): void {
    if (s.state === "closing" || s.state === "closed") return;
    // What this turn queued goes first; the error frame is written now, before the close.
    if (!this.outbox.flush(s)) return; // the dropped write re-entered disconnect, which closed
    this.sendNow(s, { op: "error", code: d.code, reason }, proto);
    this.moveTo(s, "closing");
    if (ORDER_TRACE && s.user) {
      orderTrace("sock-close", s.user, "", "", `shard=${this.host.index} conn=${s.conn} code=${d.code} ${reason}`);
    }
    log.debug("closing connection", { conn: s.conn, user: s.user ?? "-", code: d.code, reason });
    s.t.close(d.close, reason.slice(0, 120));
  }

  queryStatus(user: string, done: (r: StatusReply) => void): void {
    const req = this.nextReq++;
    this.statusWaiters.set(req, done);
    this.toOwner(user, { t: "statusQuery", user, shard: this.host.index, req });
  }

  /** Hands an accepted message to its recipient's owner, stamped with the receive time. */
  private emitRoute(
    from: string,
    to: string,
    id: string,
    body: Uint8Array,
    o: number,
    c: number,
    s?: Session,
    prev = "",
  ): RouteMsg {
    const now = TIME_ORIGIN + performance.now();
    const route: RouteMsg = { t: "route", to, from, id, body, ts: Math.floor(now), t0: now, o, c };
    if (prev !== "") route.p = prev;
    const k = this.ownerShard(to);
    // Cluster: no owner known now (no view yet, or the fence after a cut). Posted nowhere, the send
    // went unanswered and its SDK resent it a second later, behind later sends taken once an owner
    // was known: refused in order instead (refusal-fence.ts).
    if (k < 0 && s && s.proto !== "v0") {
      this.host.metrics.add("busyRejects");
      this.refuseInOrder(s, to, id, "SERVER_BUSY", "no owner known for the recipient right now; retry", route);
      return route;
    }
    // Cluster: the owner's node came back and that shard has not said it started. What we post it
    // may be lost, and the re-post of earlier unanswered sends follows its announcement: a send
    // taken now could be numbered ahead of them (cluster/peer-starts.ts). Refused in order too.
    if (s && s.proto !== "v0" && this.host.routable?.(k) === false) {
      this.host.metrics.add("busyRejects");
      this.refuseInOrder(s, to, id, "SERVER_BUSY", "the recipient's owner is starting; retry", route);
      return route;
    }
    this.host.metrics.add("msgsIn");
    // Unsettled before it leaves: an owner on this shard may answer (refuse) synchronously.
    if (s && id !== "" && !(s.unsettled ??= new Map()).has(id)) s.unsettled.set(id, route);
    if (ORDER_TRACE) orderTrace("sock-route", to, from, id, `c=${c} owner=${k}${prev ? " p=" + prev : ""}`);
    this.host.post(k, route);
    return route;
  }

  /** Server-side send (HTTP API): the ack comes back like a connection's, to a negative conn id. */
  sendAs(from: string, to: string, id: string, body: Uint8Array, done: (r: SentMsg | SendErrorMsg) => void): number {
    const h = this.nextHttp++;
    this.sendWaiters.set(h, done);
    this.emitRoute(from, to, id, body, this.host.index, -h);
    return h;
  }

  forgetSend(h: number): void {
    this.sendWaiters.delete(h);
  }

  /** Cluster: owners were re-placed (a node joined, left or died); re-attach our users whose owner moved. */
  reattachMoved(moved: (user: string) => boolean): void {
    for (const s of this.byUser.values()) if (moved(s.user!)) this.attach(s, true);
    // Unanswered sends to moved users go to their new owner now (same ids: deduplicated there).
    for (const s of this.byConn.values()) {
      for (const r of s.unsettled?.values() ?? []) if (moved(r.to)) this.repost(s, r, this.ownerShard(r.to));
    }
  }

  /** Owner shard k restarted: it lost its state, so re-attach our users it owns. */
  reattachOwnedBy(k: number): void {
    for (const s of this.byUser.values()) if (this.ownerShard(s.user!) === k) this.attach(s, true);
    // Sends that may have died with it go again, in their order, ahead of anything sent from now on.
    for (const s of this.byConn.values()) {
      for (const r of s.unsettled?.values() ?? []) if (this.ownerShard(r.to) === k) this.repost(s, r, k);
    }
  }

  /**
   * An unanswered send posted again, to owner shard `k`; refused instead while its recipient is
   * fenced on this connection with refused sends still to come back (RefusalFence.holdBack).
   */
  private repost(s: Session, r: RouteMsg, k: number): void {
    const fenced = s.rare?.fence?.holdBack(r.to, r.id, r.t0 - TIME_ORIGIN, performance.now());
    if (ORDER_TRACE) orderTrace("sock-repost", r.to, r.from, r.id, `c=${s.conn} owner=${k} fenced=${!!fenced}`);
    if (!fenced) return this.host.post(k, this.relinked(s, r));
    // Refused with its first link: forgotten, its retry would be taken as a new send and linked to
    // a later one, which waits behind it (a deadlock: seen when a node joined under load).
    s.unsettled!.delete(r.id);
    this.refuseFenced(s, r.id, fenced, r);
  }

  /** `r` with its predecessor as it stands now: one answered since is no longer waited for. */
  private relinked(s: Session, r: RouteMsg): RouteMsg {
    const p = s.chain?.prevOf(r.id, s.unsettled) ?? "";
    if ((r.p ?? "") === p) return r;
    const { p: _old, ...rest } = r;
    return p === "" ? rest : { ...rest, p };
  }

  /**
   * Cluster: messages from owner shard k to this shard were lost on NATS (a delivery among them
   * would be skipped by the next cumulative ack). Our users it owns reconnect, resume from their
   * last processed seq, and their new links drain what the old ones held.
   */
  resyncOwnedBy(k: number, ownerOf = (user: string) => this.ownerShard(user)): void {
    for (const s of [...this.byUser.values()]) {
      if (ownerOf(s.user!) === k) this.disconnect(s, Disconnects.resync);
    }
  }

  /**
   * Cluster: owner shard k lost batches of our routes on NATS (cluster/route-gap.ts) and refuses
   * our routes until this answer, which follows every route sent before it on the same port. A
   * connection with a send unanswered may have lost one: it reconnects, and its SDK resends all it
   * has unacked, oldest first (never behind a later send the owner took meanwhile).
   */
  private onRoutesLost(k: number): void {
    for (const s of [...this.byConn.values()]) {
      if (mayHaveLost(s, k, (u) => this.placedOwner(u))) this.disconnect(s, Disconnects.resync);
    }
    this.host.post(k, { t: "routesResumed", shard: this.host.index });
  }

  private placedOwner(user: string): number {
    return this.host.placedOwnerOf ? this.host.placedOwnerOf(user) : this.ownerShard(user);
  }

  /** Closes every connection with `d` but keeps accepting (cluster: a cut node sheds its clients). */
  disconnectAll(d: Disconnect): void {
    for (const s of [...this.byConn.values()]) this.disconnect(s, d);
  }

  closeAll(): void {
    this.accepting = false;
    for (const s of [...this.byConn.values()]) this.disconnect(s, Disconnects.shuttingDown);
  }
}

/** A send of `s` still unanswered whose recipient is owned by shard k (or by no shard known now). */
function mayHaveLost(s: Session, k: number, ownerOf: (user: string) => number): boolean {
  if (!s.unsettled) return false;
  for (const r of s.unsettled.values()) {
    const o = ownerOf(r.to);
    if (o === k || o < 0) return true;
  }
  return false;
}
