// The seed system's binary packets (v0), byte for byte. Lengths are big-endian.
//   0x01|user                          login (user = rest of the frame / TCP read)
//   0x02|len16|target|len16|msg        send
//   0x03|id                            ack (id = rest of the frame / TCP read)
//   0x04|len16|target|len32|blob       batch; blob = repeated len16|msg
//   0x05|len16|user                    status query
// Server to client: 0x03|"LOGIN_OK"; a delivery is the raw message bytes;
//   0x06|len16|user|state(1=online)|u64 last_seen (Unix seconds, 0 while online).

import { fromUtf8, Reader, utf8, Writer } from "./bytes.ts";
import { ProtocolError } from "./errors.ts";
import type { ClientFrame } from "./frames.ts";

export const V0 = { LOGIN: 0x01, SEND: 0x02, ACK: 0x03, BATCH: 0x04, STATUS: 0x05, STATUS_REPLY: 0x06 } as const;

export const V0_LOGIN_OK: Uint8Array = new Uint8Array([0x03, ...utf8("LOGIN_OK")]);

export function isV0Opcode(b: number): boolean {
  return b >= V0.LOGIN && b <= V0.STATUS;
}

/** Result of trying to decode one packet from the front of a buffer. */
type Step = { frame: ClientFrame; used: number } | { need: true };

/**
 * Decodes one v0 packet at `buf[start..]`. Login and ack take the rest of the buffer, which the
 * caller arranges to end where the frame or TCP read ended (the seed's rule).
 * `maxBody` bounds declared lengths so a hostile length cannot make us wait for gigabytes.
 */
export function decodeV0Packet(buf: Uint8Array, start: number, maxBody: number): Step {
  const op = buf[start]!;
  const r = new Reader(buf, start + 1);
  switch (op) {
    case V0.LOGIN: {
      const user = fromUtf8(r.rest(), "login user");
      return { frame: { op: "login", user, proto: "v0" }, used: buf.byteLength - start };
    }
    case V0.ACK:
      r.rest();
      return { frame: { op: "ack0" }, used: buf.byteLength - start };
    case V0.SEND: {
      if (r.remaining < 2) return { need: true };
      const tlen = r.u16("target length");
      if (r.remaining < tlen + 2) return { need: true };
      const to = fromUtf8(r.bytes(tlen, "target"), "target");
      const mlen = r.u16("message length");
      if (mlen > maxBody) throw new ProtocolError("PAYLOAD_TOO_LARGE", `message of ${mlen} bytes exceeds ${maxBody}`);
      if (r.remaining < mlen) return { need: true };
      // Copy: the body outlives the receive buffer (it may be queued or stored).
      const body = r.bytes(mlen, "message").slice();
      return { frame: { op: "send", to, id: "", body }, used: r.offset - start };
    }
    case V0.BATCH: {
      if (r.remaining < 2) return { need: true };
      const tlen = r.u16("target length");
      if (r.remaining < tlen + 4) return { need: true };
      const to = fromUtf8(r.bytes(tlen, "target"), "target");
      const blen = r.u32("batch length");
      if (blen > maxBody * 64) throw new ProtocolError("PAYLOAD_TOO_LARGE", `batch of ${blen} bytes is too large`);
      if (r.remaining < blen) return { need: true };
      const bodies = unpackBatch(r.bytes(blen, "batch"), maxBody);
      return { frame: { op: "batch", to, bodies }, used: r.offset - start };
    }
    case V0.STATUS: {
      if (r.remaining < 2) return { need: true };
      const ulen = r.u16("user length");
      if (r.remaining < ulen) return { need: true };
      const user = fromUtf8(r.bytes(ulen, "user"), "user");
      return { frame: { op: "status", user }, used: r.offset - start };
    }
    default:
      throw new ProtocolError("UNKNOWN_OP", `unknown v0 opcode 0x${op.toString(16).padStart(2, "0")}`);
  }
}

/** Splits a batch blob into messages; a truncated trailing item is an error (the seed ignored it). */
export function unpackBatch(blob: Uint8Array, maxBody: number): Uint8Array[] {
  const r = new Reader(blob);
  const out: Uint8Array[] = [];
  while (r.remaining > 0) {
    const len = r.u16("batch item length");
    if (len > maxBody) throw new ProtocolError("PAYLOAD_TOO_LARGE", `batch item of ${len} bytes exceeds ${maxBody}`);
    out.push(r.bytes(len, "batch item").slice());
  }
  return out;
}

