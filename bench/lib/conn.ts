// One load-generator connection: a WebSocket (v1 or v0) or a raw TCP socket (v0), logged in,
// with frames handed to callbacks without decoding into objects. v1 deliveries are acked
// cumulatively, coalesced per event-loop turn (or at once every 128), because Iris treats a
// recipient with too many unacked messages as slow. With `bundles` (a v1 login flag, see
// src/protocol/v1-bundle.ts) a server BUNDLE is walked in place, acked once at its end, and the
// frames written in one turn (sends, the ack) leave as one client BUNDLE.

import type { Socket } from "bun";
import type { Target } from "./loadgen-protocol.ts";
import { serverFrameLength, V1_BUNDLE_CLIENT, V1_BUNDLE_SERVER } from "../../src/protocol/v1-bundle.ts";
import {
  AckFrame,
  type DeliverView,
  describeServerFrame,
  isV0LoginOk,
  loginFrame,
  OP,
  parseDeliver,
  parseDeliverAt,
  parseSent,
  type Proto,
  V0_LOGIN_OK_BYTES,
} from "./wire.ts";

export interface ConnEvents {
  /**
   * A message body arrived (`v` covers its frame, or the bundle holding it; the body is at `off`, `len` bytes; the
   * sender's message id at `idOff`, `idLen` bytes, or idOff -1 when the protocol carries none).
   */
  deliver(c: Conn, v: DataView, off: number, len: number, idOff: number, idLen: number): void;
  /** v0 over TCP: `n` bodies of `len` bytes back to back from `off`, read together (no ids). */
  deliverRun(c: Conn, v: DataView, off: number, len: number, n: number): void;
  /** v1 SENT: status 1 delivered, 2 stored, 3 duplicate; the id is at frame[idOff..idOff+idLen]. */
  sent(c: Conn, status: number, frame: Uint8Array, idOff: number, idLen: number): void;
  /** An ERROR frame (or a malformed one); `id` is the message id it refers to, if any. */
  serverError(c: Conn, what: string, id?: string): void;
  closed(c: Conn, code: number, reason: string): void;
}

const ACK_EVERY = 128;
const ackQueue: Conn[] = [];
let ackScheduled = false;

function flushAcks(): void {
  ackScheduled = false;
  for (const c of ackQueue.splice(0)) c.ackNow();
}

export class Conn {
  open = false;
  closing = false;
  delivered = 0;
  highestSeq = 0;
  lastSeq = 0;
  outOfOrder = 0;
  /** Set by callers that watch a connection (e.g. the hotspot drain). */
  expect = 0;
  doneAt = 0;
  private ackedSeq = 0;
  private ackQueued = false;
  private readonly ack = new AckFrame();
  private readonly dv: DeliverView = { seq: 0, idOff: 0, idLen: 0, bodyOff: 0, bodyLen: 0 };
  private ws: WebSocket | null = null;
  private tcp: Socket<undefined> | null = null;
  private tcpOut: Uint8Array[] = [];
  private tcpOutBytes = 0;
  private rx: Uint8Array | null = null;
  /** Bundled writes: byte 0 is the BUNDLE opcode, frames follow; granted by LOGIN_OK. */
  private out: Uint8Array | null = null;
  private outAt = 1;
  private outFrames = 0;
  private outScheduled = false;
  /** Inside a server bundle: acks wait for its end. */
  private inBundle = false;

  constructor(
    readonly i: number,
    readonly user: string,
    readonly proto: Proto,
    private readonly payload: number,
    private readonly ev: ConnEvents,
    readonly bundles = false,
  ) {}

