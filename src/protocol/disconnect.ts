// Every way the server ends a connection, as one value: the WebSocket close code, the error code
// of the error frame sent just before the close, the default reason, and whether a client should
// reconnect. The server closes only with these; the SDK decides whether to reconnect from them.

import { CloseCode, type ErrorName } from "./errors.ts";

export interface Disconnect {
  close: number;
  code: ErrorName;
  reason: string;
  reconnect: boolean;
}

const kind = (close: number, code: ErrorName, reason: string, reconnect: boolean): Disconnect => ({
  close,
  code,
  reason,
  reconnect,
});

export const Disconnects = {
  shuttingDown: kind(CloseCode.GOING_AWAY, "SHUTTING_DOWN", "server shutting down", true),
  replaced: kind(CloseCode.REPLACED, "REPLACED", "logged in elsewhere", false),
  loginTimeout: kind(CloseCode.IDLE, "NOT_LOGGED_IN", "no login within the login timeout", true),
  notLoggedIn: kind(CloseCode.POLICY, "NOT_LOGGED_IN", "frame before login", false),
  authFailed: kind(CloseCode.POLICY, "AUTH_FAILED", "login refused", false),
  badUser: kind(CloseCode.POLICY, "BAD_USER", "invalid user id", false),
  frameRate: kind(CloseCode.POLICY, "RATE_LIMITED", "frame rate limit exceeded", true),
  notReading: kind(CloseCode.SLOW_CONSUMER, "SERVER_BUSY", "not reading", true),
  notAcking: kind(CloseCode.SLOW_CONSUMER, "SERVER_BUSY", "too many unacked messages for too long", true),
  memoryShed: kind(CloseCode.TRY_AGAIN, "SERVER_BUSY", "server under memory pressure; retry later", true),
  resync: kind(CloseCode.TRY_AGAIN, "SERVER_BUSY", "messages lost between cluster nodes; reconnect to resume", true),
  cutOff: kind(CloseCode.TRY_AGAIN, "SERVER_BUSY", "node cut off from the cluster; reconnect to another node", true),
  socketDropped: kind(CloseCode.INTERNAL, "INTERNAL", "socket dropped a write", true),
  // v0 has no error frame: a v0 message that must be refused closes its connection instead.
  v0InboxFull: kind(CloseCode.INBOX_FULL, "INBOX_FULL", "recipient's inbox is full", false),
  v0BadTarget: kind(CloseCode.BAD_TARGET, "BAD_USER", "invalid target user id", false),
  v0NotPausing: kind(CloseCode.TRY_AGAIN, "SERVER_BUSY", "kept sending while paused", true),
  admin: kind(CloseCode.ADMIN, "DISCONNECTED", "disconnected by an administrator", true),
} as const satisfies Record<string, Disconnect>;
export type DisconnectKind = keyof typeof Disconnects;

/** A protocol violation: the close code comes with the decode error; reconnecting cannot help. */
export function protocolDisconnect(code: ErrorName, close: number, reason: string): Disconnect {
  return { close: code === "PAYLOAD_TOO_LARGE" ? CloseCode.TOO_BIG : close, code, reason, reconnect: false };
}

/**
 * What a client should do after a close: decided by the error code the server sent just before it
 * when there was one, else by the close code alone. Unknown closes (network cuts, 1006) reconnect.
 */
export function shouldReconnect(close: number, lastErrorCode: string | undefined): boolean {
  const all: Disconnect[] = Object.values(Disconnects);
  const byBoth = all.find((d) => d.close === close && d.code === lastErrorCode);
  if (byBoth) return byBoth.reconnect;
  if (close === CloseCode.REPLACED) return false;
  if (close === CloseCode.POLICY) return lastErrorCode !== undefined && lastErrorCode !== "AUTH_FAILED";
  return true;
}
