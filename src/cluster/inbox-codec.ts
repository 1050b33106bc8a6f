// How a stored message looks in the cluster inbox stream (pure). One subject per recipient,
// under a bucket token: iris.inbox.<bucket>.<user>. Per-recipient subjects are what make a
// cumulative ack one purge call (purge subject below seq) and a backlog read a filtered read;
// the bucket token lets subject-filtered consumers and future stream splits take slices of users.
// Metadata rides in headers so the body stays the sender's bytes.

import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { fnv1a } from "../router/hash.ts";

export const INBOX_STREAM = "IRIS_INBOX";
export const INBOX_PREFIX = "iris.inbox";
/** Subject buckets: enough to split the inbox across streams later, few enough to list. */
export const INBOX_BUCKETS = 256;

const H_FROM = "Iris-From";
const H_ID = "Iris-Id";
const H_SEQ = "Iris-Seq";
const H_TS = "Iris-Ts";
/** The storing owner's claim (handover.ts); absent on rows of older versions. */
const H_OWNER = "Iris-Owner";
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Base64url of the UTF-8 bytes: any user id becomes one valid subject token (no '.', '*', '>'). */
export function token(s: string): string {
  return Buffer.from(enc.encode(s)).toString("base64url");
}

export function untoken(t: string): string | null {
  if (!/^[A-Za-z0-9_-]*$/.test(t)) return null;
  try {
    return dec.decode(Buffer.from(t, "base64url"));
  } catch {
    return null;
  }
}

export function bucketOf(user: string): number {
  return fnv1a(user) % INBOX_BUCKETS;
}

export function inboxSubject(user: string): string {
  return `${INBOX_PREFIX}.${bucketOf(user).toString(16).padStart(2, "0")}.${token(user)}`;
}

/** JetStream's short-term dedupe key of one stored row: a retried publish of the same row (same
 * seq) is dropped. Sender dedupe across owners is the owner's job (sent-kv.ts), and a late row
 * adopted under a new seq (handover.ts) must be stored again, so the seq is part of the key. */
export function dedupeKey(to: string, from: string, id: string, seq: number): string {
  return `${token(to)}.${token(from)}.${token(id)}.${seq}`;
}

export interface StoredRow {
  to: string;
  seq: number;
  from: string;
  id: string;
  ts: number;
  body: Uint8Array;
  /** The claim of the owner that stored it (handover.ts); "" when unknown. */
  owner?: string;
}

/** A row as read back, with its place in the stream (what a purge needs). */
export interface ReadRow extends StoredRow {
  streamSeq: number;
}

export function rowHeaders(r: StoredRow): MsgHdrs {
  const h = headers();
  h.set(H_FROM, token(r.from));
  h.set(H_ID, token(r.id));
  h.set(H_SEQ, String(r.seq));
  h.set(H_TS, String(r.ts));
  if (r.owner) h.set(H_OWNER, r.owner);
  return h;
}

const uint = (s: string | undefined): number | null => (s !== undefined && /^\d{1,15}$/.test(s) ? Number(s) : null);

/**
 * A body of its own. A message read from NATS views the client's read buffer (tens of KB, shared
 * by every message of one socket read), and a structured clone (the cross-node port, a Worker
 * port) copies a view's whole buffer: 48 adopted rows of 40 bytes each became a port item over
 * NATS's max_payload, whose publish failed, and those held deliveries never reached the client
 * (docs/CLUSTER.md, "A held batch lost on the port"). A row kept in RAM must not pin the buffer either.
 */
export function compact(b: Uint8Array): Uint8Array {
  // Not b.slice(): NATS hands out Buffers, whose slice is a view of the same memory.
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

/** Decodes a message read from the stream; null for anything malformed (counted, never trusted). */
export function decodeRow(
  subject: string,
  streamSeq: number,
  h: MsgHdrs | undefined,
  body: Uint8Array,
): ReadRow | null {
  const parts = subject.split(".");
  if (parts.length !== 4 || `${parts[0]}.${parts[1]}` !== INBOX_PREFIX || !h) return null;
  const to = untoken(parts[3]!);
  const from = untoken(h.get(H_FROM));
  const id = untoken(h.get(H_ID));
  const seq = uint(h.get(H_SEQ));
  const ts = uint(h.get(H_TS));
  if (!to || !from || id === null || seq === null || ts === null || seq < 1) return null;
  if (inboxSubject(to) !== subject) return null;
  const owner = h.get(H_OWNER);
  if (owner.length > 64) return null;
  return { to, seq, from, id, ts, body: compact(body), streamSeq, ...(owner ? { owner } : {}) };
}