  send(b: Uint8Array): void {
    if (this.out) return this.queue(b);
    if (this.ws) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(b);
      return;
    }
    if (!this.tcp) return;
    if (this.tcpOut.length > 0) {
      this.tcpOut.push(b.slice());
      this.tcpOutBytes += b.byteLength;
      return;
    }
    const n = this.tcp.write(b);
    if (n < b.byteLength) {
      const rest = b.slice(Math.max(n, 0));
      this.tcpOut.push(rest);
      this.tcpOutBytes += rest.byteLength;
    }
  }

  /** Copies a frame into this turn's bundle (callers reuse their buffers); written in a microtask. */
  private queue(b: Uint8Array): void {
    const out = this.out!;
    if (this.outAt + b.byteLength > out.byteLength) this.flushOut();
    if (1 + b.byteLength > out.byteLength) return void this.ws?.send(b); // too big to bundle: alone
    out.set(b, this.outAt);
    this.outAt += b.byteLength;
    this.outFrames++;
    if (!this.outScheduled) {
      this.outScheduled = true;
      queueMicrotask(() => this.flushOut());
    }
  }

  private flushOut(): void {
    this.outScheduled = false;
    const out = this.out;
    if (!out || this.outFrames === 0) return;
    // One frame goes as itself; WebSocket.send copies, so the buffer is reused at once.
    const msg = this.outFrames === 1 ? out.subarray(1, this.outAt) : out.subarray(0, this.outAt);
    this.outAt = 1;
    this.outFrames = 0;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(msg);
  }

  /** Bytes accepted by send() but not yet handed to the kernel. */
  buffered(): number {
    return this.ws ? this.ws.bufferedAmount : this.tcpOutBytes;
  }

  close(): void {
    this.flushOut();
    this.closing = true;
    this.ws?.close(1000, "bench done");
    this.tcp?.end();
  }

  ackNow(): void {
    this.ackQueued = false;
    if (this.highestSeq > this.ackedSeq && this.open) {
      this.ackedSeq = this.highestSeq;
      this.send(this.ack.set(this.highestSeq));
    }
  }

  private noteSeq(seq: number): void {
    if (seq <= this.lastSeq) this.outOfOrder++;
    this.lastSeq = seq;
    if (seq > this.highestSeq) this.highestSeq = seq;
    if (this.highestSeq - this.ackedSeq >= ACK_EVERY && !this.inBundle) return this.ackNow();
    if (!this.ackQueued) {
      this.ackQueued = true;
      ackQueue.push(this);
      if (!ackScheduled) {
        ackScheduled = true;
        setImmediate(flushAcks);
      }
    }
  }

  /**
   * A server BUNDLE: each inner frame in order, then one ack for all its deliveries. DELIVER frames
   * are read in place through one view of the bundle (a view and a subarray per frame were most of
   * the client's CPU over a bundled drain, on the cores the server needs).
   */
  private onBundle(b: Uint8Array): void {
    this.inBundle = true;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let at = 1;
    while (at < b.byteLength) {
      const n = serverFrameLength(b, at);
      if (n <= 0) {
        this.ev.serverError(this, "malformed BUNDLE frame");
        break;
      }
      if (b[at] !== OP.DELIVER) this.onFrame(b.subarray(at, at + n));
      else if (!parseDeliverAt(v, at, n, this.dv)) this.ev.serverError(this, "malformed DELIVER frame");
      else {
        this.delivered++;
        this.noteSeq(this.dv.seq);
        this.ev.deliver(this, v, this.dv.bodyOff, this.dv.bodyLen, this.dv.idOff, this.dv.idLen);
      }
      at += n;
    }
    this.inBundle = false;
    if (this.highestSeq - this.ackedSeq >= ACK_EVERY) this.ackNow();
  }

  /** One WebSocket message (or one v0 body cut from the TCP stream). */
  private onFrame(b: Uint8Array): void {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (this.proto === "v0") {
      this.delivered++;
      this.ev.deliver(this, v, 0, b.byteLength, -1, 0);
      return;
    }
    switch (b[0]) {
      case V1_BUNDLE_SERVER:
        return this.inBundle ? this.ev.serverError(this, "nested BUNDLE") : this.onBundle(b);
      case OP.DELIVER:
        if (!parseDeliver(v, this.dv)) return this.ev.serverError(this, "malformed DELIVER frame");
        this.delivered++;
        this.noteSeq(this.dv.seq);
        this.ev.deliver(this, v, this.dv.bodyOff, this.dv.bodyLen, this.dv.idOff, this.dv.idLen);
        return;
      case OP.SENT: {
        const s = parseSent(b);
        if (!s) return this.ev.serverError(this, "malformed SENT frame");
        this.ev.sent(this, s.status, b, s.idOff, s.idLen);
        return;
      }
      case OP.ERROR: {
        const e = describeServerFrame(b);
        return this.ev.serverError(this, e.text, e.id);
      }
      default:
        return; // LOGIN_OK, PONG, STATUS: nothing to count
    }
  }

  /** Opens and logs in; resolves once the server confirmed the login. */
  connect(target: Target, timeoutMs: number): Promise<void> {
    return target.kind === "ws" ? this.connectWs(target.url, timeoutMs) : this.connectTcp(target, timeoutMs);
  }

  private connectWs(url: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      const timer = setTimeout(() => fail(`no login reply within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.closing = true;
        try {
          ws.close();
        } catch {
          // already closed
        }
        reject(new Error(why));
      };
      ws.onopen = () => ws.send(loginFrame(this.proto, this.user, this.bundles));
      ws.onerror = () => fail("websocket error (refused, or HTTP error such as 503 at capacity)");
      ws.onclose = (e) => {
        if (!settled) return fail(`closed during login: ${e.code} ${e.reason}`);
        this.open = false;
        if (!this.closing) this.ev.closed(this, e.code, e.reason);
      };
      ws.onmessage = (e) => {
        const b = new Uint8Array(e.data as ArrayBuffer);
        if (settled) return this.onFrame(b);
        const ok = this.proto === "v1" ? b[0] === OP.LOGIN_OK : isV0LoginOk(b);
        if (!ok) {
          return fail(`login refused: ${this.proto === "v1" ? describeServerFrame(b).text : "unexpected reply"}`);
        }
        settled = true;
        clearTimeout(timer);
        this.open = true;
        this.grant(b);
        resolve();
      };
    });
  }

  /** LOGIN_OK of a login with flags: `str8 user | u64 now | u8 flags | u32 max_frame`. */
  private grant(b: Uint8Array): void {
    if (!this.bundles || this.proto !== "v1") return;
    const at = 2 + b[1]! + 8;
    if (b.byteLength !== at + 5 || (b[at]! & 1) === 0) return;
    const max = new DataView(b.buffer, b.byteOffset).getUint32(at + 1);
    this.out = new Uint8Array(Math.min(max, 256 * 1024));
    this.out[0] = V1_BUNDLE_CLIENT;
  }

  private async connectTcp(t: { host: string; port: number }, timeoutMs: number): Promise<void> {
    let settled = false;
    let loggedIn!: () => void;
    let failed!: (e: Error) => void;
    const login = new Promise<void>((res, rej) => {
      loggedIn = () => {
        settled = true;
        this.open = true;
        res();
      };
      failed = (e) => {
        if (settled) return;
        settled = true;
        rej(e);
      };
    });
    const timer = setTimeout(() => failed(new Error(`no login reply within ${timeoutMs} ms`)), timeoutMs);
    this.tcp = await Bun.connect({
      hostname: t.host,
      port: t.port,
      socket: {
        // A view, not a copy (the bytes are read before the callback returns; leftovers are copied).
        data: (_s, chunk) =>
          this.onTcpData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), settled, loggedIn, failed),
        drain: (s) => this.flushTcp(s),
        close: () => {
          this.open = false;
          if (!settled) failed(new Error("closed during login"));
          else if (!this.closing) this.ev.closed(this, 0, "tcp closed");
        },
        error: (_s, e) => failed(e),
      },
    });
    this.tcp.write(loginFrame("v0", this.user));
    try {
      await login;
    } finally {
      clearTimeout(timer);
    }
  }

  private flushTcp(s: Socket<undefined>): void {
    while (this.tcpOut.length > 0) {
      const b = this.tcpOut[0]!;
      const n = Math.max(s.write(b), 0);
      this.tcpOutBytes -= n;
      if (n < b.byteLength) {
        this.tcpOut[0] = b.slice(n);
        return;
      }
      this.tcpOut.shift();
    }
  }

  /** v0 over TCP: "\x03LOGIN_OK", then raw bodies back to back, cut by the fixed payload size. */
  private onTcpData(chunk: Uint8Array, loggedIn: boolean, onLogin: () => void, onFail: (e: Error) => void): void {
    if (!loggedIn) {
      const buf = this.rx ? joined(this.rx, chunk) : chunk;
      if (buf.byteLength < V0_LOGIN_OK_BYTES) {
        this.rx = buf.slice();
        return;
      }
      if (!isV0LoginOk(buf)) return onFail(new Error("login refused: unexpected reply"));
      this.rx = null;
      onLogin();
      return this.onBodies(buf.subarray(V0_LOGIN_OK_BYTES));
    }
    this.onBodies(chunk);
  }

  /**
   * Bodies cut from the stream: a body split across reads is completed from the next read's head
   * and the rest is read in place. (The login reply shifts the stream off the read size, so joining
   * every read to the bytes left over from the last copied the whole stream into fresh memory:
   * most of the client's CPU over a v0 drain, on the cores the server needs.)
   */
  private onBodies(chunk: Uint8Array): void {
    let pos = 0;
    if (this.rx) {
      const need = this.payload - this.rx.byteLength;
      if (chunk.byteLength < need) {
        this.rx = joined(this.rx, chunk);
        return;
      }
      const one = joined(this.rx, chunk.subarray(0, need));
      this.rx = null;
      this.delivered++;
      this.ev.deliverRun(this, new DataView(one.buffer), 0, this.payload, 1);
      pos = need;
    }
    // One view over the read for all its bodies, not a view and a subarray per 64-byte body.
    const n = Math.floor((chunk.byteLength - pos) / this.payload);
    if (n > 0) {
      this.delivered += n;
      this.ev.deliverRun(this, new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength), pos, this.payload, n);
      pos += n * this.payload;
    }
    if (pos < chunk.byteLength) this.rx = chunk.slice(pos);
  }
}

/** a then b in one fresh buffer. */
function joined(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
