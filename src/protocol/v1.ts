// v1 binary frames. Opcodes are chosen outside the seed's 0x01..0x06 (and its later 0x10), so the
// first byte of a connection's first frame tells v0 from v1. Big-endian; str8 = u8 length + UTF-8.
//
// client to server                               server to client
//   0x21 LOGIN  u8 ver=1|str8 user|str16 token|    0x41 LOGIN_OK str8 user|u64 now_ms
//               u64 resume (last acked seq)        0x42 DELIVER  u64 seq|u64 ts_ms|str8 from|str8 id|
//   0x22 SEND   str8 id|str8 to|u32 len|body                     u32 len|body
//   0x23 ACK    u64 seq (cumulative)               0x43 SENT     str8 id|u8 status (1 delivered,
//   0x24 STATUS str8 user                                        2 stored, 3 duplicate)
//   0x25 PING                                      0x44 STATUS   str8 user|u8 online|u64 last_seen_ms
//                                                  0x45 ERROR    u16 code|str8 id|str16 reason
//                                                  0x46 PONG

import { Reader, utf8, utf8Length, Writer } from "./bytes.ts";
import {
  encodeDeliveries,
  encodeSent,
  forEachInBundle,
  splitServerBundle,
  V1_BUNDLE_CLIENT,
  V1_BUNDLE_SERVER,
} from "./v1-bundle.ts";
import { ErrorCode, type ErrorName, errorName, ProtocolError } from "./errors.ts";
import type { ClientFrame, SendStatus, ServerFrame } from "./frames.ts";

export const V1 = {
  LOGIN: 0x21,
  SEND: 0x22,
  ACK: 0x23,
  STATUS: 0x24,
  PING: 0x25,
  LOGIN_OK: 0x41,
  DELIVER: 0x42,
  SENT: 0x43,
  STATUS_REPLY: 0x44,
  ERROR: 0x45,
  PONG: 0x46,
} as const;

export const V1_VERSION = 1;

export function isV1ClientOpcode(b: number): boolean {
  return b >= V1.LOGIN && b <= V1.PING;
}

/**
 * Decodes one v1 WebSocket message: one frame, or (only for a connection granted bundles) a client
 * BUNDLE of SEND / ACK / STATUS / PING frames. Without the grant 0x26 stays an unknown opcode.
 */
export function decodeV1ClientMessage(frame: Uint8Array, maxBody: number, bundles: boolean): ClientFrame[] {
  if (frame[0] !== V1_BUNDLE_CLIENT || !bundles) return [decodeV1Client(frame, maxBody)];
  const out: ClientFrame[] = [];
  forEachInBundle(frame, (r) => {
    const op = r.u8("opcode");
    if (op === V1.LOGIN || op === V1_BUNDLE_CLIENT) {
      throw new ProtocolError("BAD_FRAME", `opcode 0x${op.toString(16)} cannot be inside a bundle`);
    }
    out.push(decodeV1ClientBody(op, r, maxBody));
  });
  return out;
}

/** SENT's status byte per status. */
export const SENT_STATUS_BYTE: Record<SendStatus, number> = { delivered: 1, stored: 2, duplicate: 3 };
const statusName: Record<number, SendStatus> = { 1: "delivered", 2: "stored", 3: "duplicate" };

export function decodeV1Client(frame: Uint8Array, maxBody: number): ClientFrame {
  const r = new Reader(frame);
  const out = decodeV1ClientBody(r.u8("opcode"), r, maxBody);
  r.end("frame");
  return out;
}

/** One client frame's fields after its opcode; leaves the reader right after the frame. */
function decodeV1ClientBody(op: number, r: Reader, maxBody: number): ClientFrame {
  let out: ClientFrame;
  switch (op) {
    case V1.LOGIN: {
      const ver = r.u8("version");
      if (ver !== V1_VERSION) throw new ProtocolError("UNSUPPORTED", `protocol version ${ver} is not supported`);
      const user = r.str8("user");
      const token = r.str16("token");
      const resume = r.u64("resume");
      // The optional flags byte (v1-bundle.ts): a LOGIN without it is the unchanged original frame.
      const flags = r.remaining > 0 ? r.u8("flags") : undefined;
      out = {
        op: "login",
        user,
        proto: "v1",
        ...(token ? { token } : {}),
        ...(resume ? { resume } : {}),
        ...(flags !== undefined ? { flags } : {}),
      };
      break;
    }
    case V1.SEND: {
      const id = r.str8("message id");
      const to = r.str8("target");
      const len = r.u32("body length");
      if (len > maxBody) throw new ProtocolError("PAYLOAD_TOO_LARGE", `body of ${len} bytes exceeds ${maxBody}`);
      out = { op: "send", id, to, body: r.copy(len, "body") };
      break;
    }
    case V1.ACK:
      out = { op: "ack", seq: r.u64("seq") };
      break;
    case V1.STATUS:
      out = { op: "status", user: r.str8("user") };
      break;
    case V1.PING:
      out = { op: "ping" };
      break;
    default:
      throw new ProtocolError("UNKNOWN_OP", `unknown v1 opcode 0x${op.toString(16).padStart(2, "0")}`);
  }
  return out;
}

