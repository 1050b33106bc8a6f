// The baseline: a bare Bun WebSocket relay doing the least work that still speaks Iris's v1
// LOGIN / SEND → DELIVER frames (and the seed's v0 login/send), single-threaded, with a Map from
// user to socket. No storage, no acks to senders, no sequencing guarantees, no dedupe: what Bun
// itself costs, so Iris can be reported as a ratio of it measured in the same run.
//
// With --ack-offline it is the offline flood's yardstick instead: a send to a user who is not
// connected is answered SENT "stored" at once (and stored nowhere), and a v1 login asking for
// bundles gets them (client BUNDLEs are read; a message's SENTs leave as one server BUNDLE). What
// is left is the least any server must do to answer a flood: read its frames and write its acks.
// With --ack-sends (issue 14) every send relayed live is also answered SENT "delivered" at once,
// written with the other answers of the client message it came in: the frames a v1 message moves
// through Iris (SEND, SENT, DELIVER, ACK) and no other work, so the yardstick for how much of
// Iris's cost a message is the protocol's extra frame rather than Iris's own work.
// Usage: bun bench/baseline-relay.ts [--port N] [--ack-offline] [--ack-sends]   (binds 127.0.0.1 only)

import type { ServerWebSocket } from "bun";
import { V0_LOGIN_OK } from "../src/protocol/v0.ts";
import { encodeV1Deliver, encodeV1Server, V1 } from "../src/protocol/v1.ts";
import { bundleOf, V1_BUNDLE_CLIENT, V1_FLAG_BUNDLE } from "../src/protocol/v1-bundle.ts";

interface Peer {
  user: string;
  userBytes: Uint8Array;
  v0: boolean;
  seq: number;
  /** Granted bundles at login (only with --ack-offline). */
  bundles: boolean;
}

/** SENT status bytes "delivered" and "stored" (src/protocol/v1.ts SENT_STATUS_BYTE). */
const SENT_DELIVERED = 1;
const SENT_STORED = 2;
/** The largest client frame this relay says it reads (LOGIN_OK's max_frame), as its maxPayloadLength. */
const MAX_FRAME = 1 << 20;

const enc = new TextEncoder();
const dec = new TextDecoder();
const users = new Map<string, ServerWebSocket<Peer>>();
const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
const ackOffline = process.argv.includes("--ack-offline");
const ackSends = process.argv.includes("--ack-sends");
/** SENT frames answered while one client message is read; written when it has been read. */
let acks: Uint8Array[] = [];
let ackBytes = 0;

/** `flags`: the v1 LOGIN's flags byte, or -1 without one. */
function login(ws: ServerWebSocket<Peer>, user: string, v0: boolean, flags = -1): void {
  ws.data.user = user;
  ws.data.userBytes = enc.encode(user);
  ws.data.v0 = v0;
  users.set(user, ws);
  if (v0) return void ws.send(V0_LOGIN_OK);
  // The plain relay answers every login as the original v1 did (it never grants a flag).
  if (flags < 0 || !ackOffline) return void ws.send(encodeV1Server({ op: "login_ok", user, now: Date.now() }));
  ws.data.bundles = (flags & V1_FLAG_BUNDLE) !== 0;
  const granted = ws.data.bundles ? V1_FLAG_BUNDLE : 0;
  ws.send(encodeV1Server({ op: "login_ok", user, now: Date.now(), flags: granted, maxFrame: MAX_FRAME }));
}

/** One v1 SEND frame at `at`; returns where it ends. */
function relaySend(ws: ServerWebSocket<Peer>, m: Uint8Array, v: DataView, at: number): number {
  const idLen = m[at + 1]!;
  const id = m.subarray(at + 2, at + 2 + idLen);
  const toLen = m[at + 2 + idLen]!;
  const to = dec.decode(m.subarray(at + 3 + idLen, at + 3 + idLen + toLen));
  const len = v.getUint32(at + 3 + idLen + toLen);
  const bodyAt = at + 7 + idLen + toLen;
  const body = m.subarray(bodyAt, bodyAt + len);
  const dst = users.get(to);
  if (dst) {
    if (dst.data.v0) dst.send(body);
    else dst.send(encodeV1Deliver(++dst.data.seq, Date.now(), ws.data.userBytes, id, body));
    if (ackSends) answer(id, SENT_DELIVERED);
  } else if (ackOffline) answer(id, SENT_STORED);
  // else offline: dropped (the baseline stores nothing)
  return bodyAt + len;
}

