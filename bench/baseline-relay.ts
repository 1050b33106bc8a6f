// The baseline: a bare Bun WebSocket relay doing the least work that still speaks Iris's v1
// LOGIN / SEND → DELIVER frames (and the seed's v0 login/send), single-threaded, with a Map from
// user to socket. No storage, no acks to senders, no sequencing guarantees, no dedupe: what Bun
// itself costs, so Iris can be reported as a ratio of it measured in the same run.
// Usage: bun bench/baseline-relay.ts [--port N]   (binds 127.0.0.1 only)

import type { ServerWebSocket } from "bun";
import { V0_LOGIN_OK } from "../src/protocol/v0.ts";
import { encodeV1Deliver, encodeV1Server, V1 } from "../src/protocol/v1.ts";

interface Peer {
  user: string;
  userBytes: Uint8Array;
  v0: boolean;
  seq: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const users = new Map<string, ServerWebSocket<Peer>>();
const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;

function login(ws: ServerWebSocket<Peer>, user: string, v0: boolean): void {
  ws.data.user = user;
  ws.data.userBytes = enc.encode(user);
  ws.data.v0 = v0;
  users.set(user, ws);
  if (v0) ws.send(V0_LOGIN_OK);
  else ws.send(encodeV1Server({ op: "login_ok", user, now: Date.now() }));
}

function relay(ws: ServerWebSocket<Peer>, m: Uint8Array): void {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (m[0] === V1.SEND) {
    const idLen = m[1]!;
    const id = m.subarray(2, 2 + idLen);
    const toLen = m[2 + idLen]!;
    const to = dec.decode(m.subarray(3 + idLen, 3 + idLen + toLen));
    const len = v.getUint32(3 + idLen + toLen);
    const body = m.subarray(7 + idLen + toLen, 7 + idLen + toLen + len);
    const dst = users.get(to);
    if (!dst) return; // offline: dropped (the baseline stores nothing)
    if (dst.data.v0) dst.send(body);
    else dst.send(encodeV1Deliver(++dst.data.seq, Date.now(), ws.data.userBytes, id, body));
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
    if (srv.upgrade(req, { data: { user: "", userBytes: new Uint8Array(0), v0: false, seq: 0 } })) return undefined;
    return new Response("baseline relay: connect a WebSocket\n");
  },
  websocket: {
    maxPayloadLength: 1 << 20,
    message(ws, msg) {
      if (typeof msg === "string") return;
      if (ws.data.user === "") {
        if (msg[0] === V1.LOGIN) {
          const ulen = msg[2]!;
          return login(ws, dec.decode(msg.subarray(3, 3 + ulen)), false);
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
