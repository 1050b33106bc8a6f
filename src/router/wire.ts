// Messages that cross threads. Every port carries arrays of these (one postMessage per tick per
// destination). Receivers validate each item with `isShardMsg`/`isWriterReq`: a port can carry
// garbage (chaos injects it), and garbage must be counted and dropped, never trusted.

import type { InboxRow } from "../store/inbox-store.ts";

/** Where a sender's acknowledgement goes: shard index + connection id on that shard. */
export interface Origin {
  shard: number;
  conn: number;
}

/** A message being routed to its recipient's owner shard. `t0` is the receive time (ms, epoch). */
export interface RouteMsg {
  t: "route";
  to: string;
  from: string;
  id: string;
  body: Uint8Array;
  ts: number;
  t0: number;
  o: number; // origin shard, -1 when no ack is due
  c: number; // origin connection
}

export interface Delivery {
  seq: number;
  ts: number;
  from: string;
  id: string;
  body: Uint8Array;
  t0: number; // 0 for deliveries from the store (no live latency to record)
}

/** Owner → socket shard: write these to the user's connection. `page` asks for a PageDone reply. */
export interface DeliverMsg {
  t: "dlv";
  user: string;
  conn: number;
  items: Delivery[];
  page: boolean;
}

export interface AttachMsg {
  t: "att";
  user: string;
  shard: number;
  conn: number;
  v0: boolean; // v0 connections cannot ack: rows are gone once written
  resume: number; // client's last acked seq (0 = none)
}
export interface DetachMsg {
  t: "det";
  user: string;
  shard: number;
  conn: number;
}
export interface AckMsg {
  t: "ack";
  user: string;
  shard: number;
  conn: number;
  seq: number;
}
/** Socket shard → owner: a page was written; `ready` false means the socket is backed up. */
export interface FlowMsg {
  t: "flow";
  user: string;
  shard: number;
  conn: number;
  ready: boolean;
}
export interface EvictMsg {
  t: "evict";
  user: string;
  conn: number;
  why: "replaced" | "slow";
}
/** Owner (or writer) → origin shard: the sender's acknowledgement or error. */
export interface SentMsg {
  t: "sent";
  conn: number;
  id: string;
  status: "delivered" | "stored" | "duplicate";
}
export interface SendErrMsg {
  t: "serr";
  conn: number;
  id: string;
  code: string;
  reason: string;
}
export interface StatusQuery {
  t: "stq";
  user: string;
  shard: number;
  req: number;
}
export interface StatusReply {
  t: "sta";
  req: number;
  user: string;
  online: boolean;
  lastSeen: number;
}
/** Supervisor → shards: shard k died (owners detach its users) or came back (re-attach). */
export interface PeerDown {
  t: "down";
  shard: number;
}
export interface PeerUp {
  t: "up";
  shard: number;
}

export type ShardMsg =
  | RouteMsg
  | DeliverMsg
  | AttachMsg
  | DetachMsg
  | AckMsg
  | FlowMsg
  | EvictMsg
  | SentMsg
  | SendErrMsg
  | StatusQuery
  | StatusReply
  | WriterReply;

// ---- owner shard ↔ storage writer ----

/** A row of a recipient's inbox, as the store keeps it. */
export type StoredRow = InboxRow;
export interface AppendReq {
  t: "app";
  rows: StoredRow[];
  /** Per row: origin shard/conn for the sender's "stored" ack (-1 = none due). */
  o: number[];
  c: number[];
}
export interface LoadReq {
  t: "load";
  user: string;
  reserve: number; // also reserve this many sequence numbers (0 = just read)
}
export interface FetchReq {
  t: "fetch";
  user: string;
  after: number;
  limit: number;
  maxBytes: number; // page byte budget: at least one row, then stop before exceeding it
  gen: number; // echoed back so the owner can ignore pages for an older connection
}
export interface DeleteReq {
  t: "del";
  user: string;
  upTo: number;
}
export interface SeenReq {
  t: "seen";
  user: string;
  ts: number;
}
/** Marks the end of a shard's traffic during shutdown. */
export interface ByeReq {
  t: "bye";
  shard: number;
}
export type WriterReq = AppendReq | LoadReq | FetchReq | DeleteReq | SeenReq | ByeReq;

