// Big-endian byte helpers shared by the v0 and v1 codecs. Pure, allocation-conscious.

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const lossyDecoder = new TextDecoder("utf-8");

import { ProtocolError } from "./errors.ts";

export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** Strict UTF-8 decode: invalid bytes are a protocol error, not silently replaced. */
export function fromUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8Decoder.decode(b);
  } catch {
    throw new ProtocolError("BAD_FRAME", `${what} is not valid UTF-8`);
  }
}

export function fromUtf8Lossy(b: Uint8Array): string {
  return lossyDecoder.decode(b);
}

/** Base64 to bytes with the web-standard `atob`, so the client codec runs in browsers (no Buffer). */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Sequential reader over one frame; every read checks bounds and names what was truncated. */
export class Reader {
  private pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array, start = 0) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }
  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.byteLength - this.pos;
  }
  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.byteLength) {
      throw new ProtocolError("BAD_FRAME", `truncated frame: ${what}`);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  /** u64 as a JS number; values above 2^53 are rejected rather than rounded. */
  u64(what: string): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1fffff) throw new ProtocolError("BAD_FRAME", `${what} exceeds 2^53`);
    return hi * 0x100000000 + lo;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Uint8Array {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.byteLength;
    return b;
  }
  str8(what: string): string {
    return fromUtf8(this.bytes(this.u8(what), what), what);
  }
  str16(what: string): string {
    return fromUtf8(this.bytes(this.u16(what), what), what);
  }
  end(what: string): void {
    if (this.remaining !== 0) {
      throw new ProtocolError("BAD_FRAME", `${this.remaining} trailing bytes after ${what}`);
    }
  }
}

/** Writer over an exactly-sized buffer: callers compute the size first, so no reallocation. */
export class Writer {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  u8(v: number): this {
    this.buf[this.pos++] = v;
    return this;
  }
  u16(v: number): this {
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.view.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }
  u64(v: number): this {
    this.view.setUint32(this.pos, Math.floor(v / 0x100000000));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
    return this;
  }
  done(): Uint8Array {
    if (this.pos !== this.buf.byteLength) {
      throw new Error(`writer size mismatch: wrote ${this.pos} of ${this.buf.byteLength}`);
    }
    return this.buf;
  }
}