export function encodeV1Server(f: ServerFrame): Uint8Array {
  switch (f.op) {
    case "login_ok": {
      const u = utf8(f.user);
      if (f.flags === undefined) {
        return new Writer(1 + 1 + u.byteLength + 8).u8(V1.LOGIN_OK).u8(u.byteLength).bytes(u).u64(f.now).done();
      }
      return new Writer(1 + 1 + u.byteLength + 8 + 1 + 4).u8(V1.LOGIN_OK).u8(u.byteLength).bytes(u).u64(f.now)
        .u8(f.flags).u32(f.maxFrame ?? 0).done();
    }
    case "deliver":
      return encodeDeliveries([f], 0, 1);
    case "sent":
      return encodeSent(f.id, SENT_STATUS_BYTE[f.status]);
    case "status": {
      const u = utf8(f.user);
      return new Writer(1 + 1 + u.byteLength + 1 + 8).u8(V1.STATUS_REPLY).u8(u.byteLength).bytes(u)
        .u8(f.online ? 1 : 0).u64(f.lastSeen).done();
    }
    case "error": {
      const id = utf8(f.id ?? "");
      const reason = utf8(f.reason.slice(0, 1000));
      const code = ErrorCode[f.code as ErrorName] ?? ErrorCode.INTERNAL;
      return new Writer(1 + 2 + 1 + id.byteLength + 2 + reason.byteLength).u8(V1.ERROR).u16(code)
        .u8(id.byteLength).bytes(id).u16(reason.byteLength).bytes(reason).done();
    }
    case "pong":
      return new Uint8Array([V1.PONG]);
  }
}

/** Hot path: the router pre-encodes sender and id once per message, not once per delivery attempt. */
export function encodeV1Deliver(
  seq: number,
  ts: number,
  from: Uint8Array,
  id: Uint8Array,
  body: Uint8Array,
): Uint8Array {
  return new Writer(1 + 8 + 8 + 1 + from.byteLength + 1 + id.byteLength + 4 + body.byteLength)
    .u8(V1.DELIVER).u64(seq).u64(ts).u8(from.byteLength).bytes(from).u8(id.byteLength).bytes(id)
    .u32(body.byteLength).bytes(body).done();
}

// ---- client side (SDK, bench, tests) ----

export function encodeV1Client(f: ClientFrame): Uint8Array {
  switch (f.op) {
    case "login": {
      const u = utf8(f.user);
      const t = utf8(f.token ?? "");
      const w = new Writer(1 + 1 + 1 + u.byteLength + 2 + t.byteLength + 8 + (f.flags === undefined ? 0 : 1))
        .u8(V1.LOGIN).u8(V1_VERSION).u8(u.byteLength).bytes(u).u16(t.byteLength).bytes(t).u64(f.resume ?? 0);
      return (f.flags === undefined ? w : w.u8(f.flags)).done();
    }
    case "send": {
      const id = utf8Length(f.id);
      const to = utf8Length(f.to);
      return new Writer(1 + 1 + id + 1 + to + 4 + f.body.byteLength).u8(V1.SEND).str8(f.id, id).str8(f.to, to)
        .u32(f.body.byteLength).bytes(f.body).done();
    }
    case "ack":
      return new Writer(9).u8(V1.ACK).u64(f.seq).done();
    case "status": {
      const u = utf8(f.user);
      return new Writer(2 + u.byteLength).u8(V1.STATUS).u8(u.byteLength).bytes(u).done();
    }
    case "ping":
      return new Uint8Array([V1.PING]);
    default:
      throw new Error(`op ${f.op} has no v1 encoding`);
  }
}

/** Client side: one server message as its frames (a BUNDLE is split into its frames, in order). */
export function decodeV1ServerMessage(frame: Uint8Array): ServerFrame[] {
  if (frame[0] !== V1_BUNDLE_SERVER) return [decodeV1Server(frame)];
  return splitServerBundle(frame).map(decodeV1Server);
}

export function decodeV1Server(frame: Uint8Array): ServerFrame {
  const r = new Reader(frame);
  const op = r.u8("opcode");
  let out: ServerFrame;
  switch (op) {
    case V1.LOGIN_OK: {
      const user = r.str8("user");
      const now = r.u64("now");
      // A login that carried flags is answered with the granted flags and the largest client frame.
      out = r.remaining > 0 ? { op: "login_ok", user, now, flags: r.u8("flags"), maxFrame: r.u32("max") } : {
        op: "login_ok",
        user,
        now,
      };
      break;
    }
    case V1.DELIVER: {
      const seq = r.u64("seq");
      const ts = r.u64("ts");
      const from = r.str8("from");
      const id = r.str8("id");
      const body = r.bytes(r.u32("body length"), "body");
      out = { op: "deliver", seq, ts, from, id, body };
      break;
    }
    case V1.SENT: {
      const id = r.str8("id");
      const s = r.u8("status");
      const status = statusName[s];
      if (!status) throw new ProtocolError("BAD_FRAME", `unknown send status ${s}`);
      out = { op: "sent", id, status };
      break;
    }
    case V1.STATUS_REPLY:
      out = { op: "status", user: r.str8("user"), online: r.u8("online") === 1, lastSeen: r.u64("last seen") };
      break;
    case V1.ERROR: {
      const code = r.u16("code");
      const id = r.str8("id");
      const reason = r.str16("reason");
      out = { op: "error", code: errorName(code) ?? `E${code}`, reason, ...(id ? { id } : {}) };
      break;
    }
    case V1.PONG:
      out = { op: "pong" };
      break;
    default:
      throw new ProtocolError("UNKNOWN_OP", `unknown server opcode 0x${op.toString(16)}`);
  }
  r.end("frame");
  return out;
}
