// A WebSocket client on raw TCP (Bun.connect + a hand-written handshake), for faults the SDK cannot
// produce: a consumer that logs in and then stops reading at the TCP level (the kernel buffers
// fill and the server sees real backpressure), and frames that lie about their length.

import type { Socket } from "bun";

const enc = new TextEncoder();
const dec = new TextDecoder();

export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;

/** Encodes one client frame: masked, as RFC 6455 requires from clients. */
export function encodeClientFrame(
  opcode: number,
  payload: Uint8Array,
  declaredLength = payload.byteLength,
): Uint8Array {
  const n = declaredLength;
  const headLen = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(headLen + 4 + payload.byteLength);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, headLen);
  for (let i = 0; i < payload.byteLength; i++) out[headLen + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

interface Frame {
  opcode: number;
  payload: Uint8Array;
}

/** Splits server frames (unmasked) out of a byte stream; keeps a partial frame for the next chunk. */
class FrameParser {
  private buf = new Uint8Array(0);

  push(chunk: Uint8Array): Frame[] {
    const joined = new Uint8Array(this.buf.byteLength + chunk.byteLength);
    joined.set(this.buf);
    joined.set(chunk, this.buf.byteLength);
    const frames: Frame[] = [];
    let at = 0;
    for (;;) {
      if (joined.byteLength - at < 2) break;
      const b1 = joined[at + 1]! & 0x7f;
      let head = 2;
      let len = b1;
      if (b1 === 126) {
        if (joined.byteLength - at < 4) break;
        len = (joined[at + 2]! << 8) | joined[at + 3]!;
        head = 4;
      } else if (b1 === 127) {
        if (joined.byteLength - at < 10) break;
        len = Number(new DataView(joined.buffer, joined.byteOffset + at + 2, 8).getBigUint64(0));
        head = 10;
      }
      if (joined.byteLength - at < head + len) break;
      frames.push({ opcode: joined[at]! & 0x0f, payload: joined.slice(at + head, at + head + len) });
      at += head + len;
    }
    this.buf = joined.slice(at);
    return frames;
  }
}

export interface RawWsOptions {
  port: number;
  host?: string;
  path?: string;
  timeoutMs?: number;
}

/** One raw connection. `open()` resolves after the HTTP 101; `login()` after the server's login_ok. */
export class RawWs {
  private sock: Socket<undefined> | null = null;
  private handshakeDone = false;
  private head = new Uint8Array(0);
  private readonly parser = new FrameParser();
  private readonly waiters: ((f: Frame | null) => void)[] = [];
  private readonly frames: Frame[] = [];
  private onUpgrade: ((err: Error | null) => void) | null = null;
  /** Bytes the server sent us that we consumed (stops growing once paused). */
  bytesIn = 0;
  closed = false;
  /** The close code the server sent, if a close frame arrived before we stopped reading. */
  closeCode: number | null = null;

  constructor(private readonly o: RawWsOptions) {}

  async open(): Promise<void> {
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
    const host = this.o.host ?? "127.0.0.1";
    const upgraded = new Promise<void>((resolve, reject) => {
      this.onUpgrade = (err) => (err ? reject(err) : resolve());
    });
    this.sock = await Bun.connect({
      hostname: host,
      port: this.o.port,
      socket: {
        data: (_s, chunk) => this.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)),
        close: () => this.gone(),
        error: () => this.gone(),
        connectError: () => this.gone(),
      },
    });
    this.sock.write(
      `GET ${this.o.path ?? "/ws"} HTTP/1.1\r\nHost: ${host}:${this.o.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await withTimeout(upgraded, this.o.timeoutMs ?? 10_000, "websocket handshake");
  }

  /** Logs in with a JSON frame and waits for login_ok. */
  async login(user: string): Promise<void> {
    this.send(OP_TEXT, enc.encode(JSON.stringify({ type: "login", user })));
    for (;;) {
      const f = await withTimeout(this.next(), this.o.timeoutMs ?? 10_000, `login_ok for ${user}`);
      if (f === null) throw new Error(`connection closed before login_ok (close code ${this.closeCode})`);
      if (f.opcode !== OP_TEXT) continue;
      const m = JSON.parse(dec.decode(f.payload)) as { type?: string; code?: string };
      if (m.type === "login_ok") return;
      if (m.type === "error") throw new Error(`login refused: ${m.code}`);
    }
  }

  send(opcode: number, payload: Uint8Array, declaredLength?: number): number {
    return this.sock?.write(encodeClientFrame(opcode, payload, declaredLength)) ?? 0;
  }

  /** Writes raw bytes (e.g. a frame header that promises more than will ever come). */
  write(bytes: Uint8Array): number {
    return this.sock?.write(bytes) ?? 0;
  }

  /** Stops reading: unread data stays in the kernel, whose buffers fill, so the server backs up. */
  pause(): void {
    this.sock?.pause();
  }

  resume(): void {
    this.sock?.resume();
  }

  /** Waits until the server closes the connection (or the time runs out); returns whether it did. */
  async waitClosed(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.closed && Date.now() < end) await Bun.sleep(20);
    return this.closed;
  }

  /** Abortive close: no close handshake, the socket is simply gone. */
  terminate(): void {
    this.sock?.terminate();
    this.gone();
  }

  private next(): Promise<Frame | null> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private receive(chunk: Uint8Array): void {
    this.bytesIn += chunk.byteLength;
    if (!this.handshakeDone) {
      // Work on bytes: frames may follow the HTTP head in the same chunk.
      const joined = new Uint8Array(this.head.byteLength + chunk.byteLength);
      joined.set(this.head);
      joined.set(chunk, this.head.byteLength);
      this.head = joined;
      const end = indexOfHeadEnd(joined);
      if (end < 0) return;
      this.handshakeDone = true;
      const status = dec.decode(joined.subarray(0, end)).split("\r\n")[0] ?? "";
      if (!/^HTTP\/1\.1 101/.test(status)) {
        this.onUpgrade?.(new Error(`upgrade refused: ${status}`));
        return this.terminate();
      }
      this.onUpgrade?.(null);
      this.onUpgrade = null;
      chunk = joined.subarray(end + 4);
      this.head = new Uint8Array(0);
      if (chunk.byteLength === 0) return;
    }
    for (const f of this.parser.push(chunk)) {
      if (f.opcode === OP_CLOSE && f.payload.byteLength >= 2) this.closeCode = (f.payload[0]! << 8) | f.payload[1]!;
      const w = this.waiters.shift();
      if (w) w(f);
      else if (this.frames.length < 64) this.frames.push(f); // a never-reading consumer keeps nothing
    }
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.onUpgrade?.(new Error("connection closed during the handshake"));
    this.onUpgrade = null;
    for (const w of this.waiters.splice(0)) w(null);
  }
}

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.byteLength; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