/** Queues SENT `status` for message `id` (0x43 | str8 id | u8 status), written by flushAcks. */
function answer(id: Uint8Array, status: number): void {
  const sent = new Uint8Array(3 + id.byteLength);
  sent[0] = V1.SENT;
  sent[1] = id.byteLength;
  sent.set(id, 2);
  sent[2 + id.byteLength] = status;
  acks.push(sent);
  ackBytes += sent.byteLength;
}

/** The SENTs of one client message: alone, or one BUNDLE to a client that asked for them. */
function flushAcks(ws: ServerWebSocket<Peer>): void {
  if (acks.length === 0) return;
  if (ws.data.bundles) ws.send(bundleOf(acks, ackBytes));
  else for (const a of acks) ws.send(a);
  acks = [];
  ackBytes = 0;
}

function relay(ws: ServerWebSocket<Peer>, m: Uint8Array): void {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (m[0] === V1.SEND) {
    relaySend(ws, m, v, 0);
    flushAcks(ws);
  } else if (m[0] === V1_BUNDLE_CLIENT && ws.data.bundles) {
    // Frames back to back: SENDs are relayed, an ACK (9 bytes) skipped; anything else ends the walk.
    let at = 1;
    while (at < m.byteLength) {
      if (m[at] === V1.SEND) at = relaySend(ws, m, v, at);
      else if (m[at] === V1.ACK) at += 9;
      else break;
    }
    flushAcks(ws);
  } else if (m[0] === 0x02) {
    // v0 send: 0x02|len16|target|len16|msg (one packet per frame is all the bench sends)
    const tlen = v.getUint16(1);
    const to = dec.decode(m.subarray(3, 3 + tlen));
    const mlen = v.getUint16(3 + tlen);
    const dst = users.get(to);
    if (dst) dst.send(m.subarray(5 + tlen, 5 + tlen + mlen));
  }
  // ACK (0x23) and anything else: ignored
}

const server = Bun.serve<Peer>({
  hostname: "127.0.0.1",
  port,
  fetch(req, srv) {
    if (srv.upgrade(req, { data: { user: "", userBytes: new Uint8Array(0), v0: false, seq: 0, bundles: false } })) {
      return undefined;
    }
    return new Response("baseline relay: connect a WebSocket\n");
  },
  websocket: {
    maxPayloadLength: MAX_FRAME,
    message(ws, msg) {
      if (typeof msg === "string") return;
      if (ws.data.user === "") {
        if (msg[0] === V1.LOGIN) {
          const ulen = msg[2]!;
          // LOGIN: op | version | str8 user | str16 token | u64 resume | [u8 flags]
          const tokenLen = (msg[3 + ulen]! << 8) | msg[4 + ulen]!;
          const flagsAt = 5 + ulen + tokenLen + 8;
          const flags = msg.byteLength > flagsAt ? msg[flagsAt]! : -1;
          return login(ws, dec.decode(msg.subarray(3, 3 + ulen)), false, flags);
        }
        if (msg[0] === 0x01) return login(ws, dec.decode(msg.subarray(1)), true);
        return;
      }
      relay(ws, msg);
    },
    close(ws) {
      if (users.get(ws.data.user) === ws) users.delete(ws.data.user);
    },
  },
});

console.log(`baseline relay ready on http://127.0.0.1:${server.port} (ws://127.0.0.1:${server.port}/ws)`);
// The machine-readable ready line, in the binary's own shape (src/control.ts ReadyInfo).
console.log(`ready ${
  JSON.stringify({
    version: "baseline-relay",
    pid: process.pid,
    host: "127.0.0.1",
    tls: false,
    port: server.port,
    tcpPort: null,
    chaosPort: null,
    shards: 1,
    maxConns: 0,
    startupMs: 0,
  })
}`);
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
