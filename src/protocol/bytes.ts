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
// No DataView: asking a small Uint8Array for its `.buffer` makes the engine materialise an
// ArrayBuffer for it, which measured as the single largest cost of the shard thread (issue 14).
export class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array, start = 0) {
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
    const b = this.buf, p = this.pos;
    this.pos += 2;
    return (b[p]! << 8) | b[p + 1]!;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = readU32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }
  /** u64 as a JS number; values above 2^53 are rejected rather than rounded. */
  u64(what: string): number {
    this.need(8, what);
    const hi = readU32(this.buf, this.pos);
    const lo = readU32(this.buf, this.pos + 4);
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
  /** The next n bytes as a copy of their own (a body kept after the frame's buffer is reused). */
  copy(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Uint8Array {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.byteLength;
    return b;
  }
  str8(what: string): string {
    const n = this.u8(what);
    this.need(n, what);
    const s = asciiAt(this.buf, this.pos, n);
    if (s !== null) {
      this.pos += n;
      return s;
    }
    return fromUtf8(this.bytes(n, what), what);
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

/** Big-endian u32 at `at` (the caller checked the bounds). */
export function readU32(b: Uint8Array, at: number): number {
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

/** Big-endian u64 at `at` (a safe integer: what writeU64 wrote; the caller checked the bounds). */
export function readU64(b: Uint8Array, at: number): number {
  return readU32(b, at) * 0x100000000 + readU32(b, at + 4);
}

/** Big-endian u32 written at `at`. */
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** Big-endian u64 (a safe integer) written at `at`. */
export function writeU64(b: Uint8Array, at: number, v: number): void {
  writeU32(b, at, Math.floor(v / 0x100000000));
  writeU32(b, at + 4, v >>> 0);
}

/** Short ASCII strings (ids, user names) decode without a TextDecoder call; null when not ASCII. */
const ASCII_FAST_MAX = 64;
/**
 * The code units of the string being decoded, reused: one fromCharCode.apply builds a flat string
 * (appending a char at a time built a rope of n parts, resolved again when the id is hashed;
 * twice the cost per SEND, issue 14).
 */
const asciiUnits: number[] = [];
function asciiAt(b: Uint8Array, at: number, n: number): string | null {
  if (n > ASCII_FAST_MAX) return null;
  const u = asciiUnits;
  u.length = n;
  for (let i = 0; i < n; i++) {
    const c = b[at + i]!;
    if (c >= 0x80) return null;
    u[i] = c;
  }
  return String.fromCharCode.apply(null, u);
}

/** UTF-8 length of `s` without encoding it (ids and user names are short: a plain loop). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) i++, n += 2; // a surrogate pair: 4 bytes for 2 units
    else n += 2;
  }
  return n;
}

/** Writes str8 (`len` = utf8Length(s), ≤ 255) at `at`; returns the offset after it. */
export function putStr8(buf: Uint8Array, at: number, s: string, len: number): number {
  buf[at++] = len;
  if (len === s.length) {
    for (let i = 0; i < len; i++) buf[at + i] = s.charCodeAt(i); // ASCII: no encoder call
  } else utf8Encoder.encodeInto(s, buf.subarray(at, at + len));
  return at + len;
}

/** Writer over an exactly-sized buffer: callers compute the size first, so no reallocation. */
export class Writer {
  readonly buf: Uint8Array;
  private pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  u8(v: number): this {
    this.buf[this.pos++] = v;
    return this;
  }
  u16(v: number): this {
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v;
    return this;
  }
  u32(v: number): this {
    writeU32(this.buf, this.pos, v);
    this.pos += 4;
    return this;
  }
  u64(v: number): this {
    writeU64(this.buf, this.pos, v);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
    return this;
  }
  /** str8 of a string whose UTF-8 length `len` the caller measured (utf8Length) for the size. */
  str8(s: string, len: number): this {
    this.pos = putStr8(this.buf, this.pos, s, len);
    return this;
  }
  done(): Uint8Array {
    if (this.pos !== this.buf.byteLength) {
      throw new Error(`writer size mismatch: wrote ${this.pos} of ${this.buf.byteLength}`);
    }
    return this.buf;
  }
}
