// Messages that cross threads. Every port carries arrays of these (one postMessage per tick per
// destination). Each message is a member of a discriminated union on `t`:
//   OwnerMsg   → handled by the owner actor of a user (from sessions, peers and the writer)
//   SessionMsg → handled by the sessions of a socket shard (from owners and the writer)
//   WriterReq  → handled by the storage writer (from owners)
// Receivers validate each item with `isPortMsg` / `isWriterReq`: a port can carry garbage (chaos
// injects it), and garbage must be counted and dropped, never trusted.

import { isPackedPage, type PackedPage } from "./packed-page.ts";
import { type FramePage, isFramePage } from "./frame-page.ts";
import { isColumn, isPackedRememberBody, type PackedRemember } from "./packed-keys.ts";
import { isRowHash } from "./packed-appends.ts";
import type { FilterImage } from "./sent-filter.ts";

// ---- owner-bound ----

/** A message being routed to its recipient's owner shard. `t0` is the receive time (ms, epoch). */
export interface RouteMsg {
  t: "route";
  to: string;
  from: string;
  id: string;
  body: Uint8Array;
  ts: number;
  t0: number;
  o: number; // origin shard for the sender's ack, -1 when no ack is due, see refusalsOnly
  c: number; // origin connection
  /** The sender's earlier send to `to` that must be taken first (gateway/send-chain.ts); absent: none. */
  p?: string;
}

/**
 * The origin of a v0 send: no acks are due (v0 has none), but a refusal (inbox full) must still
 * reach the sender's shard, which closes the connection with the reason.
 */
export const refusalsOnly = (shard: number): number => -2 - shard;
/** The shard a refusal for origin `o` goes to, or -1 when nobody hears it. */
export const refusalShard = (o: number): number => (o >= 0 ? o : o <= -2 ? -2 - o : -1);
/** A user logged in on (shard, conn). */
export interface AttachMsg {
  t: "attach";
  user: string;
  shard: number;
  conn: number;
  v0: boolean; // v0 connections cannot ack: rows are gone once written
  resume: number; // client's last acked seq (0 = none)
  /** Cluster: a re-attach of an open session (owner moved, restarted, dropped it), not a login: the link it displaces is never told REPLACED (router/reattach-rule.ts). */
  re?: boolean;
  /** When the session's socket opened, on a clock shared by the process's shards: orders logins read out of order (login-order.ts). */
  opened?: number;
}
export interface DetachMsg {
  t: "detach";
  user: string;
  shard: number;
  conn: number;
}
/** Cumulative: the recipient processed every seq up to `seq`. */
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
export interface StatusQuery {
  t: "statusQuery";
  user: string;
  shard: number;
  req: number;
}

/**
 * Admin API (any shard → the user's owner): look at a user, or act first and then look. `req` is
 * the asking shard's request id, echoed in the InspectReply. See owner-admin.ts.
 */
export interface AdminReq {
  t: "inspect" | "purge" | "disconnect";
  user: string;
  shard: number;
  req: number;
}

// ---- writer → owner replies ----

