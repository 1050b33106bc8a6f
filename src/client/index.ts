// The Iris client SDK (Bun and browsers: uses the global WebSocket). It gives the application
// each message exactly once: deliveries are filtered by per-recipient sequence number and by a
// window of (sender, id) pairs, acked cumulatively after the handler ran, and a reconnect resumes
// from the last processed sequence. Sends carry ids and are resent until the server acks them;
// a send the server refuses for now holds newer sends to its recipient until it is accepted, so
// they keep their order (order-lanes.ts; docs/PROTOCOL.md, "Order after a refusal").
//
// The client has one state, changed only by `moveTo` (and observable through onState):
//
//   state       event                                   next
//   offline     connect() or the reconnect timer        connecting
//   connecting  LOGIN_OK                                online
//   connecting  socket closed, reconnect advised        offline     (timer set)
//   online      socket closed, reconnect advised        offline     (timer set)
//   connecting  closed 4001 (a newer login)             replaced
//   online      closed 4001                             replaced
//   any         close(), or a close that says give up   closed
//   replaced    connect()                               connecting
//   closed      connect()                               connecting
//
// Frames are sent only while `online` (the login frame while `connecting`).

import type { ClientFrame, SendStatus, ServerFrame } from "../protocol/frames.ts";
import { Disconnects, shouldReconnect } from "../protocol/disconnect.ts";
import { decodeJsonServer, encodeJsonClient } from "../protocol/json.ts";
import { decodeV1ServerMessage, encodeV1Client } from "../protocol/v1.ts";
import { V1_BUNDLE_CLIENT, V1_FLAG_BUNDLE, V1_FLAG_ORDERED } from "../protocol/v1-bundle.ts";
import { FrameBatcher } from "./batcher.ts";
import { OrderLanes } from "./order-lanes.ts";
import { fromSavedState, type IrisStorage, SaveQueue, toSavedState } from "./persist.ts";

export type { SendStatus } from "../protocol/frames.ts";
export { fileStorage, webStorage } from "./persist.ts";
export type { IrisSavedState, IrisStorage, KeyValueStore } from "./persist.ts";

export interface IrisMessage {
  seq: number;
  ts: number;
  from: string;
  id: string;
  body: Uint8Array;
  text(): string;
}

export interface IrisClientOptions {
  /** One server (kept for compatibility); `urls` wins when both are given. */
  url?: string;
  /** Several servers of one cluster: a dropped or refused connection fails over to the next one. */
  urls?: readonly string[];
  user: string;
  token?: string | (() => string | Promise<string>);
  encoding?: "binary" | "json";
  autoReconnect?: boolean;
  /** Resend a send the server has not acked after this long (same id: deduplicated). */
  resendAfterMs?: number;
  /** Wait this long to coalesce cumulative acks (0 = next tick). */
  ackDelayMs?: number;
  /** How many (sender, id) pairs to remember for duplicate filtering. */
  dedupeWindow?: number;
  maxReconnectDelayMs?: number;
  /**
   * Treat RATE_LIMITED, SERVER_BUSY and STORE_FULL as back-pressure: keep the send, retry it later,
   * and hold newer sends to its recipient behind it (default true). False: reject its promise.
   */
  retryRateLimited?: boolean;
  /** Keeps the last processed seq, the (sender, id) window and unacked sends across restarts. */
  storage?: IrisStorage;
  /** How many of the newest (sender, id) pairs go into the saved state (default 1000). */
  persistWindow?: number;
  /**
   * Binary encoding: ask the server for bundles (docs/PROTOCOL.md, "v1 bundles"): many deliveries
   * and acks per WebSocket message, and this client's frames of one turn sent as one (default true).
   */
  bundles?: boolean;
}

/** The server's answer to one send, including sends restored from storage after a restart. */
export interface IrisSendResult {
  id: string;
  to: string;
  status: SendStatus;
}

export class IrisError extends Error {
  constructor(readonly code: string, reason: string, readonly id?: string) {
    super(`${code}: ${reason}`);
  }
}

