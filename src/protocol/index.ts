// One entry for the session: decode an inbound frame given the connection's encoding so far,
// encode an outbound frame for the connection's encoding.

import { CloseCode, ProtocolError } from "./errors.ts";
import type { ClientFrame, Encoding, ServerFrame } from "./frames.ts";
import { decodeJsonClient, encodeJsonServer } from "./json.ts";
import { decodeV0Frame, encodeV0Status, isV0Opcode, V0_LOGIN_OK } from "./v0.ts";
import { decodeV1ClientMessage, encodeV1Server, isV1ClientOpcode } from "./v1.ts";
import { V1_BUNDLE_CLIENT } from "./v1-bundle.ts";

export * from "./errors.ts";
export * from "./frames.ts";

/**
 * Decodes one WebSocket message. `proto` is the connection's encoding once logged in (undefined
 * before): the first frame picks it, later frames must match it. `bundles`: the v1 login was
 * granted bundles (v1-bundle.ts), so a client BUNDLE is read; otherwise 0x26 is an unknown opcode.
 */
export function decodeClientMessage(
  msg: string | Uint8Array,
  proto: Encoding | undefined,
  maxBody: number,
  bundles = false,
): ClientFrame[] {
  if (typeof msg === "string") {
    if (proto === "v0") {
      throw new ProtocolError("UNSUPPORTED", "text frames are not part of the v0 protocol", CloseCode.UNSUPPORTED_DATA);
    }
    return [decodeJsonClient(msg, maxBody)];
  }
  if (msg.byteLength === 0) throw new ProtocolError("BAD_FRAME", "empty frame");
  const first = msg[0]!;
  if (proto === "v0" || (proto === undefined && isV0Opcode(first))) return decodeV0Frame(msg, maxBody);
  if (isV1ClientOpcode(first) || (bundles && first === V1_BUNDLE_CLIENT)) {
    return decodeV1ClientMessage(msg, maxBody, bundles);
  }
  throw new ProtocolError("UNKNOWN_OP", `unknown opcode 0x${first.toString(16).padStart(2, "0")}`);
}

/** Encodes a server frame for a connection; v0 has no encoding for some frames (returns null). */
export function encodeServerFrame(f: ServerFrame, proto: Encoding): string | Uint8Array | null {
  switch (proto) {
    case "json":
      return encodeJsonServer(f);
    case "v1":
      return encodeV1Server(f);
    case "v0":
      switch (f.op) {
        case "login_ok":
          return V0_LOGIN_OK;
        case "deliver":
          return f.body; // the seed delivers raw message bytes
        case "status":
          return encodeV0Status(f.user, f.online, f.lastSeen);
        default:
          return null; // v0 has no acks, errors or pongs
      }
  }
}
