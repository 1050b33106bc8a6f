// v1 bundles (issue 14): an extension a v1 client opts into with a flags byte at the end of its
// LOGIN. Old clients never send that byte, so they never see a bundle.
//
//   LOGIN     ... | u64 resume | u8 flags           flags bit 0 (BUNDLE): "I read and write bundles"
//                                                  flags bit 1 (ORDERED): "I retry a refused send, oldest first,
//                                                  before any later send to its recipient" (send-chain.ts)
//   LOGIN_OK  str8 user | u64 now_ms | u8 flags | u32 max_frame
//             (only when the login carried flags: the flags granted, and the largest client frame
//              the server reads, so a client sizes its bundles to fit)
//   0x26 BUNDLE (client → server)  frame | frame | ...   complete SEND / ACK / STATUS / PING frames
//   0x47 BUNDLE (server → client)  frame | frame | ...   complete DELIVER / SENT / STATUS / ERROR / PONG
//
// Every v1 frame is self-delimiting (fixed fields and length-prefixed strings and bodies), so a bundle
// is just frames back to back behind one opcode: one WebSocket message carries a whole backlog page,
// or every SENT answered in one event-loop turn. A bundle never nests and never holds a LOGIN.

import { ProtocolError } from "./errors.ts";
import { putStr8, Reader, utf8Length, writeU32, writeU64 } from "./bytes.ts";

export { utf8Length };

/** LOGIN flag bit: the client reads server bundles and may write client bundles. */
export const V1_FLAG_BUNDLE = 0x01;
/**
 * LOGIN flag bit: the client retries every send refused for now (same id) before any later send to
 * the same recipient (client/order-lanes.ts). The server then keeps such a send linked as the
 * predecessor of later ones until it is answered for good (gateway/send-chain.ts); without the
 * bit a refusal ends the link, so a client that gives up a refused send is not held behind it.
 */
export const V1_FLAG_ORDERED = 0x02;
/** Flag bits this server understands; others are ignored (and not granted in LOGIN_OK). */
export const V1_KNOWN_FLAGS = V1_FLAG_BUNDLE | V1_FLAG_ORDERED;

export const V1_BUNDLE_CLIENT = 0x26;
export const V1_BUNDLE_SERVER = 0x47;

/** A delivery as the session has it (strings decoded once by the router). */
export interface BundleDelivery {
  seq: number;
  ts: number;
  from: string;
  id: string;
  body: Uint8Array;
}

/** DELIVER header size before the body: op, seq, ts, from, id, body length. */
export const DELIVER_FIXED_BYTES = 1 + 8 + 8 + 1 + 1 + 4;
const deliverFixed = DELIVER_FIXED_BYTES;

/**
 * Writes one DELIVER frame `0x42 | u64 seq | u64 ts | str8 from | str8 id | u32 len | body` at `at`
 * (the caller sized `buf` and measured the strings); returns where it ends. The one place its
 * layout is written: live frames, bundles and the writer's pre-encoded backlog pages all use it.
 */
export function putDeliver(
  buf: Uint8Array,
  at: number,
  seq: number,
  ts: number,
  from: string,
  fromLen: number,
  id: string,
  idLen: number,
  body: Uint8Array,
): number {
  at = putDeliverHead(buf, at, seq, ts, from, fromLen, id, idLen, body.byteLength);
  buf.set(body, at);
  return at + body.byteLength;
}

/** A DELIVER frame's bytes before its body (through the body's length); returns the end offset. */
function putDeliverHead(
  buf: Uint8Array,
  at: number,
  seq: number,
  ts: number,
  from: string,
  fromLen: number,
  id: string,
  idLen: number,
  bodyLen: number,
): number {
  buf[at] = 0x42; // DELIVER
  writeU64(buf, at + 1, seq);
  writeU64(buf, at + 9, ts);
  at = putStr8(buf, at + 17, from, fromLen);
  at = putStr8(buf, at, id, idLen);
  writeU32(buf, at, bodyLen);
  return at + 4;
}

/**
 * The DELIVER frame of a stored row up to its body, stored with the row (issue 14, migration 6):
 * a backlog page is then each row's head and body copied, with nothing encoded while a drain waits.
 */
export function deliverHead(seq: number, ts: number, from: string, id: string, bodyLen: number): Uint8Array {
  const fromLen = utf8Length(from);
  const idLen = utf8Length(id);
  const buf = new Uint8Array(deliverFixed + fromLen + idLen);
  putDeliverHead(buf, 0, seq, ts, from, fromLen, id, idLen, bodyLen);
  return buf;
}

/**
 * Encodes deliveries [start, end) as one WebSocket message in a single allocation: a plain DELIVER
 * for one item, a server BUNDLE of DELIVERs for more.
 */