export type ClientState = "connecting" | "online" | "offline" | "closed" | "replaced";

const TRANSITIONS: Record<ClientState, readonly ClientState[]> = {
  offline: ["connecting", "closed"],
  connecting: ["online", "offline", "replaced", "closed"],
  online: ["offline", "replaced", "closed"],
  replaced: ["connecting", "closed"],
  closed: ["connecting", "closed"],
};

interface Outgoing {
  id: string;
  to: string;
  body: Uint8Array;
  sentAt: number;
  /** On the wire and not answered yet (order-lanes.ts). */
  inFlight: boolean;
  resolve: (s: SendStatus) => void;
  reject: (e: Error) => void;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const randomPrefix = () => Math.random().toString(36).slice(2, 10);

export class IrisClient {
  private ws: WebSocket | null = null;
  private readonly outgoing = new Map<string, Outgoing>();
  private readonly statusWaiters = new Map<string, ((r: { online: boolean; lastSeen: number }) => void)[]>();
  private readonly handlers: ((m: IrisMessage) => void)[] = [];
  private readonly errorHandlers: ((e: IrisError) => void)[] = [];
  private readonly stateHandlers: ((s: ClientState) => void)[] = [];
  private readonly sentHandlers: ((r: IrisSendResult) => void)[] = [];
  private readonly saver: SaveQueue | null;
  /** Set while an asynchronous storage is still loading; connect() waits for it. */
  private restoring: Promise<void> | null = null;
  private readonly seen = new Set<string>();
  private lastSeqValue = 0;
  private lastAckSent = 0;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private resendTimer: ReturnType<typeof setInterval> | null = null;
  private reconnectDelay = 50;
  /** The code of the last connection-level error frame: it tells why the next close happens. */
  private lastErrorCode: string | undefined;
  private idPrefix = randomPrefix();
  private idCounter = 0;
  private firstLogin: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private stateValue: ClientState = "offline";
  private readonly urls: readonly string[];
  /** Index into `urls` of the server used by the current (or next) connection. */
  private urlIndex = 0;
  /** Counts for tests and benchmarks. */
  readonly stats = { delivered: 0, duplicatesDropped: 0, resends: 0, reconnects: 0, framesIn: 0, messagesIn: 0 };
  /** The current connection's bundled writes, or null when the server did not grant bundles. */
  private batcher: FrameBatcher | null = null;
  /** A server refused the login's flags byte (an older server): log in without it from now on. */
  private flagsRefused = false;
  /** Holds newer sends to a recipient behind a refused one (per-sender order; order-lanes.ts). */
  private readonly lanes: OrderLanes<Outgoing>;

  constructor(private readonly o: IrisClientOptions) {
    this.urls = o.urls?.length ? o.urls : o.url ? [o.url] : [];
    if (this.urls.length === 0) throw new Error("IrisClient: give `url` or `urls`");
    this.lanes = new OrderLanes<Outgoing>({
      pending: () => this.outgoing.values(),
      transmit: (out) => this.transmit(out),
      canSend: () => this.stateValue === "online",
    }, o.resendAfterMs ?? 3000);
    this.saver = o.storage ? new SaveQueue(o.storage, (e) => this.emitError("STORAGE", e.message)) : null;
    const loaded = o.storage?.load();
    if (loaded instanceof Promise) this.restoring = loaded.then((s) => this.restore(s));
    else if (loaded) this.restore(loaded);
  }

  /** The server of the current (or next) connection. */
  get url(): string {
    return this.urls[this.urlIndex]!;
  }

  /** Applies a saved state: resume point, dedupe window, and unacked sends (same ids, same order). */
  private restore(raw: unknown): void {
    const s = fromSavedState(raw, this.o.user);
    if (!s) return;
    this.lastSeqValue = Math.max(this.lastSeqValue, s.lastSeq);
    for (const k of s.seenKeys) this.seen.add(k);
    for (const u of s.unacked) {
      if (this.outgoing.has(u.id)) continue;
      // Its promise died with the old process: the outcome goes to onSent / onError.
      const fail = (e: Error) => this.emitError(e instanceof IrisError ? e.code : "SEND_FAILED", e.message, u.id);
      this.outgoing.set(u.id, { ...u, sentAt: 0, inFlight: false, resolve: () => {}, reject: fail });
    }
  }

