// The load generator's lean codec. Frames are built once with the server's own encoders
// (src/protocol), then reused: only the message id and the body's stamp are patched per send
// (WebSocket.send copies, so one buffer serves every send). Server frames are read in place
// without allocating decoded objects; the rare ERROR frame goes through the full decoder.
//
// Body layout (every protocol): f64 send time (performance.now(), ms) | u32 sender index |
// u32 generator tag | padding to the payload size. Sender and receiver of a pair live in the same
// process, so the receiver can subtract the timestamp directly.

import { encodeV0Login, encodeV0Send, V0_LOGIN_OK } from "../../src/protocol/v0.ts";
import { decodeV1Server, encodeV1Client, V1 } from "../../src/protocol/v1.ts";
import { V1_FLAG_BUNDLE } from "../../src/protocol/v1-bundle.ts";

export type Proto = "v0" | "v1";

export const STAMP_BYTES = 16;
export const ID_CHARS = 8;
const DIGITS = new TextEncoder().encode("0123456789abcdefghijklmnopqrstuvwxyz");

export interface SendTemplate {
  frame: Uint8Array;
  view: DataView;
  idOff: number; // -1: v0 sends carry no id
  bodyOff: number;
}

export function sendTemplate(proto: Proto, to: string, payload: number): SendTemplate {
  if (payload < STAMP_BYTES) throw new Error(`payload ${payload} < ${STAMP_BYTES} bytes`);
  const body = new Uint8Array(payload).fill(0x2e); // '.' padding: visible in a packet capture
  const frame = proto === "v1"
    ? encodeV1Client({ op: "send", id: "0".repeat(ID_CHARS), to, body })
    : encodeV0Send(to, body);
  return {
    frame,
    view: new DataView(frame.buffer, frame.byteOffset, frame.byteLength),
    idOff: proto === "v1" ? 2 : -1, // opcode, id length, then the id
    bodyOff: frame.byteLength - payload,
  };
}

/** Writes `n` as a fixed-width base-36 id (8 chars: unique for 2.8e12 sends). */
export function writeId(buf: Uint8Array, off: number, n: number): void {
  for (let k = ID_CHARS - 1; k >= 0; k--) {
    buf[off + k] = DIGITS[n % 36]!;
    n = Math.floor(n / 36);
  }
}

/** readId over a DataView (a received frame), without a copy or a view. */
export function readIdAt(v: DataView, off: number, len: number): number {
  if (len !== ID_CHARS || off + len > v.byteLength) return NaN;
  let n = 0;
  for (let k = 0; k < len; k++) {
    const d = digit(v.getUint8(off + k));
    if (d < 0) return NaN;
    n = n * 36 + d;
  }
  return n;
}

/** A base-36 digit's value, -1 if `c` is not one. */
function digit(c: number): number {
  return c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x7a ? c - 0x61 + 10 : -1;
}

/** Reads an id written by writeId; NaN if it is not one of ours. */
export function readId(buf: Uint8Array, off: number, len: number): number {
  if (len !== ID_CHARS) return NaN;
  let n = 0;
  for (let k = 0; k < len; k++) {
    const d = digit(buf[off + k]!);
    if (d < 0) return NaN;
    n = n * 36 + d;
  }
  return n;
}

/** Patches id and stamp into the template and returns the frame to send. */
export function stamp(t: SendTemplate, id: number, now: number, sender: number, tag: number): Uint8Array {
  if (t.idOff >= 0) writeId(t.frame, t.idOff, id);
  t.view.setFloat64(t.bodyOff, now);
  t.view.setUint32(t.bodyOff + 8, sender);
  t.view.setUint32(t.bodyOff + 12, tag);
  return t.frame;
}

export interface Stamp {
  sentAt: number;
  sender: number;
  tag: number;
}

/** Reads the stamp at `off`; false when the body is too short to carry one. */
export function readStamp(v: DataView, off: number, len: number, out: Stamp): boolean {
  if (len < STAMP_BYTES || off + STAMP_BYTES > v.byteLength) return false;
  out.sentAt = v.getFloat64(off);
  out.sender = v.getUint32(off + 8);
  out.tag = v.getUint32(off + 12);
  return true;
}

/** `bundles`: a v1 login asking for bundles (docs/PROTOCOL.md, "v1 bundles"). */
export function loginFrame(proto: Proto, user: string, bundles = false): Uint8Array {
  if (proto === "v0") return encodeV0Login(user);
  return encodeV1Client({ op: "login", user, proto: "v1", ...(bundles ? { flags: V1_FLAG_BUNDLE } : {}) });
}

export function isV0LoginOk(b: Uint8Array): boolean {
  if (b.byteLength < V0_LOGIN_OK.byteLength) return false;
  for (let i = 0; i < V0_LOGIN_OK.byteLength; i++) if (b[i] !== V0_LOGIN_OK[i]) return false;
  return true;
}

export const V0_LOGIN_OK_BYTES = V0_LOGIN_OK.byteLength;

/** A reusable cumulative ACK frame. */
export class AckFrame {
  readonly frame = encodeV1Client({ op: "ack", seq: 0 });
  private readonly view = new DataView(this.frame.buffer);
  set(seq: number): Uint8Array {
    this.view.setUint32(1, Math.floor(seq / 0x100000000));
    this.view.setUint32(5, seq >>> 0);
    return this.frame;
  }
}

export const OP = V1;

/** Where a DELIVER frame's fields are; filled in place to avoid an allocation per message. */
export interface DeliverView {
  seq: number;
  /** Where the sender's message id is (the exactly-once ledger keys on it). */
  idOff: number;
  idLen: number;
  bodyOff: number;
  bodyLen: number;
}

/** Parses a v1 DELIVER header; false if the frame is malformed. */
export function parseDeliver(v: DataView, out: DeliverView): boolean {
  return parseDeliverAt(v, 0, v.byteLength, out);
}

/**
 * parseDeliver for the frame of `n` bytes at `at` in `v` (one inside a BUNDLE: no view per frame);
 * the offsets it sets are `v`'s.
 */
export function parseDeliverAt(v: DataView, at: number, n: number, out: DeliverView): boolean {
  if (n < 23 || at + n > v.byteLength) return false;
  out.seq = v.getUint32(at + 1) * 0x100000000 + v.getUint32(at + 5);
  let p = 17;
  p += 1 + v.getUint8(at + p); // from
  if (p >= n) return false;
  out.idLen = v.getUint8(at + p);
  out.idOff = at + p + 1;
  p += 1 + out.idLen; // id
  if (p + 4 > n) return false;
  out.bodyLen = v.getUint32(at + p);
  out.bodyOff = at + p + 4;
  return p + 4 + out.bodyLen === n;
}

/** A v1 SENT frame's status (1 delivered, 2 stored, 3 duplicate) and where its id is. */
export function parseSent(b: Uint8Array): { status: number; idOff: number; idLen: number } | null {
  if (b.byteLength < 3) return null;
  const idLen = b[1]!;
  if (b.byteLength !== 3 + idLen) return null;
  return { status: b[2 + idLen]!, idOff: 2, idLen };
}

/** Full decode for the rare frames where detail matters (errors): "CODE: reason" and the id. */
export function describeServerFrame(b: Uint8Array): { text: string; id?: string } {
  try {
    const f = decodeV1Server(b);
    if (f.op !== "error") return { text: f.op };
    return { text: `${f.code}: ${f.reason}`, ...(f.id ? { id: f.id } : {}) };
  } catch (e) {
    return { text: `undecodable frame (${(e as Error).message})` };
  }
}
