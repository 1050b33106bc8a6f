// The shard's listeners: Bun.serve for HTTP (Hono routes, the upgrade decision) with Bun's native
// WebSocket handlers for the frame path, and an optional raw TCP listener for seed (v0) clients.

import type { Server, ServerWebSocket, TCPSocketListener } from "bun";
import type { Hono } from "hono";
import type { Settings } from "../config/schema.ts";
import type { TlsFiles } from "../config/tls.ts";
import {
  WS_BACKPRESSURE_FLOOR_BYTES,
  WS_BACKPRESSURE_PER_SLOW_LIMIT,
  WS_FRAME_SLACK_BYTES,
  WS_IDLE_TIMEOUT_S,
} from "../limits.ts";
import type { Admission } from "./admission.ts";
import { upgradeWebSocket, type WsData } from "./http.ts";
import type { Sessions } from "./session.ts";
import { TcpTransport } from "./transports.ts";

/** A TCP socket's data is its transport, which holds the session (one object per socket). */
type TcpData = TcpTransport<unknown> | null;
// Bun.listen honours reusePort (as Bun.serve does); bun-types 1.4.5 only declares it for connect.
type TcpListenOptions = import("bun").TCPSocketListenOptions<TcpData> & { reusePort?: boolean };

/**
 * Bytes as a plain Uint8Array (whose `slice` copies, unlike Buffer's). Frames arrive as Uint8Array
 * already (binaryType below); reading `.buffer` of a small one makes JSC give it an ArrayBuffer of
 * its own, an allocation and copy per message (issue 14: 6% of the shard's JS samples).
 */
const bytesOf = (d: Uint8Array) =>
  Object.getPrototypeOf(d) === Uint8Array.prototype ? d : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

export function listenWebSocket(
  settings: Settings,
  port: number,
  app: Hono<{ Bindings: Server<WsData> }>,
  sessions: Sessions,
  admission: Admission,
  tls?: TlsFiles,
): Server<WsData> {
  return Bun.serve<WsData>({
    hostname: settings.host,
    port,
    reusePort: true,
    ...(tls ? { tls } : {}),
    // WebSocket upgrades skip Hono's router (see upgradeWebSocket); everything else is Hono's.
    fetch: (req: Request, srv: Server<WsData>) => {
      const r = upgradeWebSocket(admission, req, srv);
      return r === null ? app.fetch(req, srv) : r;
    },
    websocket: {
      maxPayloadLength: settings.maxPayload + WS_FRAME_SLACK_BYTES,
      // Never let Bun drop a frame: we pause at slowConsumerBytes and serve from the store.
      backpressureLimit: Math.max(
        settings.slowConsumerBytes * WS_BACKPRESSURE_PER_SLOW_LIMIT,
        WS_BACKPRESSURE_FLOOR_BYTES,
      ),
      closeOnBackpressureLimit: false,
      idleTimeout: WS_IDLE_TIMEOUT_S,
      perMessageDeflate: false,
      open(ws: ServerWebSocket<WsData>) {
        ws.binaryType = "uint8array"; // not a Buffer per message (see bytesOf)
        admission.settle();
        ws.data = sessions.open(ws, false); // the socket is the session's transport (transports.ts)
      },
      message(ws: ServerWebSocket<WsData>, data: string | Uint8Array) {
        const sess = ws.data;
        if (sess) sessions.onData(sess, typeof data === "string" ? data : bytesOf(data));
      },
      drain(ws: ServerWebSocket<WsData>) {
        if (ws.data) sessions.onDrain(ws.data);
      },
      close(ws: ServerWebSocket<WsData>) {
        if (ws.data) sessions.onClose(ws.data);
      },
    },
  });
}

/** Raw TCP listener for seed (v0) clients: v0 has no error frame, so a refusal is a close. */
export function listenTcp(
  settings: Settings,
  port: number,
  sessions: Sessions,
  admission: Admission,
  tls?: TlsFiles,
): TCPSocketListener<TcpData> {
  const options: TcpListenOptions = {
    hostname: settings.host,
    port,
    reusePort: true, // a TLS reload binds the new listener before the old one stops
    ...(tls ? { tls } : {}),
    data: null,
    socket: {
      binaryType: "uint8array", // not a Buffer per read (see bytesOf)
      open(sock) {
        if (admission.admit()) return void sock.end();
        admission.settle();
        const t = new TcpTransport(sock);
        sock.data = t;
        t.s = sessions.open(t, true);
      },
      data(sock, chunk) {
        const s = sock.data?.s;
        if (s) sessions.onData(s, bytesOf(chunk));
      },
      drain(sock) {
        const t = sock.data;
        if (!t?.s) return;
        t.flush();
        sessions.onDrain(t.s);
      },
      close(sock) {
        if (sock.data?.s) sessions.onClose(sock.data.s);
      },
      error(sock) {
        if (sock.data?.s) sessions.onClose(sock.data.s);
      },
    },
  };
  return Bun.listen<TcpData>(options);
}