  private persist(): void {
    const parts = () => ({ lastSeq: this.lastSeqValue, seenKeys: this.seen, unacked: this.outgoing.values() });
    this.saver?.save(() => toSavedState(this.o.user, parts(), this.o.persistWindow ?? 1000));
  }

  private emitError(code: string, reason: string, id?: string): void {
    for (const h of this.errorHandlers) h(new IrisError(code, reason, id));
  }

  get state(): ClientState {
    return this.stateValue;
  }
  /** Highest sequence number handed to the application. */
  get lastSeq(): number {
    return this.lastSeqValue;
  }
  get unacked(): number {
    return this.outgoing.size;
  }
  /** Recipients whose newer sends wait behind a refused one now (order-lanes.ts; diagnostics). */
  get heldRecipients(): number {
    return this.lanes.closed;
  }

  onMessage(h: (m: IrisMessage) => void): this {
    this.handlers.push(h);
    return this;
  }
  onError(h: (e: IrisError) => void): this {
    this.errorHandlers.push(h);
    return this;
  }
  onState(h: (s: ClientState) => void): this {
    this.stateHandlers.push(h);
    return this;
  }
  /** Every send the server acked, including those restored from storage (whose promises are gone). */
  onSent(h: (r: IrisSendResult) => void): this {
    this.sentHandlers.push(h);
    return this;
  }

  /** Opens the connection and logs in; resolves on the first LOGIN_OK. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstLogin = { resolve, reject };
      // Synchronous unless an asynchronous storage is still loading its state.
      if (this.restoring) void this.restoring.then(() => this.open());
      else void this.open();
    });
  }

  private moveTo(s: ClientState): void {
    if (this.stateValue === s) return;
    if (!TRANSITIONS[this.stateValue].includes(s)) {
      throw new Error(`client: ${this.stateValue} → ${s} is not a transition`);
    }
    this.stateValue = s;
    for (const h of this.stateHandlers) h(s);
  }

  private async open(): Promise<void> {
    this.moveTo("connecting");
    this.lastErrorCode = undefined;
    const token = typeof this.o.token === "function" ? await this.o.token() : this.o.token;
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const flags = this.loginFlags();
      this.frame({
        op: "login",
        user: this.o.user,
        proto: "v1",
        ...(token ? { token } : {}),
        ...(this.lastSeqValue ? { resume: this.lastSeqValue } : {}),
        ...(flags ? { flags } : {}),
      });
    };
    ws.onmessage = (e) => this.receive(e.data as ArrayBuffer | string);
    ws.onclose = (e) => this.closed(ws, e.code, e.reason);
    ws.onerror = () => {}; // onclose follows with the code
  }

  /**
   * The LOGIN flags byte (0: none sent): bundles, and ORDERED while refused sends are retried in
   * order (the lanes), so the server holds later sends behind a refused one until it is retried.
   */
  private loginFlags(): number {
    if (this.o.encoding === "json" || this.flagsRefused) return 0;
    return (this.wantsBundles() ? V1_FLAG_BUNDLE : 0) | (this.o.retryRateLimited !== false ? V1_FLAG_ORDERED : 0);
  }

  private wantsBundles(): boolean {
    return this.o.encoding !== "json" && this.o.bundles !== false && !this.flagsRefused;
  }

