// Typed error codes shared by every encoding, and the WebSocket close codes we use.
// Numbers are stable wire values (v1 binary carries the number, JSON carries the name).

export const ErrorCode = {
  BAD_FRAME: 1,
  UNKNOWN_OP: 2,
  NOT_LOGGED_IN: 3,
  ALREADY_LOGGED_IN: 4,
  AUTH_FAILED: 5,
  PAYLOAD_TOO_LARGE: 6,
  BAD_USER: 7,
  INBOX_FULL: 8,
  RATE_LIMITED: 9,
  SERVER_BUSY: 10,
  INTERNAL: 11,
  REPLACED: 12,
  SHUTTING_DOWN: 13,
  BAD_ACK: 14,
  UNSUPPORTED: 15,
  DISCONNECTED: 16,
  STORE_FULL: 17, // the disk is (nearly) full: sends that would be stored are refused; retry later
} as const;
export type ErrorName = keyof typeof ErrorCode;

const nameByCode = new Map<number, ErrorName>(
  Object.entries(ErrorCode).map(([k, v]) => [v, k as ErrorName]),
);
export function errorName(code: number): ErrorName | undefined {
  return nameByCode.get(code);
}

// RFC 6455 section 7.4 codes, plus 4xxx application codes (documented in docs/PROTOCOL.md).
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001, // server shutting down
  PROTOCOL_ERROR: 1002, // malformed / unknown binary frame
  UNSUPPORTED_DATA: 1003, // e.g. a text frame on a v0 connection
  INVALID_PAYLOAD: 1007, // JSON that does not parse or is not UTF-8
  POLICY: 1008, // auth failure, sending before login
  TOO_BIG: 1009,
  INTERNAL: 1011,
  TRY_AGAIN: 1013, // overloaded
  REPLACED: 4001, // same user logged in on a newer connection
  IDLE: 4002, // no login within the login timeout
  SLOW_CONSUMER: 4003, // never reads; see OPERATIONS.md
  INBOX_FULL: 4004, // v0 only: a message was refused because its recipient's inbox is full
  BAD_TARGET: 4005, // v0 only: a message was refused because its target is not a valid user id
  ADMIN: 4006, // disconnected by an administrator (admin API); the client may reconnect
} as const;

/** A decode failure: carries the error code and the close code it deserves. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorName,
    message: string,
    readonly close: number = CloseCode.PROTOCOL_ERROR,
  ) {
    super(message);
  }
}