export interface LoadedReply {
  t: "loaded";
  user: string;
  seqLimit: number; // highest reserved sequence number (usable up to this)
  seqBase: number; // first usable number of this reservation
  lastSeen: number;
  /** The asking box's generation (LoadReq.box), echoed. */
  box?: number;
}
/** The asking box's generation for a `loaded` reply, when its load carried one (both writers). */
export function boxOf(box: number | undefined): { box?: number } {
  return box === undefined ? {} : { box };
}
export interface RowsReply {
  t: "rows";
  user: string;
  gen: number;
  rows: StoredRow[];
  /** The same page in columns (router/packed-page.ts): the SQLite writer sends this, rows empty. */
  packed?: PackedPage;
  /** The same page as pre-encoded v1 DELIVER frames (router/frame-page.ts): the SQLite writer's form. */
  frames?: FramePage;
  more: boolean; // the page was cut by its row or byte limit: fetch again
}
/** Rows the store refused (inbox full): the owner forgets them for dedupe. */
export interface RejectedReply {
  t: "rejected";
  user: string;
  seqs: number[];
}
/** After a commit: this many of the shard's append requests (in send order) are now durable. */
export interface CommittedReply {
  t: "committed";
  n: number;
}
export interface InboxFigures {
  rows: number;
  bytes: number;
  oldestTs: number; // 0 when empty
}
/** The writer's answer to CountInboxReq, after committing everything buffered before it. */
export interface InboxCountReply extends InboxFigures {
  t: "inboxCount";
  user: string;
  req: number;
  known: boolean; // the store has a user record (a seq reservation or a last-seen time)
  lastSeen: number;
}
/** The answer to a dedupe lookup: the seq the key got within the window, or 0 (never seen). */
export interface LookedUpReply {
  t: "lookedUp";
  user: string;
  from: string;
  id: string;
  seq: number;
}
/** A page of the dedupe window for rebuilding a shard's filter: key hashes and their times. */
export interface SentPageReply {
  t: "sentPage";
  hashes: Uint32Array; // two per key (sentKeyHash)
  ts: Float64Array; // one per key
  after: [string, string, string] | null; // where the next page starts
  done: boolean;
  /**
   * The first page only, when the last clean shutdown left this shard's filter in the file: its
   * keys up to `after`; the pages after it hold the rest (store/filter-images.ts).
   */
  image?: FilterImage;
}
export type WriterReply =
  | LoadedReply
  | RowsReply
  | RejectedReply
  | CommittedReply
  | LookedUpReply
  | SentPageReply
  | InboxCountReply;

/** Cluster, socket shard → owner shard, answering RoutesLostMsg on the same FIFO port (cluster/route-gap.ts). */
export interface RoutesResumedMsg {
  t: "routesResumed";
  shard: number;
}

export type OwnerMsg =
  | RouteMsg
  | AttachMsg
  | DetachMsg
  | AckMsg
  | FlowMsg
  | StatusQuery
  | AdminReq
  | WriterReply
  | RoutesResumedMsg;

// ---- session-bound ----

export interface Delivery {
  seq: number;
  ts: number;
  from: string;
  id: string;
  body: Uint8Array;
  t0: number; // 0 for deliveries from the store (no live latency to record)
}
/** Owner → socket shard: write these to the user's connection. `page` asks for a flow reply. */
export interface DeliverMsg {
  t: "deliver";
  user: string;
  conn: number;
  items: Delivery[];
  page: boolean;
  /** A backlog page as the writer encoded it (router/frame-page.ts); items is empty then. */
  frames?: FramePage;
}
export interface EvictMsg {
  t: "evict";
  user: string;
  conn: number;
  /** resync (cluster): messages between this owner and that shard were lost on NATS. moved
   * (cluster): owner `owner` dropped the link, its view moved the user away; not a close. */
  why: "replaced" | "slow" | "admin" | "resync" | "moved";
  owner?: number;
}
/** Owner (or writer) → origin shard: the sender's acknowledgement. */
export interface SentMsg {
  t: "sent";
  conn: number;
  id: string;
  status: "delivered" | "stored" | "duplicate";
}
export interface SendErrorMsg {
  t: "sendError";
  conn: number;
  id: string;
  code: string;
  reason: string;
  /**
   * Refused because an earlier send was not taken (router/owner.ts, prevTaken): the owner refuses
   * every later one by the same rule, so the session sets no fence (one would hold back the
   * earlier send's retry itself).
   */
  unfenced?: true;
}
export interface StatusReply {
  t: "statusReply";
  req: number;
  user: string;
  online: boolean;
  lastSeen: number;
}
/** Owner → asking shard: what the owner holds for a user plus the store's count of the inbox. */
export interface InspectReply {
  t: "inspectReply";
  req: number;
  user: string;
  known: boolean; // the owner or the store has ever seen this user
  online: boolean;
  where: number; // shard holding the user's socket, -1 when offline
  phase: string; // the owner's drain phase for the connection ("offline" without one)
  lastSeen: number;
  pending: number; // live deliveries written to the socket, not yet acked (in memory)
  holdback: number; // messages held in memory while the backlog drains
  inbox: InboxFigures;
  /** For disconnect: whether there was a connection to close; for purge: always true. */
  acted: boolean;
}
/**
 * Cluster, owner shard → socket shard: batches of routes from that shard to `owner` were lost on
 * NATS. Connections with a send unanswered close (their SDKs resend in order), then the shard
 * answers with RoutesResumedMsg (cluster/route-gap.ts).
 */