/** Decodes a whole WebSocket frame: one or more complete packets, nothing partial allowed. */
export function decodeV0Frame(frame: Uint8Array, maxBody: number): ClientFrame[] {
  const out: ClientFrame[] = [];
  let pos = 0;
  while (pos < frame.byteLength) {
    const step = decodeV0Packet(frame, pos, maxBody);
    if ("need" in step) throw new ProtocolError("BAD_FRAME", "truncated v0 packet");
    out.push(step.frame);
    pos += step.used;
  }
  if (out.length === 0) throw new ProtocolError("BAD_FRAME", "empty frame");
  return out;
}

/**
 * Stream framer for the raw TCP listener: a read may hold a partial packet or several.
 * Buffers at most `maxBuffered` bytes of an incomplete packet.
 */
export class V0StreamDecoder {
  private pending: Uint8Array = new Uint8Array(0);
  constructor(private readonly maxBody: number, private readonly maxBuffered = maxBody * 65 + 16) {}

  /** Feeds one TCP read; returns the complete packets it finished. Throws ProtocolError on garbage. */
  push(chunk: Uint8Array): ClientFrame[] {
    let buf: Uint8Array;
    if (this.pending.byteLength === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.pending.byteLength + chunk.byteLength);
      buf.set(this.pending);
      buf.set(chunk, this.pending.byteLength);
    }
    const out: ClientFrame[] = [];
    let pos = 0;
    while (pos < buf.byteLength) {
      const step = decodeV0Packet(buf, pos, this.maxBody);
      if ("need" in step) break;
      out.push(step.frame);
      pos += step.used;
    }
    const left = buf.byteLength - pos;
    if (left > this.maxBuffered) {
      throw new ProtocolError("PAYLOAD_TOO_LARGE", "incomplete packet exceeds the buffer limit");
    }
    this.pending = left === 0 ? new Uint8Array(0) : buf.slice(pos);
    return out;
  }

  get buffered(): number {
    return this.pending.byteLength;
  }
}

// ---- encoders (server to client, and client to server for the SDK, bench and tests) ----

export function encodeV0Status(user: string, online: boolean, lastSeenMs: number): Uint8Array {
  const u = utf8(user);
  const seconds = online ? 0 : Math.floor(lastSeenMs / 1000);
  return new Writer(1 + 2 + u.byteLength + 1 + 8).u8(V0.STATUS_REPLY).u16(u.byteLength).bytes(u)
    .u8(online ? 1 : 0).u64(seconds).done();
}

export function decodeV0Status(b: Uint8Array): { user: string; online: boolean; lastSeenSeconds: number } {
  const r = new Reader(b);
  if (r.u8("opcode") !== V0.STATUS_REPLY) throw new ProtocolError("UNKNOWN_OP", "not a status reply");
  const user = fromUtf8(r.bytes(r.u16("user length"), "user"), "user");
  const online = r.u8("state") === 1;
  const lastSeenSeconds = r.u64("last seen");
  r.end("status reply");
  return { user, online, lastSeenSeconds };
}

export function encodeV0Login(user: string): Uint8Array {
  const u = utf8(user);
  return new Writer(1 + u.byteLength).u8(V0.LOGIN).bytes(u).done();
}

export function encodeV0Send(to: string, msg: Uint8Array): Uint8Array {
  const t = utf8(to);
  return new Writer(1 + 2 + t.byteLength + 2 + msg.byteLength).u8(V0.SEND).u16(t.byteLength).bytes(t)
    .u16(msg.byteLength).bytes(msg).done();
}

export function encodeV0Ack(id: Uint8Array): Uint8Array {
  return new Writer(1 + id.byteLength).u8(V0.ACK).bytes(id).done();
}

export function encodeV0Batch(to: string, msgs: Uint8Array[]): Uint8Array {
  const t = utf8(to);
  const blobLen = msgs.reduce((n, m) => n + 2 + m.byteLength, 0);
  const w = new Writer(1 + 2 + t.byteLength + 4 + blobLen).u8(V0.BATCH).u16(t.byteLength).bytes(t).u32(blobLen);
  for (const m of msgs) w.u16(m.byteLength).bytes(m);
  return w.done();
}

export function encodeV0StatusQuery(user: string): Uint8Array {
  const u = utf8(user);
  return new Writer(1 + 2 + u.byteLength).u8(V0.STATUS).u16(u.byteLength).bytes(u).done();
}
