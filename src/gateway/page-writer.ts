// Writes a backlog page of pre-encoded frames (router/frame-page.ts) to a connection (issue 14):
// byte copies, no encoding. v0 gets the rows' bodies: over TCP joined into one write (the seed's
// stream of raw message bytes; a v0 link's page already is that stream, written as it is), over
// WebSocket one message each, as before; a v1 client granted bundles one BUNDLE per
// BUNDLE_MAX_BYTES, a plain v1 client each DELIVER frame as its own WebSocket message inside one
// cork (the bytes it always got), and JSON the deliveries decoded from the frames and encoded as
// JSON. Pure of session state: the session flushes its outbox first and handles flow and acks.

import { BUNDLE_MAX_BYTES } from "../limits.ts";
import { encodeServerFrame } from "../protocol/index.ts";
import type { Encoding } from "../protocol/frames.ts";
import {
  bodyStart,
  frameBundles,
  frameDeliveries,
  type FramePage,
  frameStart,
  joinedBodies,
} from "../router/frame-page.ts";
import { corkedOk, TcpTransport, type Transport } from "./transports.ts";

/**
 * Writes the page; false if the socket refused a write (the connection is unusable), or if the page
 * holds bodies alone (a v0 link's) and the connection is not v0: it has no frames to send.
 */
export function writeFramePage(t: Transport, proto: Encoding, bundle: boolean, p: FramePage): boolean {
  if (p.seqs.length === 0) return true;
  if (p.bodies && proto !== "v0") return false;
  if (proto === "v0" && t instanceof TcpTransport) return t.send(joinedBodies(p)) !== 0;
  const messages = proto === "v0"
    ? bodies(p)
    : proto === "json"
    ? frameDeliveries(p, 0).map((d) =>
      encodeServerFrame({ op: "deliver", seq: d.seq, ts: d.ts, from: d.from, id: d.id, body: d.body }, "json")!
    )
    : bundle
    ? frameBundles(p, BUNDLE_MAX_BYTES)
    : plainFrames(p);
  if (messages.length === 1) return t.send(messages[0]!) !== 0;
  let ok = true;
  const writes = () => {
    for (const m of messages) if (ok && t.send(m) === 0) ok = false;
  };
  if (t.cork) return corkedOk(t.cork(writes)) && ok;
  writes();
  return ok;
}

/** Each row's DELIVER frame, as a view into the page (one WebSocket message each). */
function plainFrames(p: FramePage): Uint8Array[] {
  const out = new Array<Uint8Array>(p.seqs.length);
  for (let i = 0; i < out.length; i++) out[i] = p.frames.subarray(frameStart(p, i), p.ends[i]!);
  return out;
}

/** Each row's body, as a view into the page (v0 over WebSocket: one message each). */
function bodies(p: FramePage): Uint8Array[] {
  const out = new Array<Uint8Array>(p.seqs.length);
  for (let i = 0; i < out.length; i++) out[i] = p.frames.subarray(bodyStart(p, i), p.ends[i]!);
  return out;
}
