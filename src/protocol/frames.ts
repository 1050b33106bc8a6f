// Protocol-neutral frames: every codec (v0 binary, v1 binary, JSON) decodes to and encodes from
// these, so the session and router never see wire formats.

export type Encoding = "v0" | "v1" | "json";

export type ClientFrame =
  | { op: "login"; user: string; token?: string; resume?: number; proto: Encoding; flags?: number } // flags: v1 only
  | { op: "send"; to: string; id: string; body: Uint8Array }
  | { op: "batch"; to: string; bodies: Uint8Array[] } // v0 0x04 only
  | { op: "ack"; seq: number } // v1 cumulative: everything <= seq received
  | { op: "ack0" } // v0 0x03|id: accepted, no effect (v0 rows are gone once written)
  | { op: "status"; user: string }
  | { op: "ping" };

export type SendStatus = "delivered" | "stored" | "duplicate";

export type ServerFrame =
  /** flags and maxFrame answer a v1 login that carried flags (see v1-bundle.ts); absent otherwise. */
  | { op: "login_ok"; user: string; now: number; flags?: number; maxFrame?: number }
  | { op: "deliver"; seq: number; ts: number; from: string; id: string; body: Uint8Array }
  | { op: "sent"; id: string; status: SendStatus }
  | { op: "status"; user: string; online: boolean; lastSeen: number }
  | { op: "error"; code: string; reason: string; id?: string }
  | { op: "pong" };

/** Largest user id in bytes: fits v1's u8 length prefix. */
export const MAX_USER_BYTES = 255;
/** Largest sender-chosen message id in bytes. */
export const MAX_ID_BYTES = 255;

const encoder = new TextEncoder();

/** Why a user id is unacceptable, or null when it is fine. */
export function userIdProblem(user: string): string | null {
  if (user.length === 0) return "user id is empty";
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short ids (the hot path, every send) skip encoding.
  if (user.length * 3 > MAX_USER_BYTES && encoder.encode(user).byteLength > MAX_USER_BYTES) {
    return `user id is longer than ${MAX_USER_BYTES} bytes`;
  }
  // Control characters break logs and the console; nothing legitimate needs them. (A loop, not
  // a regex: this runs for every send's target.)
  for (let i = 0; i < user.length; i++) {
    const c = user.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return "user id contains control characters";
  }
  return null;
}