export interface LoadedReply {
  t: "loaded";
  user: string;
  seqLimit: number; // highest reserved sequence number (usable up to this)
  seqBase: number; // first usable number of this reservation
  lastSeen: number;
}
export interface RowsReply {
  t: "rows";
  user: string;
  gen: number;
  rows: StoredRow[];
  more: boolean; // the page was cut by its row or byte limit: fetch again
}
/** Rows the store refused (inbox full): the owner forgets them for dedupe. */
export interface RejectedReply {
  t: "rej";
  user: string;
  seqs: number[];
}
/** After a commit: this many of the shard's append requests (in send order) are now durable. */
export interface CommitReply {
  t: "cmt";
  n: number;
}
export type WriterReply = LoadedReply | RowsReply | RejectedReply | CommitReply;

// ---- guards: cheap structural checks, enough that handlers never throw on garbage ----

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function isDelivery(v: unknown): v is Delivery {
  return isObj(v) && isInt(v.seq) && isNum(v.ts) && isStr(v.from) && isStr(v.id) && isBytes(v.body) && isNum(v.t0);
}
// The store rejects seq < 1 and non-integer timestamps by throwing, which would roll back a whole
// group commit: such rows must never get past the port.
export function isStoredRow(v: unknown): v is StoredRow {
  return isObj(v) && isStr(v.recipient) && isInt(v.seq) && v.seq >= 1 && isStr(v.sender) && isStr(v.msgId) &&
    isInt(v.ts) && isBytes(v.body);
}

export function isShardMsg(v: unknown): v is ShardMsg {
  if (!isObj(v)) return false;
  switch (v.t) {
    case "route":
      return isStr(v.to) && isStr(v.from) && isStr(v.id) && isBytes(v.body) && isInt(v.ts) && isNum(v.t0) &&
        isInt(v.o) && isInt(v.c);
    case "dlv":
      return isStr(v.user) && isInt(v.conn) && Array.isArray(v.items) && v.items.every(isDelivery) &&
        typeof v.page === "boolean";
    case "att":
      return isStr(v.user) && isInt(v.shard) && isInt(v.conn) && typeof v.v0 === "boolean" && isInt(v.resume);
    case "det":
      return isStr(v.user) && isInt(v.shard) && isInt(v.conn);
    case "ack":
      return isStr(v.user) && isInt(v.shard) && isInt(v.conn) && isInt(v.seq);
    case "flow":
      return isStr(v.user) && isInt(v.shard) && isInt(v.conn) && typeof v.ready === "boolean";
    case "evict":
      return isStr(v.user) && isInt(v.conn) && (v.why === "replaced" || v.why === "slow");
    case "sent":
      return isInt(v.conn) && isStr(v.id) &&
        (v.status === "delivered" || v.status === "stored" || v.status === "duplicate");
    case "serr":
      return isInt(v.conn) && isStr(v.id) && isStr(v.code) && isStr(v.reason);
    case "stq":
      return isStr(v.user) && isInt(v.shard) && isInt(v.req);
    case "sta":
      return isInt(v.req) && isStr(v.user) && typeof v.online === "boolean" && isNum(v.lastSeen);
    case "loaded":
      return isStr(v.user) && isInt(v.seqLimit) && isInt(v.seqBase) && isNum(v.lastSeen);
    case "rows":
      return isStr(v.user) && isInt(v.gen) && Array.isArray(v.rows) && v.rows.every(isStoredRow) &&
        typeof v.more === "boolean";
    case "rej":
      return isStr(v.user) && Array.isArray(v.seqs) && v.seqs.every(isInt);
    case "cmt":
      return isInt(v.n) && v.n >= 0;
    default:
      return false;
  }
}

export function isWriterReq(v: unknown): v is WriterReq {
  if (!isObj(v)) return false;
  switch (v.t) {
    case "app":
      return Array.isArray(v.rows) && v.rows.every(isStoredRow) && Array.isArray(v.o) && Array.isArray(v.c) &&
        v.o.length === v.rows.length && v.c.length === v.rows.length && v.o.every(isInt) && v.c.every(isInt);
    case "load":
      return isStr(v.user) && isInt(v.reserve) && v.reserve >= 0 && v.reserve <= 1 << 20;
    case "fetch":
      return isStr(v.user) && isInt(v.after) && isInt(v.limit) && v.limit > 0 && v.limit <= 10_000 && isInt(v.gen) &&
        isInt(v.maxBytes) && v.maxBytes > 0;
    case "del":
      return isStr(v.user) && isInt(v.upTo);
    case "seen":
      return isStr(v.user) && isInt(v.ts);
    case "bye":
      return isInt(v.shard);
    default:
      return false;
  }
}