  private closed(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.batcher = null;
    if (this.stateValue === "connecting" && this.lastErrorCode === "BAD_FRAME" && this.wantsBundles()) {
      // An older server reads no flags byte in LOGIN: try again at once with the original frame.
      this.flagsRefused = true;
      this.moveTo("offline");
      return void this.open();
    }
    if (this.resendTimer) clearInterval(this.resendTimer);
    this.resendTimer = null;
    this.lanes.reset();
    if (this.stateValue === "closed") return;
    const why = this.lastErrorCode;
    if (code === Disconnects.replaced.close) {
      this.moveTo("replaced");
      return this.failPending(new IrisError("REPLACED", reason || "logged in elsewhere"));
    }
    if (!shouldReconnect(code, why) || this.o.autoReconnect === false) {
      this.firstLogin?.reject(new IrisError(why ?? "CLOSED", reason || `closed with ${code}`));
      this.firstLogin = null;
      return this.moveTo(this.o.autoReconnect === false && shouldReconnect(code, why) ? "offline" : "closed");
    }
    this.moveTo("offline");
    // Fail over: the next attempt goes to the next server (any node serves any user; login resumes).
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.o.maxReconnectDelayMs ?? 2000);
    this.stats.reconnects++;
    setTimeout(() => {
      if (this.stateValue === "offline") void this.open();
    }, delay);
  }

  private failPending(e: Error): void {
    for (const out of this.outgoing.values()) out.reject(e);
    this.outgoing.clear();
  }