export function encodeDeliveries(items: readonly BundleDelivery[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return encodeDeliver(items[start]!);
  const fromLen = new Array<number>(n);
  const idLen = new Array<number>(n);
  let size = n > 1 ? 1 : 0;
  for (let i = 0; i < n; i++) {
    const d = items[start + i]!;
    size += deliverFixed + (fromLen[i] = utf8Length(d.from)) + (idLen[i] = utf8Length(d.id)) + d.body.byteLength;
  }
  const buf = new Uint8Array(size);
  let at = 0;
  if (n > 1) buf[at++] = V1_BUNDLE_SERVER;
  for (let i = 0; i < n; i++) {
    const d = items[start + i]!;
    at = putDeliver(buf, at, d.seq, d.ts, d.from, fromLen[i]!, d.id, idLen[i]!, d.body);
  }
  return buf;
}

/** One DELIVER frame (the live path: one per message, so no length arrays). */
export function encodeDeliver(d: BundleDelivery): Uint8Array {
  const fromLen = utf8Length(d.from);
  const idLen = utf8Length(d.id);
  const buf = new Uint8Array(deliverFixed + fromLen + idLen + d.body.byteLength);
  putDeliver(buf, 0, d.seq, d.ts, d.from, fromLen, d.id, idLen, d.body);
  return buf;
}

/** One SENT frame `0x43 | str8 id | u8 status`, without a frame object or Writer (one per message). */
export function encodeSent(id: string, status: number): Uint8Array {
  const n = utf8Length(id);
  const buf = new Uint8Array(3 + n);
  buf[0] = 0x43; // SENT
  putStr8(buf, 1, id, n);
  buf[2 + n] = status;
  return buf;
}

/** One message holding `frames` (already encoded v1 frames): the frame itself, or a BUNDLE of them. */
export function bundleOf(frames: readonly Uint8Array[], bytes: number, op = V1_BUNDLE_SERVER): Uint8Array {
  if (frames.length === 1) return frames[0]!;
  const out = new Uint8Array(1 + bytes);
  out[0] = op;
  let at = 1;
  for (const f of frames) {
    out.set(f, at);
    at += f.byteLength;
  }
  return out;
}

/**
 * Length of the v1 server frame starting at `at` (read from its own fields), or -1 when it is
 * truncated or not a frame that may sit in a bundle. Lets a client walk a bundle without decoding.
 */
export function serverFrameLength(b: Uint8Array, at: number): number {
  const left = b.byteLength - at;
  const u8 = (o: number) => (o < left ? b[at + o]! : -1);
  const u16 = (o: number) => (o + 1 < left ? (b[at + o]! << 8) | b[at + o + 1]! : -1);
  let len = -1;
  switch (b[at]) {
    case 0x42: { // DELIVER: op seq ts str8 from, str8 id, u32 len, body
      const from = u8(17);
      const id = from < 0 ? -1 : u8(18 + from);
      const p = 19 + from + id;
      if (id < 0 || p + 4 > left) return -1;
      len = p + 4 + ((b[at + p]! * 0x1000000) + (b[at + p + 1]! << 16 | b[at + p + 2]! << 8 | b[at + p + 3]!));
      break;
    }
    case 0x43: { // SENT: op str8 id u8 status
      const id = u8(1);
      len = id < 0 ? -1 : 3 + id;
      break;
    }
    case 0x44: { // STATUS: op str8 user u8 online u64 last_seen
      const u = u8(1);
      len = u < 0 ? -1 : 11 + u;
      break;
    }
    case 0x45: { // ERROR: op u16 code str8 id str16 reason
      const id = u8(3);
      const reason = id < 0 ? -1 : u16(4 + id);
      len = reason < 0 ? -1 : 6 + id + reason;
      break;
    }
    case 0x46: // PONG
      len = 1;
      break;
  }
  return len >= 0 && len <= left ? len : -1;
}

/** Splits a server BUNDLE into its frames (views, no copies); a bad bundle is a protocol error. */
export function splitServerBundle(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 1;
  while (at < b.byteLength) {
    const n = serverFrameLength(b, at);
    if (n <= 0) throw new ProtocolError("BAD_FRAME", `bad frame at byte ${at} of a bundle`);
    out.push(b.subarray(at, at + n));
    at += n;
  }
  if (out.length === 0) throw new ProtocolError("BAD_FRAME", "empty bundle");
  return out;
}

/**
 * Walks a client BUNDLE: calls `one` with a Reader positioned at each inner frame; `one` must
 * consume exactly that frame. An empty bundle is an error.
 */
export function forEachInBundle(b: Uint8Array, one: (r: Reader) => void): void {
  const r = new Reader(b, 1);
  if (r.remaining === 0) throw new ProtocolError("BAD_FRAME", "empty bundle");
  while (r.remaining > 0) one(r);
}