export interface RoutesLostMsg {
  t: "routesLost";
  owner: number;
}
export type SessionMsg = DeliverMsg | EvictMsg | SentMsg | SendErrorMsg | StatusReply | InspectReply | RoutesLostMsg;

/** Anything a shard's ports carry. */
export type PortMsg = OwnerMsg | SessionMsg;

// ---- owner → storage writer ----

/** A row of a recipient's inbox, as the store keeps it. */
export interface StoredRow {
  recipient: string;
  seq: number;
  sender: string;
  msgId: string;
  ts: number;
  body: Uint8Array;
}
export interface AppendReq {
  t: "append";
  rows: StoredRow[];
  /** Per row: origin shard/conn for the sender's "stored" ack (-1 = none due). */
  o: number[];
  c: number[];
  /**
   * Per row, the key's two hashes as the owner routed it (sentKeyHash; h1 = -1 for none, e.g. a
   * row without id): the writer logs a stored row's dedupe key by them, without hashing it again.
   */
  h?: number[];
}
export interface LoadReq {
  t: "load";
  user: string;
  reserve: number; // also reserve this many sequence numbers (0 = just read)
  /** The asking box's generation, echoed in the reply (absent: any box of the user takes it). */
  box?: number;
}
export interface FetchReq {
  t: "fetch";
  user: string;
  after: number;
  limit: number;
  maxBytes: number; // page byte budget: at least one row, then stop before exceeding it
  gen: number; // echoed back so the owner can ignore pages for an older connection
  /** The budget [limit, maxBytes] of the page after this one: the writer reads it ahead with it. */
  next?: [number, number];
  /**
   * A v0 link's fetch: the page may hold the rows' bodies alone (FramePage.bodies), the bytes a v0
   * socket gets. A writer that does not know the flag answers with frames, which v0 also writes.
   */
  bodies?: boolean;
}
export interface DeleteReq {
  t: "delete";
  user: string;
  upTo: number;
  /** The asking box's first seq (cluster: the writer judges the rows under the claim of that block). */
  first?: number;
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
/** Owner → writer (admin): count a user's inbox after committing everything buffered. */
export interface CountInboxReq {
  t: "countInbox";
  user: string;
  req: number; // the owner's id for the admin request waiting on this
}
/** One accepted message, as the durable dedupe window keeps it. */
export interface SentKey {
  recipient: string;
  sender: string;
  msgId: string;
  seq: number;
  ts: number;
  /**
   * The key's two hashes as sentKeyHash gives them (h2 a signed int32), when the owner has them
   * from routing: the writer then indexes the key without hashing it again (issue 14).
   */
  h1?: number;
  h2?: number;
}
/** Record accepted keys in the dedupe window (durable with the next group commit). */
export interface RememberReq {
  t: "remember";
  keys: SentKey[];
}
/** Was (user, from, id) accepted since `since`? Answered after the next commit. */
export interface LookupReq {
  t: "lookup";
  user: string;
  from: string;
  id: string;
  since: number;
}
/**
 * A retry: answer "duplicate" to the origin once everything sent before this is committed, or
 * a retryable SERVER_BUSY if the store refused the original after all (see confirmMissReply).
 */
export interface ConfirmReq {
  t: "confirm";
  user: string;
  from: string;
  o: number;
  c: number;
  id: string;
  /** The seq the owner gave the original: on a miss the owner is told to forget it (confirmMissNotice). */
  seq?: number;
}

/**
 * A retry whose original is not in the dedupe window after everything before it committed: the
 * store refused the original (inbox full, disk full, a failed batch) and its sender was told so,
 * possibly while this retry was already on its way. The retry was never accepted either, so it
 * gets a retryable error; the sender's next retry is taken as new and answered truly (stored, or
 * the same refusal again). Answering the original's refusal here would guess its cause.
 */
export function confirmMissReply(r: ConfirmReq): SendErrorMsg {
  return { t: "sendError", conn: r.c, id: r.id, code: "SERVER_BUSY", reason: "not stored yet; retry" };
}
/**
 * A confirm's miss, for the owner that asked: the original numbered `seq` is not in the store after
 * everything the owner sent before the confirm committed, so it never will be (its append was lost
 * or refused). The owner forgets the id (as for a refused append), and the sender's next retry is
 * numbered as new and stored. Without this the owner kept the id, asked the store again on every
 * retry, and the sender was told "not stored yet" until the id aged out of the owner's memory:
 * god-mode under load, 171 sends of two senders never acked (docs/OPERATIONS.md, branch sn-god).
 */
export function confirmMissNotice(r: ConfirmReq): RejectedReply | null {
  return r.seq === undefined ? null : { t: "rejected", user: r.user, seqs: [r.seq] };
}
/** A page of the dedupe window for the recipients owned by `shard` of `shards`. */
export interface ScanSentReq {
  t: "scanSent";
  shard: number;
  shards: number;
  after: [string, string, string] | null;
  since: number;
  limit: number;
}
/**
 * Shutdown, ahead of the shard's bye: its dedupe filter (every key it took, and those its rebuild
 * read) for the writer to keep until the next start reads it back (store/filter-images.ts).
 */
export interface FilterImageReq {
  t: "filterImage";
  shard: number;
  shards: number;
  image: FilterImage;
}
export type WriterReq =
  | AppendReq
  | LoadReq
  | FetchReq
  | DeleteReq
  | SeenReq
  | ByeReq
  | RememberReq
  | LookupReq
  | ConfirmReq
  | ScanSentReq
  | FilterImageReq
  | CountInboxReq
  | PackedRemember; // a RememberReq on the port (packed-keys.ts)

// ---- guards: cheap structural checks, enough that handlers never throw on garbage ----

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isUserConn = (v: Obj) => isStr(v.user) && isInt(v.shard) && isInt(v.conn);

function isInboxFigures(v: unknown): v is InboxFigures {
  return isObj(v) && isInt(v.rows) && v.rows >= 0 && isInt(v.bytes) && v.bytes >= 0 && isNum(v.oldestTs);
}
const isAdminReq = (v: Obj) => isStr(v.user) && isInt(v.shard) && isInt(v.req);

function isDelivery(v: unknown): v is Delivery {
  return isObj(v) && isInt(v.seq) && isNum(v.ts) && isStr(v.from) && isStr(v.id) && isBytes(v.body) && isNum(v.t0);
}
// The store rejects seq < 1 and non-integer timestamps by throwing, which would roll back a whole
// group commit: such rows must never get past the port.
export /** A fetch's next-page budget: [rows 1..10,000, bytes > 0]. */
const isNextBudget = (v: unknown) =>
  Array.isArray(v) && v.length === 2 && isInt(v[0]) && v[0] > 0 && v[0] <= 10_000 && isInt(v[1]) && v[1] > 0;

function isStoredRow(v: unknown): v is StoredRow {
  return isObj(v) && isStr(v.recipient) && isInt(v.seq) && v.seq >= 1 && isStr(v.sender) && isStr(v.msgId) &&
    isInt(v.ts) && isBytes(v.body);
}

/** An append's per-row key hashes: two per row, each pair in range (packed-appends.ts). */
function isRowHashes(v: unknown, rows: number): boolean {
  if (!Array.isArray(v) || v.length !== 2 * rows) return false;
  for (let i = 0; i < v.length; i += 2) if (!isRowHash(v[i], v[i + 1])) return false;
  return true;
}

/** The image's shape (its sizes are checked where it is read: filterImageProblem). */
function isFilterImage(v: unknown): v is FilterImage {
  return isObj(v) && isInt(v.bitsPerKey) && isInt(v.hashes) && isInt(v.windowMs) && Array.isArray(v.gens) &&
    v.gens.every((g) =>
      isObj(g) && isInt(g.g) && Array.isArray(g.filters) &&
      g.filters.every((f) => isObj(f) && isInt(f.capacity) && isInt(f.n) && f.bits instanceof Int32Array)
    );
}
const isKeyTriple = (v: unknown): v is [string, string, string] => Array.isArray(v) && v.length === 3 && v.every(isStr);
function isSentKey(v: unknown): v is SentKey {
  return isObj(v) && isStr(v.recipient) && isStr(v.sender) && isStr(v.msgId) && v.msgId !== "" && isInt(v.seq) &&
    v.seq >= 1 && isInt(v.ts);
}

// One check per tag. Typed as a Record over the union's tags, so adding a member without its
// check (or keeping a check for a removed one) fails to compile.
const ownerChecks: Record<OwnerMsg["t"], (v: Obj) => boolean> = {
  route: (v) =>
    isStr(v.to) && isStr(v.from) && isStr(v.id) && isBytes(v.body) && isInt(v.ts) && isNum(v.t0) && isInt(v.o) &&
    isInt(v.c) && (v.p === undefined || (isStr(v.p) && v.p !== "")),
  attach: (v) =>
    isUserConn(v) && isBool(v.v0) && isInt(v.resume) && (v.re === undefined || isBool(v.re)) &&
    (v.opened === undefined || isNum(v.opened)),
  detach: isUserConn,
  ack: (v) => isUserConn(v) && isInt(v.seq),
  flow: (v) => isUserConn(v) && isBool(v.ready),
  statusQuery: (v) => isStr(v.user) && isInt(v.shard) && isInt(v.req),
  // A block starts at 1 or above and is empty at worst (seqLimit = seqBase - 1): an owner numbers
  // from seqBase, and the writer refuses a row numbered below 1, with every append packed with it.
  loaded: (v) =>
    isStr(v.user) && isInt(v.seqBase) && v.seqBase >= 1 && isInt(v.seqLimit) && v.seqLimit >= v.seqBase - 1 &&
    isNum(v.lastSeen) && (v.box === undefined || isInt(v.box)),
  rows: (v) =>
    isStr(v.user) && isInt(v.gen) && Array.isArray(v.rows) && v.rows.every(isStoredRow) && isBool(v.more) &&
    (v.packed === undefined || isPackedPage(v.packed)) && (v.frames === undefined || isFramePage(v.frames)),
  rejected: (v) => isStr(v.user) && Array.isArray(v.seqs) && v.seqs.every(isInt),
  committed: (v) => isInt(v.n) && v.n >= 0,
  lookedUp: (v) => isStr(v.user) && isStr(v.from) && isStr(v.id) && isInt(v.seq),
  sentPage: (v) =>
    v.hashes instanceof Uint32Array && v.ts instanceof Float64Array && v.hashes.length === 2 * v.ts.length &&
    (v.after === null || isKeyTriple(v.after)) && isBool(v.done) && (v.image === undefined || isFilterImage(v.image)),
  inspect: isAdminReq,
  purge: isAdminReq,
  disconnect: isAdminReq,
  inboxCount: (v) => isStr(v.user) && isInt(v.req) && isBool(v.known) && isNum(v.lastSeen) && isInboxFigures(v),
  routesResumed: (v) => isInt(v.shard),
};
const sessionChecks: Record<SessionMsg["t"], (v: Obj) => boolean> = {
  deliver: (v) =>
    isStr(v.user) && isInt(v.conn) && Array.isArray(v.items) && v.items.every(isDelivery) &&
    isBool(v.page) && (v.frames === undefined || isFramePage(v.frames)),
  evict: (v) =>
    isStr(v.user) && isInt(v.conn) && (v.owner === undefined || isInt(v.owner)) &&
    (v.why === "replaced" || v.why === "slow" || v.why === "admin" || v.why === "resync" || v.why === "moved"),
  sent: (v) =>
    isInt(v.conn) && isStr(v.id) && (v.status === "delivered" || v.status === "stored" || v.status === "duplicate"),
  sendError: (v) =>
    isInt(v.conn) && isStr(v.id) && isStr(v.code) && isStr(v.reason) &&
    (v.unfenced === undefined || v.unfenced === true),
  statusReply: (v) => isInt(v.req) && isStr(v.user) && isBool(v.online) && isNum(v.lastSeen),
  inspectReply: (v) =>
    isInt(v.req) && isStr(v.user) && isBool(v.known) && isBool(v.online) && isInt(v.where) && isStr(v.phase) &&
    isNum(v.lastSeen) && isInt(v.pending) && isInt(v.holdback) && isInboxFigures(v.inbox) && isBool(v.acted),
  routesLost: (v) => isInt(v.owner),
};
const writerChecks: Record<WriterReq["t"], (v: Obj) => boolean> = {
  // Never empty: the writer counts each append and remember it commits toward the owner's
  // "committed n", so an empty one (an owner never sends it; port garbage can) would make the owner
  // forget an uncommitted request, which a writer restart then fails to replay.
  append: (v) =>
    Array.isArray(v.rows) && v.rows.length > 0 && v.rows.every(isStoredRow) && Array.isArray(v.o) &&
    Array.isArray(v.c) &&
    v.o.length === v.rows.length && v.c.length === v.rows.length && v.o.every(isInt) && v.c.every(isInt) &&
    (v.h === undefined || isRowHashes(v.h, v.rows.length)),
  load: (v) =>
    isStr(v.user) && isInt(v.reserve) && v.reserve >= 0 && v.reserve <= 1 << 20 &&
    (v.box === undefined || isInt(v.box)),
  fetch: (v) =>
    isStr(v.user) && isInt(v.after) && isInt(v.limit) && v.limit > 0 && v.limit <= 10_000 && isInt(v.gen) &&
    isInt(v.maxBytes) && v.maxBytes > 0 && (v.next === undefined || isNextBudget(v.next)) &&
    (v.bodies === undefined || isBool(v.bodies)),
  delete: (v) => isStr(v.user) && isInt(v.upTo) && (v.first === undefined || isInt(v.first)),
  seen: (v) => isStr(v.user) && isInt(v.ts),
  bye: (v) => isInt(v.shard),
  remember: (v) => Array.isArray(v.keys) && v.keys.length > 0 && v.keys.every(isSentKey),
  rememberPacked: (v) => isColumn(v.nums) && v.nums.length > 0 && isPackedRememberBody(v.text, v.nums),
  lookup: (v) => isStr(v.user) && isStr(v.from) && isStr(v.id) && isInt(v.since),
  confirm: (v) =>
    isStr(v.user) && isStr(v.from) && isInt(v.o) && isInt(v.c) && isStr(v.id) &&
    (v.seq === undefined || (isInt(v.seq) && v.seq >= 1)),
  scanSent: (v) =>
    isInt(v.shard) && isInt(v.shards) && v.shards >= 1 && (v.after === null || isKeyTriple(v.after)) &&
    isInt(v.since) && isInt(v.limit) && v.limit > 0 && v.limit <= 100_000,
  filterImage: (v) => isInt(v.shard) && isInt(v.shards) && v.shards >= 1 && isFilterImage(v.image),
  countInbox: (v) => isStr(v.user) && isInt(v.req),
};

const has = Object.prototype.hasOwnProperty;
function check<K extends string>(table: Record<K, (v: Obj) => boolean>, v: unknown): boolean {
  return isObj(v) && isStr(v.t) && has.call(table, v.t) && table[v.t as K](v);
}

/** Owner-bound tags, derived from the check table (no hand-kept list). */
export function isOwnerMsg(m: PortMsg): m is OwnerMsg {
  return has.call(ownerChecks, m.t);
}
export function isPortMsg(v: unknown): v is PortMsg {
  return check(ownerChecks, v) || check(sessionChecks, v);
}
export function isWriterReq(v: unknown): v is WriterReq {
  return check(writerChecks, v);
}