  private frame(f: ClientFrame): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    if (this.o.encoding === "json") return ws.send(encodeJsonClient(f));
    if (this.batcher) return this.batcher.push(encodeV1Client(f));
    ws.send(encodeV1Client(f));
  }

  private receive(data: ArrayBuffer | string): void {
    let frames: ServerFrame[];
    try {
      frames = typeof data === "string" ? [decodeJsonServer(data)] : decodeV1ServerMessage(new Uint8Array(data));
    } catch (e) {
      for (const h of this.errorHandlers) {
        h(new IrisError("BAD_FRAME", `undecodable server frame: ${(e as Error).message}`));
      }
      return;
    }
    this.stats.messagesIn++;
    this.stats.framesIn += frames.length;
    for (const f of frames) this.onFrame(f);
  }

  private onFrame(f: ServerFrame): void {
    switch (f.op) {
      case "login_ok":
        this.reconnectDelay = 50;
        if (((f.flags ?? 0) & V1_FLAG_BUNDLE) !== 0 && this.ws) {
          const ws = this.ws;
          this.batcher = new FrameBatcher((b) => ws.readyState === 1 && ws.send(b), V1_BUNDLE_CLIENT, f.maxFrame!);
        }
        this.moveTo("online");
        this.firstLogin?.resolve();
        this.firstLogin = null;
        // Resend whatever the server has not acked, in the original order, with the same ids.
        this.lanes.reset();
        for (const out of this.outgoing.values()) this.transmit(out);
        this.resendTimer ??= setInterval(() => this.resendStale(), Math.max(100, (this.o.resendAfterMs ?? 3000) / 3));
        return;
      case "deliver":
        return this.deliver(f);
      case "sent":
        return this.acked(f.id, f.status);
      case "status": {
        const q = this.statusWaiters.get(f.user);
        const w = q?.shift();
        if (q && q.length === 0) this.statusWaiters.delete(f.user);
        w?.({ online: f.online, lastSeen: f.lastSeen });
        return;
      }
      case "error": {
        const err = new IrisError(f.code, f.reason, f.id);
        const out = f.id ? this.outgoing.get(f.id) : undefined;
        const backPressure = f.code === "RATE_LIMITED" || f.code === "SERVER_BUSY" || f.code === "STORE_FULL";
        if (out && backPressure && this.o.retryRateLimited !== false) {
          // Kept, same id: it and every newer send to its recipient wait for one retry in order.
          return this.lanes.refused(out);
        }
        if (out) {
          this.outgoing.delete(f.id!);
          this.persist();
          out.reject(err);
          return this.lanes.settled(out);
        }
        if (!f.id) this.lastErrorCode = f.code;
        for (const h of this.errorHandlers) h(err);
        return;
      }
      case "pong":
        return;
    }
  }

  /** The server acked a send: settle it, forget it (also in storage), and tell onSent handlers. */
  private acked(id: string, status: SendStatus): void {
    const out = this.outgoing.get(id);
    if (!out) return;
    this.outgoing.delete(id);
    this.persist();
    out.resolve(status);
    for (const h of this.sentHandlers) h({ id, to: out.to, status });
    this.lanes.settled(out);
  }

  private deliver(f: Extract<ServerFrame, { op: "deliver" }>): void {
    if (f.seq <= this.lastSeqValue) {
      this.stats.duplicatesDropped++;
      return this.scheduleAck();
    }
    this.lastSeqValue = f.seq;
    if (f.id !== "") {
      const key = f.from + "\0" + f.id;
      if (this.seen.has(key)) {
        this.stats.duplicatesDropped++;
        return this.scheduleAck();
      }
      this.seen.add(key);
      const max = this.o.dedupeWindow ?? 10_000;
      if (this.seen.size > max) this.seen.delete(this.seen.values().next().value!);
    }
    this.stats.delivered++;
    const body = f.body.slice();
    const msg: IrisMessage = { seq: f.seq, ts: f.ts, from: f.from, id: f.id, body, text: () => dec.decode(body) };
    for (const h of this.handlers) h(msg);
    this.persist(); // after the handlers: a restart resumes past what the app processed
    this.scheduleAck();
  }

  private scheduleAck(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      if (this.lastSeqValue > this.lastAckSent && this.stateValue === "online") {
        this.lastAckSent = this.lastSeqValue;
        this.frame({ op: "ack", seq: this.lastSeqValue });
      }
    }, this.o.ackDelayMs ?? 0);
  }

  private transmit(out: Outgoing): void {
    out.sentAt = Date.now();
    out.inFlight = true;
    this.frame({ op: "send", id: out.id, to: out.to, body: out.body });
  }

  private resendStale(): void {
    if (this.stateValue !== "online") return;
    const now = Date.now();
    const limit = now - (this.o.resendAfterMs ?? 3000);
    this.lanes.tick(now);
    for (const out of this.outgoing.values()) {
      if (out.sentAt < limit && !this.lanes.holds(out.to)) {
        this.stats.resends++;
        this.transmit(out);
      }
    }
  }

  /** Sends a message; resolves with the server's ack once it is delivered or durably stored. */
  send(to: string, body: string | Uint8Array, opts: { id?: string } = {}): Promise<SendStatus> {
    const id = opts.id ?? `${this.idPrefix}-${(++this.idCounter).toString(36)}`;
    const bytes = typeof body === "string" ? enc.encode(body) : body;
    return new Promise((resolve, reject) => {
      const out: Outgoing = { id, to, body: bytes, sentAt: 0, inFlight: false, resolve, reject };
      this.outgoing.set(id, out);
      this.persist(); // before the wire: a restarted sender resends it with this id
      // Behind a refused send to the same recipient it waits its turn (order-lanes.ts).
      if (this.stateValue === "online" && !this.lanes.holds(to)) this.transmit(out);
    });
  }

  status(user: string): Promise<{ online: boolean; lastSeen: number }> {
    return new Promise((resolve) => {
      let q = this.statusWaiters.get(user);
      if (!q) this.statusWaiters.set(user, q = []);
      q.push(resolve);
      this.frame({ op: "status", user });
    });
  }

  /** Drops the connection without closing the client: it reconnects and resumes (tests, chaos). */
  dropConnection(): void {
    this.ws?.close(4000, "client dropped");
  }

  close(): void {
    if (this.ackTimer) {
      clearTimeout(this.ackTimer);
      this.ackTimer = null;
      if (this.lastSeqValue > this.lastAckSent) this.frame({ op: "ack", seq: this.lastSeqValue });
    }
    this.batcher?.flush(); // the final ack leaves before the close
    if (this.resendTimer) clearInterval(this.resendTimer);
    this.lanes.reset();
    this.moveTo("closed");
    this.ws?.close(1000, "bye");
  }
}
